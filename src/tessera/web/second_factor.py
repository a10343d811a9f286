"""The forms of the second-factor pages in the authorization flow (docs/mfa.md).

`/oauth2/v1/login/factor` checks a second factor of the signed-in session (a passkey, an
authenticator-app code or a recovery code); `/oauth2/v1/login/passkey` signs in with a passkey
alone; `/oauth2/v1/login/enroll` sets up a first factor when one is required. Each re-validates
the authorization request it carries, checks the CSRF token bound to the session (to the
browser for the passkey sign-in), calls the core, and goes back to the authorization endpoint,
which decides what comes next.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth.authorize import AuthorizationRequest
from tessera.oauth.factors import passkeys
from tessera.oauth.interaction.csrf import Purpose, csrf_valid
from tessera.oauth.interaction.enrollment import (
    confirm_totp,
)
from tessera.oauth.interaction.login import (
    Attempt,
    SignedIn,
    SignedInUser,
    authenticated_further,
    current_session,
    sign_in_verified,
)
from tessera.oauth.interaction.requirements import may_enroll_now, user_factors
from tessera.oauth.interaction.second_factor import FactorRefused, check_code, check_passkey
from tessera.web.browser import (
    DEVICE_COOKIE,
    SESSION_COOKIE,
    after_sign_in,
    form_post,
    login_page,
    signed_in_response,
)
from tessera.web.factor_pages import (
    BROWSER_COOKIE,
    enroll_page,
    factor_page,
    first_recovery_codes,
    register_from_form,
)
from tessera.web.forms import Params
from tessera.web.pages import (
    client_address,
    csrf_refused,
    error_page,
    origin,
    read_cookie,
    redirect,
)
from tessera.web.services import Services

__all__ = ["FACTOR_ROUTES"]

_EXPIRED = "This sign-in request is not valid any more."


def _refused_form(svc: Services, request: Request, what: str) -> Response:
    return csrf_refused(
        svc,
        request,
        f"{what}.csrf_refused",
        "The form was not sent from this browser's page.",
        title="Sign-in refused",
        hint="Reload the application and try again.",
    )


def _session_form(
    svc: Services, request: Request, form: Params, purpose: Purpose
) -> SignedInUser | Response | None:
    """The signed-in session of a form bound to it; a refusal page for a bad CSRF token;
    None when the session is gone (then the sign-in starts again)."""
    current = current_session(
        svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), svc.ctx.clock()
    )
    if current is None:
        return None
    if form.duplicated or not csrf_valid(
        svc.csrf_key, purpose, current.session.csrf_secret, form.get("csrf_token")
    ):
        return _refused_form(svc, request, "mfa")
    return current


def _factor_step(
    svc: Services,
    request: Request,
    form: Params,
    params: Params,
    req: AuthorizationRequest,
    authz: str,
) -> Response:
    current = _session_form(svc, request, form, "factor")
    if not isinstance(current, SignedInUser):
        return current or login_page(svc, request, req, authz)
    store, now, ip = svc.ctx.store, svc.ctx.clock(), client_address(request)
    method = form.get("method", "")
    try:
        if method == "passkey":
            used = check_passkey(
                store,
                svc.factor_keys,
                svc.relying_party,
                form.get("credential", ""),
                form.get("state", ""),
                purpose="factor",
                subject=current.session.id_hash,
                user_id=current.user.id,
                now=now,
            )
            methods = used.methods
        else:
            code = form.get("code", "")
            keys, throttle = svc.factor_keys, svc.login_policy.throttle
            methods = check_code(store, keys, throttle, current.user, method, code, ip, now)
    except FactorRefused as exc:
        svc.audit.record(
            "mfa.failure", user_id=current.user.id, ip=ip, method=method, reason=exc.audit
        )
        factors = user_factors(store.factors, current.user.id)
        status = 429 if exc.retry_after else 401
        response = factor_page(svc, req, authz, current, factors.methods, now, exc.message, status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return _authenticated(svc, request, params, current, methods, method)


def _authenticated(
    svc: Services,
    request: Request,
    params: Params,
    current: SignedInUser,
    methods: tuple[str, ...],
    method: str,
) -> Response:
    now = svc.ctx.clock()
    further = authenticated_further(svc.ctx.store, current, methods, now)
    if further is None:
        return error_page(svc, request, "Sign-in expired", _EXPIRED)
    svc.audit.record(
        "mfa.success",
        user_id=current.user.id,
        ip=client_address(request),
        method=method,
        amr=list(further.session.amr),
    )
    return redirect(after_sign_in(svc, params), 303)


def _passkey_step(
    svc: Services,
    request: Request,
    form: Params,
    params: Params,
    req: AuthorizationRequest,
    authz: str,
) -> Response:
    """A passwordless sign-in (W3C WebAuthn §7.2 with user verification)."""
    bid = read_cookie(svc, request, BROWSER_COOKIE)
    if form.duplicated or not csrf_valid(svc.csrf_key, "login", bid, form.get("csrf_token")):
        return _refused_form(svc, request, "login")
    assert bid is not None
    store, now, ip = svc.ctx.store, svc.ctx.clock(), client_address(request)
    try:
        used = check_passkey(
            store,
            svc.factor_keys,
            svc.relying_party,
            form.get("credential", ""),
            form.get("state", ""),
            purpose="signin",
            subject=bid,
            user_id=None,
            now=now,
        )
    except FactorRefused as exc:
        svc.audit.record("login.passkey_failure", ip=ip, reason=exc.audit)
        return login_page(svc, request, req, authz, error=exc.message, status=401)
    user = store.users.get(used.passkey.user_id)
    cookies = Attempt(
        username="",
        password="",
        ip=ip,
        device_cookie=read_cookie(svc, request, DEVICE_COOKIE),
        session_cookie=read_cookie(svc, request, SESSION_COOKIE),
    )
    outcome = (
        None
        if user is None
        else sign_in_verified(store, svc.login_policy, user, used.methods, cookies, now)
    )
    if not isinstance(outcome, SignedIn):
        svc.audit.record("login.passkey_failure", ip=ip, reason="inactive user")
        message = "This account cannot sign in. Ask your administrator."
        return login_page(svc, request, req, authz, error=message, status=401)
    svc.audit.record(
        "login.success",
        user_id=outcome.user.id,
        client_id=req.client.client_id,
        ip=ip,
        method="passkey",
    )
    svc.metrics.logins.labels("success").inc()
    return signed_in_response(svc, params, outcome)


def _enroll_step(
    svc: Services,
    request: Request,
    form: Params,
    params: Params,
    req: AuthorizationRequest,
    authz: str,
) -> Response:
    """The first factor, while the sign-in requires one (`EnrollFactor`)."""
    current = _session_form(svc, request, form, "enroll")
    if not isinstance(current, SignedInUser):
        return current or login_page(svc, request, req, authz)
    store, now, ip = svc.ctx.store, svc.ctx.clock(), client_address(request)
    if not may_enroll_now(current.session.amr, user_factors(store.factors, current.user.id)):
        # A password alone never adds a factor to an account that has one.
        return redirect(after_sign_in(svc, params), 303)
    action = form.get("action", "")
    try:
        if action == "passkey":
            passkey = register_from_form(svc, current.user, form, now)
            methods = passkeys.methods_for(passkey.backed_up, False)
        else:
            confirm_totp(
                store,
                svc.factor_keys,
                current.user,
                form.get("totp_state", ""),
                current.session.id_hash,
                form.get("code", ""),
                now,
            )
            methods = ("otp",)
    except FactorRefused as exc:
        svc.audit.record("mfa.enroll_failure", user_id=current.user.id, ip=ip, reason=exc.audit)
        passkey_only = form.get("passkey_only") == "1"
        return enroll_page(svc, req, authz, current, passkey_only, now, exc.message, 400)
    svc.audit.record("mfa.enrolled", user_id=current.user.id, ip=ip, factor=action or "totp")
    return _enrolled(svc, request, req, params, current, methods)


def _enrolled(
    svc: Services,
    request: Request,
    req: AuthorizationRequest,
    params: Params,
    current: SignedInUser,
    methods: tuple[str, ...],
) -> Response:
    """The session counts the new factor; a first factor shows its recovery codes once."""
    store, now = svc.ctx.store, svc.ctx.clock()
    if authenticated_further(store, current, methods, now) is None:
        return error_page(svc, request, "Sign-in expired", _EXPIRED)
    next_url = after_sign_in(svc, params)
    codes = first_recovery_codes(svc, current.user, next_url, [origin(req.redirect_uri)])
    return codes or redirect(next_url, 303)


async def login_factor(request: Request) -> Response:
    return await form_post(request, _factor_step, "Sign-in expired", _EXPIRED)


async def login_passkey(request: Request) -> Response:
    return await form_post(request, _passkey_step, "Sign-in expired", _EXPIRED)


async def login_enroll(request: Request) -> Response:
    return await form_post(request, _enroll_step, "Sign-in expired", _EXPIRED)


FACTOR_ROUTES = [
    Route("/oauth2/v1/login/factor", login_factor, methods=["POST"]),
    Route("/oauth2/v1/login/passkey", login_passkey, methods=["POST"]),
    Route("/oauth2/v1/login/enroll", login_enroll, methods=["POST"]),
]
