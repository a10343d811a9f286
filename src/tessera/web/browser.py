"""The browser side of the authorization code flow: authorize, login, consent, logout.

Each handler parses the request, calls the core (`tessera.oauth.authorize`,
`tessera.oauth.interaction`, `tessera.oauth.logout`), which decides, and renders the outcome:
RFC 6749 §4.1.1-§4.1.2, OIDC Core §3.1.2 (prompt, max_age), RFC 9207 (`iss` on every
authorization response), OIDC RP-Initiated Logout 1.0. docs/security.md rules 1-10 and 29: error
pages instead of unvalidated redirects, 303 after POSTs, CSRF tokens bound to the browser,
anti-framing headers, session cookies HttpOnly and SameSite=Lax, login throttling.

A pushed request (RFC 9126 §4: `client_id` and our `request_uri`) is taken from the store once
and then travels through the forms and the redirect after sign-in as a sealed ticket
(`tessera.oauth.par`): what the app pushed is what is decided, whatever the browser sends.

Everything is the request's identity domain's (docs/domains.md): its apps and redirect URIs, its
issuer in `iss`, its sessions; every URL it emits starts with the domain's prefix and every
cookie carries the domain's name suffix and path (`tessera.web.pages`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.admin import admin_only_scopes
from tessera.domain.model import PushedRequest, UpstreamProvider
from tessera.domain.scopes import OIDC_SCOPES
from tessera.oauth import errors
from tessera.oauth.authorize import (
    AuthorizationError,
    AuthorizationRequest,
    UnsafeToRedirect,
    redirect_with,
    validate_authorization_request,
)
from tessera.oauth.federation.flow import COOKIE_PATH
from tessera.oauth.federation.home_realm import provider_for_email
from tessera.oauth.interaction.consent import (
    AskConsent,
    ConsentDenied,
    EnrollFactor,
    IssueCode,
    SecondFactor,
    SignInFirst,
    Step,
    answer_consent,
    issue_for,
    proceed,
)
from tessera.oauth.interaction.csrf import browser_id, csrf_token, csrf_valid
from tessera.oauth.interaction.login import (
    Attempt,
    Failed,
    SignedIn,
    SignedInUser,
    Throttled,
    current_session,
    end_session,
    sign_in,
    without_reauthentication,
)
from tessera.oauth.logout import (
    ConfirmLogout,
    InvalidLogout,
    LogoutRefused,
    decide_logout,
    hint_verifier,
    validate_logout,
)
from tessera.oauth.par import resolve, resumed
from tessera.shared.urlencoding import encode_pairs
from tessera.web.factor_pages import (
    BROWSER_COOKIE,
    enroll_page,
    factor_page,
    passkey_sign_in_values,
)
from tessera.web.forms import Params, parse_params, read_form, read_query
from tessera.web.pages import (
    client_address,
    cookie_name,
    csrf_refused,
    delete_cookie,
    error_page,
    origin,
    page,
    read_cookie,
    redirect,
    set_cookie,
    url,
)
from tessera.web.services import Services, services

__all__ = [
    "BROWSER_ROUTES",
    "DEVICE_COOKIE",
    "SCOPE_WORDS",
    "SESSION_COOKIE",
    "FormStep",
    "after_sign_in",
    "authorize",
    "consent",
    "describe_scopes",
    "federation_start",
    "form_post",
    "login",
    "login_page",
    "logout",
    "signed_in_response",
    "validate_authz",
    "wait_message",
]

# The default domain's names; another domain's end with its `cookie_suffix`.
SESSION_COOKIE = "tessera_session"
DEVICE_COOKIE = "tessera_device"
# Sent back only to the sign-in form (a path below the domain's prefix).
_DEVICE_COOKIE_PATH = "/oauth2/v1/login"
SCOPE_WORDS = {
    "openid": ("Verify your identity", "Confirm who you are with your account."),
    "profile": ("See your profile", "Your name and username."),
    "email": ("See your email address", "The email address of your account."),
    "offline_access": ("Stay connected", "Keep access while you are not using the app."),
    "groups": ("See your groups", "The names of the groups you are a member of."),
}


@dataclass(frozen=True, slots=True)
class _Scope:
    label: str
    description: str


def wait_message(seconds: int, reason: str | None) -> str:
    """The same words whether or not the account exists."""
    wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    where = "from your network" if reason == "address" else "for this account"
    return f"Too many failed sign-ins {where}. Try again in {wait}."


# --- rendering ----------------------------------------------------------------------------------


def _error_redirect(svc: Services, exc: AuthorizationError, status: int) -> RedirectResponse:
    values = {**exc.error.body(), "state": exc.state, "iss": svc.ctx.settings.issuer}
    return redirect(redirect_with(exc.redirect_uri, values), status)


def federation_start(
    svc: Services, provider: UpstreamProvider, authz: str, login_hint: str | None = None
) -> str:
    """Where a sign-in through an upstream provider starts (`tessera.web.federation`), to come
    back to the authorization request `authz`."""
    query = [("authz", authz), *([("login_hint", login_hint)] if login_hint else [])]
    return url(svc, f"{COOKIE_PATH}/{provider.name}/start?") + encode_pairs(query)


@dataclass(frozen=True, slots=True)
class _ProviderButton:
    name: str
    display_name: str
    href: str


def provider_targets(svc: Services, providers: Iterable[UpstreamProvider]) -> list[str | None]:
    """Where a form that starts a sign-in at these providers may end up (CSP `form-action`
    also covers the redirects after a submission, and browsers enforce it there): their
    authorization endpoints — on the issuer's origin, or the one the discovery document names
    once we have read it."""
    targets: list[str | None] = []
    for provider in providers:
        targets.append(origin(provider.issuer))
        metadata = svc.node.upstream.cached(provider.issuer)
        if metadata is not None:
            targets.append(origin(metadata.authorization_endpoint))
    return targets


def login_page(
    svc: Services,
    request: Request,
    req: AuthorizationRequest,
    authz: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
    providers: list[UpstreamProvider] | None = None,
) -> Response:
    """The sign-in page: the password form, a passkey, and a button per enabled upstream
    provider (`providers`: the domain's, read here unless the caller has them from memory)."""
    bid, fresh = browser_id(read_cookie(svc, request, BROWSER_COOKIE))
    providers = svc.provider_list() if providers is None else providers
    response = page(
        svc,
        "login.html",
        status,
        # An address of a provider's e-mail domain goes on to that provider (home realm).
        form_targets=[
            origin(req.redirect_uri),
            *provider_targets(svc, (p for p in providers if p.email_domains)),
        ],
        scripts=True,
        **passkey_sign_in_values(svc, bid, svc.ctx.clock()),
        app_name=req.client.name,
        forgot_url=url(svc, "/account/reset") if svc.reset.mailer.enabled else None,
        form_action=url(svc, "/oauth2/v1/login"),
        authz=authz,
        csrf_token=csrf_token(svc.csrf_key, "login", bid),
        username=username[:200],
        error=error,
        locked=status == 429,
        providers=[
            _ProviderButton(p.name, p.display_name, federation_start(svc, p, authz))
            for p in providers
        ],
        # Someone may type an e-mail address to be sent to their provider: no password then.
        home_realm=any(p.email_domains for p in providers),
    )
    if fresh:
        set_cookie(svc, response, BROWSER_COOKIE, bid, None)
    return response


def _consent_page(
    svc: Services, req: AuthorizationRequest, authz: str, current: SignedInUser
) -> Response:
    return page(
        svc,
        "consent.html",
        form_targets=[origin(req.redirect_uri)],
        app_name=req.client.name,
        user_display_name=current.user.display_name,
        username=current.user.username,
        scopes=describe_scopes(svc, req.scopes, req.audience),
        redirect_host=urlsplit(req.redirect_uri).netloc or req.redirect_uri,
        form_action=url(svc, "/oauth2/v1/consent"),
        authz=authz,
        csrf_token=csrf_token(svc.csrf_key, "consent", current.session.csrf_secret),
    )


def describe_scopes(svc: Services, scopes: tuple[str, ...], audience: str | None) -> list[_Scope]:
    """What the consent and device pages say each scope allows."""
    out = [_Scope(*SCOPE_WORDS[s]) for s in scopes if s in SCOPE_WORDS]
    resource = svc.resource_by_audience(audience) if audience else None
    for scope in scopes:
        if scope in OIDC_SCOPES:
            continue
        name = scope[len(audience or "") :]
        label = f"Use {resource.name}" if resource else "Use an API"
        out.append(_Scope(label, f"Call {audience} on your behalf ({name})."))
    return out


def _code_redirect(
    svc: Services,
    request: Request,
    req: AuthorizationRequest,
    current: SignedInUser,
    now: datetime,
    status: int,
) -> Response:
    code = issue_for(svc.ctx.store.codes, req, current, now, svc.ctx.settings.code_ttl)
    svc.audit.record(
        "authorize.code_issued",
        user_id=current.user.id,
        client_id=req.client.client_id,
        ip=client_address(request),
    )
    values = {"code": code, "state": req.state, "iss": svc.ctx.settings.issuer}
    return redirect(redirect_with(req.redirect_uri, values), status)


# --- the authorization endpoint -----------------------------------------------------------------


def _ticket_key(svc: Services) -> bytes:
    """The key that seals pushed requests in flight (`tessera.oauth.par`), the domain's own."""
    return svc.ctx.subkey("pushed requests")


def _validate(
    svc: Services, params: Params, cached: bool = False
) -> tuple[AuthorizationRequest, Params]:
    """The request and what carries it on: the query itself, or for a pushed request (RFC
    9126 §4) its client_id and ticket. With `cached`, from memory only (the app, resources and
    the domain's rules): raises `NotCached`; a `request_uri` is never resolved so (I/O)."""
    now = svc.ctx.clock()
    if cached:
        lookup, resources = svc.cached_client, svc.cached_resource_list()
    else:
        lookup, resources = svc.client, svc.resource_list()

    def take(uri_hash: str, client_id: str) -> PushedRequest | None:
        return svc.ctx.store.pushed_requests.take(uri_hash, client_id, now)

    resolved = resolve(params, params.duplicated, take, lambda: _ticket_key(svc), now)
    par_required = False
    if not resolved.pushed:  # only a request that was not pushed can break the domain's rule
        rules = svc.rules.cached("rules") if cached else svc.sign_in_rules()
        par_required = rules.require_pushed_authorization_requests
    req = validate_authorization_request(
        resolved.params,
        resolved.duplicated,
        lookup,
        resources,
        pushed=resolved.pushed,
        par_required=par_required,
    )
    return req, Params(list(resolved.carried.items()))


def validate_authz(svc: Services, authz: str) -> tuple[AuthorizationRequest, Params]:
    """The authorization request a form or a federated sign-in carries (`authz`), validated
    again (raises `UnsafeToRedirect`, `AuthorizationError`, `OAuthError`)."""
    return _validate(svc, parse_params(authz))


def _authorize(
    svc: Services, request: Request, params: Params, status: int, cached: bool = False
) -> Response:
    """Validate, then sign in, ask for consent, or issue the code. The request travels in the
    login and consent forms as `authz` (encoded only when one of them is shown)."""
    now = svc.ctx.clock()
    try:
        req, carried = _validate(svc, params, cached)
        current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
        step = _next_step(svc, req, current)
    except UnsafeToRedirect as exc:
        return error_page(svc, request, exc.title, exc.message, hint=exc.hint)
    except AuthorizationError as exc:
        return _error_redirect(svc, exc, status)
    if isinstance(step, IssueCode):
        return _code_redirect(svc, request, req, step.current, now, status)
    authz = encode_pairs(carried.items())
    if isinstance(step, SignInFirst):
        # From memory on the fast path (raises `NotCached`: the caller retries off the loop).
        providers = svc.cached_provider_list() if cached else svc.provider_list()
        home = provider_for_email(providers, step.login_hint) if current is None else None
        if home is not None:  # home-realm discovery: straight to the user's provider
            return redirect(federation_start(svc, home, authz, step.login_hint), status)
        return login_page(svc, request, req, authz, step.login_hint, providers=providers)
    return _step_page(svc, request, req, authz, step)


def _next_step(svc: Services, req: AuthorizationRequest, current: SignedInUser | None) -> Step:
    """`proceed` with this domain's rules (raises `AuthorizationError`)."""
    return proceed(
        svc.ctx.store,
        req,
        current,
        svc.ctx.clock(),
        admin_scopes=admin_only_scopes(svc.ctx.settings.issuer, svc.domain.id),
        rules=svc.sign_in_rules,  # read only once signed in (the fast path reads nothing)
    )


def _step_page(
    svc: Services, request: Request, req: AuthorizationRequest, authz: str, step: Step
) -> Response:
    """The page of a step that shows one: sign-in, second factor, enrollment, consent."""
    now = svc.ctx.clock()
    if isinstance(step, AskConsent | IssueCode):
        return _consent_page(svc, req, authz, step.current)
    if isinstance(step, SecondFactor):
        return factor_page(svc, req, authz, step.current, step.methods, now)
    if isinstance(step, EnrollFactor):
        return enroll_page(svc, req, authz, step.current, step.passkey_only, now)
    return login_page(svc, request, req, authz, username=step.login_hint)


async def authorize(request: Request) -> Response:
    svc = services(request)
    status = 302 if request.method == "GET" else 303
    try:
        params = read_query(request) if request.method == "GET" else await read_form(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)
    if cookie_name(svc, SESSION_COOKIE) not in request.cookies and "request_uri" not in params:
        # No session to read and no pushed request to take: with the app cached, nothing here
        # does I/O (the sign-in page is rendered in memory), so answer on the event loop.
        with contextlib.suppress(NotCached):
            return _authorize(svc, request, params, status, cached=True)
    return await run_in_threadpool(_authorize, svc, request, params, status)


# --- the sign-in and consent forms --------------------------------------------------------------

FormStep = Callable[[Services, Request, Params, Params, AuthorizationRequest, str], Response]


async def form_post(request: Request, step: FormStep, title: str, message: str) -> Response:
    """A POST of our login or consent page: read the form, re-validate the authorization
    request it carries (`authz`), then run `step` off the event loop."""
    svc = services(request)
    try:
        form = await read_form(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)

    def work() -> Response:
        authz = form.get("authz", "")
        try:
            req, params = _validate(svc, parse_params(authz))
        except (UnsafeToRedirect, AuthorizationError, errors.OAuthError):
            hint = "Go back to the application and start again."
            return error_page(svc, request, title, message, hint=hint)
        return step(svc, request, form, params, req, authz)

    return await run_in_threadpool(work)


def _login_step(
    svc: Services,
    request: Request,
    form: Params,
    params: Params,
    req: AuthorizationRequest,
    authz: str,
) -> Response:
    ip = client_address(request)
    presented = form.get("csrf_token")
    if form.duplicated or not csrf_valid(
        svc.csrf_key, "login", read_cookie(svc, request, BROWSER_COOKIE), presented
    ):
        return csrf_refused(
            svc,
            request,
            "login.csrf_refused",
            "The sign-in form was not sent from this browser's page.",
            title="Sign-in refused",
            hint="Reload the application and try again.",
        )
    username = form.get("username", "").strip()[:200]
    providers = svc.provider_list()
    home = provider_for_email(providers, username)
    if home is not None:
        # Home-realm discovery (docs/federation.md): the address's provider signs the user in;
        # no password is checked here, whatever was typed.
        return redirect(federation_start(svc, home, authz, username), 303)
    if not form.get("password"):
        message = "Enter your password."
        return login_page(svc, request, req, authz, username, message, 400, providers)
    attempt = Attempt(
        username=username,
        password=form.get("password", ""),
        ip=ip,
        device_cookie=read_cookie(svc, request, DEVICE_COOKIE),
        session_cookie=read_cookie(svc, request, SESSION_COOKIE),
    )
    outcome = sign_in(
        svc.ctx.store, svc.login_policy, attempt, svc.ctx.clock(), timed=svc.metrics.hashing
    )
    if isinstance(outcome, SignedIn):
        svc.audit.record(
            "login.success", user_id=outcome.user.id, client_id=req.client.client_id, ip=ip
        )
        svc.metrics.logins.labels("success").inc()
        return signed_in_response(svc, params, outcome)
    return _login_refused(svc, request, req, authz, attempt, outcome)


def _login_refused(
    svc: Services,
    request: Request,
    req: AuthorizationRequest,
    authz: str,
    attempt: Attempt,
    outcome: Throttled | Failed,
) -> Response:
    username = attempt.username
    if isinstance(outcome, Throttled):
        svc.audit.record("login.throttled", ip=attempt.ip, username=username)
        svc.metrics.logins.labels("locked").inc()
        message = wait_message(outcome.retry_after, outcome.reason)
        response = login_page(svc, request, req, authz, username, message, status=429)
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    user_id = outcome.user.id if outcome.user else None
    svc.audit.record("login.failure", user_id=user_id, ip=attempt.ip, username=username)
    svc.metrics.logins.labels("failure").inc()
    message = "The username or password is incorrect."
    return login_page(svc, request, req, authz, username, message, status=401)


def after_sign_in(svc: Services, params: Params) -> str:
    """The authorization request to go back to once signed in (without what asked for it;
    a pushed request's ticket is resealed so)."""
    again = resumed(_ticket_key(svc), params, without_reauthentication, svc.ctx.clock())
    return url(svc, "/oauth2/v1/authorize?") + encode_pairs(again.items())


def signed_in_response(
    svc: Services,
    params: Params,
    outcome: SignedIn,
    location: str | None = None,
    *,
    device: bool = True,
) -> Response:
    """Back to the authorization endpoint (303), or to `location`, with the new session's
    cookies. `device`: also this browser's known-device cookie — only from the sign-in form's
    routes, the one path the browser sends it to: elsewhere the request could not show the id
    it had, and a new one would replace it (and the browser's own failure count)."""
    response = redirect(location or after_sign_in(svc, params), 303)
    policy = svc.login_policy
    set_cookie(svc, response, SESSION_COOKIE, outcome.raw_session_id, policy.session_ttl_seconds)
    if device:
        set_cookie(
            svc,
            response,
            DEVICE_COOKIE,
            outcome.device_cookie,
            policy.device_cookie_seconds,
            path=_DEVICE_COOKIE_PATH,
        )
    return response


def _consent_step(
    svc: Services,
    request: Request,
    form: Params,
    params: Params,
    req: AuthorizationRequest,
    authz: str,
) -> Response:
    now = svc.ctx.clock()
    current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
    if current is None:
        return login_page(svc, request, req, authz)
    ip = client_address(request)
    user, secret = current.user, current.session.csrf_secret
    if form.duplicated or not csrf_valid(svc.csrf_key, "consent", secret, form.get("csrf_token")):
        message = "The consent form was not sent from this browser's page."
        return csrf_refused(svc, request, "consent.csrf_refused", message, user_id=user.id)
    try:
        # The request the form carries is decided again: a consent page of one request
        # must not pass another (its sign-in level, max_age or admin scope) unchecked.
        step = _next_step(svc, req, current)
    except AuthorizationError as exc:
        return _error_redirect(svc, exc, 303)
    if not isinstance(step, AskConsent | IssueCode):
        return _step_page(svc, request, req, authz, step)
    answer = answer_consent(svc.ctx.store.consents, req, user, form.get("decision"), now)
    if answer is None:
        return error_page(svc, request, "Invalid request", "Choose Allow or Deny.")
    if isinstance(answer, ConsentDenied):
        svc.audit.record("consent.denied", user_id=user.id, client_id=req.client.client_id, ip=ip)
        return _error_redirect(svc, answer.error, 303)
    svc.audit.record(
        "consent.granted",
        user_id=user.id,
        client_id=req.client.client_id,
        ip=ip,
        scopes=list(req.scopes),
    )
    return _code_redirect(svc, request, req, current, now, 303)


async def login(request: Request) -> Response:
    expired = "This sign-in request is not valid any more."
    return await form_post(request, _login_step, "Sign-in expired", expired)


async def consent(request: Request) -> Response:
    expired = "This authorization request is not valid any more."
    return await form_post(request, _consent_step, "Request expired", expired)


# --- RP-Initiated Logout ------------------------------------------------------------------------


def _logout(svc: Services, request: Request, params: Params) -> Response:
    now = svc.ctx.clock()
    title = "Invalid sign-out request"
    if params.duplicated:
        return error_page(svc, request, title, "The sign-out request repeats a parameter.")
    try:
        req = validate_logout(params, hint_verifier(svc.issuer, now), svc.client)
    except InvalidLogout as exc:
        return error_page(svc, request, title, str(exc))
    session_cookie = read_cookie(svc, request, SESSION_COOKIE)
    current = current_session(svc.ctx.store, session_cookie, now)
    presented = params.get("csrf_token") if request.method == "POST" else None
    step = decide_logout(req, current, presented, svc.csrf_key)
    if isinstance(step, ConfirmLogout):
        return page(
            svc,
            "logout_confirm.html",
            form_targets=[origin(req.location) if req.location else None],
            form_action=url(svc, "/oauth2/v1/userlogout"),
            fields=req.carried(params),
            csrf_token=csrf_token(svc.csrf_key, "logout", step.current.session.csrf_secret),
            user_display_name=step.current.user.display_name,
            username=step.current.user.username,
        )
    if isinstance(step, LogoutRefused):
        message = "The sign-out form was not sent from this browser's page."
        return csrf_refused(
            svc,
            request,
            "logout.csrf_refused",
            message,
            title="Sign-out refused",
            user_id=step.user.id,
        )
    ended = end_session(svc.ctx.store, session_cookie, now)
    if ended is not None:
        svc.audit.record("logout", user_id=ended.user_id, ip=client_address(request))
    response: Response = (
        redirect(step.location, 303)
        if step.location
        else page(svc, "logged_out.html", message="You have been signed out.")
    )
    delete_cookie(svc, response, SESSION_COOKIE)
    return response


async def logout(request: Request) -> Response:
    svc = services(request)
    try:
        params = read_query(request) if request.method == "GET" else await read_form(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)
    return await run_in_threadpool(_logout, svc, request, params)


BROWSER_ROUTES = [
    Route("/oauth2/v1/authorize", authorize, methods=["GET", "POST"]),
    Route("/oauth2/v1/login", login, methods=["POST"]),
    Route("/oauth2/v1/consent", consent, methods=["POST"]),
    Route("/oauth2/v1/userlogout", logout, methods=["GET", "POST"]),
]
