"""The browser side of the authorization code flow: authorize, login, consent, logout.

RFC 6749 §4.1.1-§4.1.2, OIDC Core §3.1.2 (prompt, max_age), RFC 9207 (`iss` on every
authorization response), OIDC RP-Initiated Logout 1.0. docs/security.md rules 1-10 and 29 are
enforced here: error pages instead of unvalidated redirects, 303 after POSTs, CSRF tokens bound to
the browser, anti-framing headers, session cookies HttpOnly and SameSite=Lax, login throttling.
"""

from __future__ import annotations

import contextlib
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.admin import admin_scope
from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import BrowserSession, Consent, User
from tessera.domain.passwords import hash_password, needs_rehash, verify_password
from tessera.oauth import errors, known_device
from tessera.oauth.authorize import (
    AuthorizationError,
    AuthorizationRequest,
    UnsafeToRedirect,
    issue_code,
    redirect_with,
    validate_authorization_request,
)
from tessera.oauth.login_throttle import ThrottlePolicy, decide, throttle_keys
from tessera.oauth.logout import InvalidLogout, validate_logout
from tessera.oauth.tokens import InvalidOwnToken
from tessera.shared.urlencoding import encode_pairs
from tessera.web.forms import Params, parse_params, read_form, read_query
from tessera.web.proxy import client_ip
from tessera.web.services import Services

__all__ = ["browser_routes"]

SESSION_COOKIE = "tessera_session"
BROWSER_COOKIE = "tessera_bid"
DEVICE_COOKIE = "tessera_device"
_SCOPE_WORDS = {
    "openid": ("Verify your identity", "Confirm who you are with your account."),
    "profile": ("See your profile", "Your name and username."),
    "email": ("See your email address", "The email address of your account."),
    "offline_access": ("Stay connected", "Keep access while you are not using the app."),
}


@dataclass(frozen=True, slots=True)
class _Scope:
    label: str
    description: str


def _client_ip(request: Request) -> str:
    return client_ip(request.scope) or "unknown"


def _origin(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def _page_headers(form_targets: list[str | None] | None = None) -> dict[str, str]:
    """docs/security.md rule 8: no framing, no referrer, nothing third-party."""
    targets = " ".join(["'self'", *[t for t in (form_targets or []) if t]])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _wait_message(seconds: int, reason: str | None) -> str:
    """The same words whether or not the account exists."""
    wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    where = "from your network" if reason == "address" else "for this account"
    return f"Too many failed sign-ins {where}. Try again in {wait}."


def browser_routes(svc: Services) -> list[Route]:
    ctx = svc.ctx
    settings = ctx.settings
    device_key = settings.subkey("known-device cookie")
    policy = ThrottlePolicy(
        window_seconds=settings.login_failure_window,
        free_per_pair=settings.login_max_failures,
        free_per_account=10 * settings.login_max_failures,
        free_per_address=settings.login_max_failures_per_address,
        first_delay_seconds=settings.login_first_delay,
    )

    # --- rendering ------------------------------------------------------------------------------

    def page(
        name: str, status: int = 200, form_targets: list[str | None] | None = None, **values: Any
    ) -> HTMLResponse:
        html = svc.templates.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers=_page_headers(form_targets))

    def error_page(
        request: Request, title: str, message: str, status: int = 400, hint: str | None = None
    ) -> HTMLResponse:
        return page(
            "error.html",
            status,
            title=title,
            message=message,
            hint=hint,
            request_id=request.scope.get("state", {}).get("request_id"),
        )

    def redirect(location: str, status: int = 303) -> RedirectResponse:
        return RedirectResponse(
            location,
            status_code=status,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    def error_redirect(exc: AuthorizationError, status: int) -> RedirectResponse:
        values = {**exc.error.body(), "state": exc.state, "iss": settings.issuer}
        return redirect(redirect_with(exc.redirect_uri, values), status)

    # --- cookies and CSRF -----------------------------------------------------------------------

    def set_cookie(
        response: Response, name: str, value: str, max_age: int | None, path: str = "/"
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="lax",
            secure=svc.secure_cookies,
        )

    def csrf(purpose: str, binding: str) -> str:
        return hmac.new(svc.csrf_key, f"{purpose}:{binding}".encode(), sha256).hexdigest()

    def csrf_ok(purpose: str, binding: str | None, presented: str | None) -> bool:
        if not binding or not presented:
            return False
        return hmac.compare_digest(csrf(purpose, binding), presented)

    def current_session(request: Request, now: datetime) -> tuple[BrowserSession, User] | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or len(raw) > 128:
            return None
        session = ctx.store.sessions.get(sha256_b64(raw))
        if session is None or session.ended_at is not None or session.expires_at <= now:
            return None
        user = ctx.store.users.get(session.user_id)
        if user is None or not user.active or user.password_changed_at > session.auth_time:
            return None
        return session, user

    # --- the decision after validation ----------------------------------------------------------

    def proceed(
        request: Request, req: AuthorizationRequest, params: Params, now: datetime, status: int
    ) -> Response:
        """Sign in, ask for consent, or issue the code. The request travels in the login and
        consent forms as `authz` (encoded only when one of them is shown)."""
        found = current_session(request, now)
        login_needed = (
            found is None
            or "login" in req.prompt
            or (
                req.max_age is not None and (now - found[0].auth_time).total_seconds() > req.max_age
            )
        )
        if login_needed:
            if "none" in req.prompt:  # OIDC Core §3.1.2.6
                raise AuthorizationError(
                    errors.LoginRequired("the user is not signed in"), req.redirect_uri, req.state
                )
            return login_page(
                request, req, encode_pairs(params.items()), username=req.login_hint or ""
            )
        assert found is not None
        session, user = found
        if admin_scope(settings.issuer) in req.scopes and not user.is_admin:
            raise AuthorizationError(
                errors.AccessDenied("only administrators may use the admin scope"),
                req.redirect_uri,
                req.state,
            )
        consent = ctx.store.consents.get(user.id, req.client.client_id)
        consented = req.client.first_party or (
            consent is not None
            and consent.revoked_at is None
            and set(req.scopes) <= set(consent.scopes)
        )
        if "consent" in req.prompt or not consented:
            if "none" in req.prompt:
                raise AuthorizationError(
                    errors.ConsentRequired("the user has not consented"),
                    req.redirect_uri,
                    req.state,
                )
            return consent_page(req, encode_pairs(params.items()), session, user)
        return success(request, req, session, user, now, status)

    def success(
        request: Request,
        req: AuthorizationRequest,
        session: BrowserSession,
        user: User,
        now: datetime,
        status: int,
    ) -> Response:
        code = issue_code(
            ctx.store.codes,
            req,
            user_id=user.id,
            auth_time=session.auth_time,
            session_id=session.id_hash,
            now=now,
            ttl_seconds=settings.code_ttl,
        )
        svc.audit.record(
            "authorize.code_issued",
            user_id=user.id,
            client_id=req.client.client_id,
            ip=_client_ip(request),
        )
        values = {"code": code, "state": req.state, "iss": settings.issuer}
        return redirect(redirect_with(req.redirect_uri, values), status)

    def login_page(
        request: Request,
        req: AuthorizationRequest | None,
        authz: str,
        username: str = "",
        error: str | None = None,
        locked: bool = False,
        status: int = 200,
    ) -> Response:
        bid = request.cookies.get(BROWSER_COOKIE)
        fresh = not bid or len(bid) > 128
        if fresh:
            bid = new_token(16)
        assert bid is not None
        response = page(
            "login.html",
            status,
            form_targets=[_origin(req.redirect_uri) if req else None],
            app_name=req.client.name if req else None,
            form_action="/oauth2/v1/login",
            authz=authz,
            csrf_token=csrf("login", bid),
            username=username[:200],
            error=error,
            locked=locked,
        )
        if fresh:
            set_cookie(response, BROWSER_COOKIE, bid, None)
        return response

    def consent_page(
        req: AuthorizationRequest, authz: str, session: BrowserSession, user: User
    ) -> Response:
        return page(
            "consent.html",
            form_targets=[_origin(req.redirect_uri)],
            app_name=req.client.name,
            user_display_name=user.display_name,
            username=user.username,
            scopes=describe_scopes(req),
            redirect_host=urlsplit(req.redirect_uri).netloc or req.redirect_uri,
            form_action="/oauth2/v1/consent",
            authz=authz,
            csrf_token=csrf("consent", session.csrf_secret),
        )

    def describe_scopes(req: AuthorizationRequest) -> list[_Scope]:
        out = [_Scope(*_SCOPE_WORDS[s]) for s in req.scopes if s in _SCOPE_WORDS]
        resource = svc.resource_by_audience(req.audience) if req.audience else None
        for scope in req.resource_scopes:
            name = scope[len(req.audience or "") :]
            label = f"Use {resource.name}" if resource else "Use an API"
            out.append(_Scope(label, f"Call {req.audience} on your behalf ({name})."))
        return out

    def validate(params: Params, cached: bool = False) -> AuthorizationRequest:
        """With `cached`, from memory only (the app and resources): raises `NotCached`."""
        if cached:
            lookup, resources = svc.cached_client, svc.cached_resource_list()
        else:
            lookup, resources = svc.client, svc.resource_list()
        return validate_authorization_request(params, params.duplicated, lookup, resources)

    # --- endpoints ------------------------------------------------------------------------------

    async def authorize(request: Request) -> Response:
        status = 302 if request.method == "GET" else 303
        try:
            params = read_query(request) if request.method == "GET" else await read_form(request)
        except errors.OAuthError as exc:
            return error_page(request, "Invalid request", exc.description)

        def work(cached: bool = False) -> Response:
            now = ctx.clock()
            try:
                req = validate(params, cached)
                return proceed(request, req, params, now, status)
            except UnsafeToRedirect as exc:
                return error_page(request, exc.title, exc.message)
            except AuthorizationError as exc:
                return error_redirect(exc, status)

        if SESSION_COOKIE not in request.cookies:
            # No session to read: with the app cached, nothing here does I/O (the sign-in
            # page is rendered in memory), so answer on the event loop.
            with contextlib.suppress(NotCached):
                return work(cached=True)
        return await run_in_threadpool(work)

    FormStep = Callable[[Request, Params, Params, AuthorizationRequest, str], Response]

    def form_post(
        step: FormStep, title: str, message: str
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST of our login or consent page: read the form, re-validate the authorization
        request it carries (`authz`), then run `step` off the event loop."""

        async def handler(request: Request) -> Response:
            try:
                form = await read_form(request)
            except errors.OAuthError as exc:
                return error_page(request, "Invalid request", exc.description)

            def work() -> Response:
                authz = form.get("authz", "")
                try:
                    params = parse_params(authz)
                    req = validate(params)
                except (UnsafeToRedirect, AuthorizationError, errors.OAuthError):
                    return error_page(
                        request, title, message, hint="Go back to the application and start again."
                    )
                return step(request, form, params, req, authz)

            return await run_in_threadpool(work)

        return handler

    def login_form(
        request: Request, form: Params, params: Params, req: AuthorizationRequest, authz: str
    ) -> Response:
        now = ctx.clock()
        if form.duplicated or not csrf_ok(
            "login", request.cookies.get(BROWSER_COOKIE), form.get("csrf_token")
        ):
            svc.audit.record("login.csrf_refused", ip=_client_ip(request))
            return error_page(
                request,
                "Sign-in refused",
                "The sign-in form was not sent from this browser's page.",
                status=403,
                hint="Reload the application and try again.",
            )
        username = form.get("username", "").strip()[:200]
        password = form.get("password", "")
        ip = _client_ip(request)
        user = ctx.store.users.get_by_username(username) if username else None
        device = known_device.read(
            device_key, request.cookies.get(DEVICE_COOKIE), user.id if user else None, now
        )
        keys = throttle_keys(username, ip, device)
        verdict = decide(
            keys, ctx.store.login_throttle.recent(keys.checked(), now - policy.window), now, policy
        )
        if not verdict.allowed:
            # The password is not checked during a wait: guessing stays bounded.
            svc.audit.record("login.throttled", ip=ip, username=username)
            svc.metrics.logins.labels("locked").inc()
            response = login_page(
                request,
                req,
                authz,
                username,
                _wait_message(verdict.retry_after, verdict.reason),
                locked=True,
                status=429,
            )
            response.headers["Retry-After"] = str(verdict.retry_after)
            return response
        stored = user.password_hash if user else None
        ok = svc.metrics.hashing(lambda: verify_password(stored, password))
        if not ok or user is None or not user.active:
            for key in keys.recorded():
                ctx.store.login_throttle.record_failure(key, now)
            svc.audit.record(
                "login.failure", user_id=user.id if user else None, ip=ip, username=username
            )
            svc.metrics.logins.labels("failure").inc()
            return login_page(
                request,
                req,
                authz,
                username,
                "The username or password is incorrect.",
                status=401,
            )
        if verdict.own_failures and keys.own:  # a write only when there is something to forget
            ctx.store.login_throttle.clear(keys.own)
        if needs_rehash(user.password_hash):
            rehashed = svc.metrics.hashing(lambda: hash_password(password))
            ctx.store.users.update(replace(user, password_hash=rehashed))
        raw = new_token(32)
        session = BrowserSession(
            id_hash=sha256_b64(raw),
            user_id=user.id,
            auth_time=now,
            expires_at=now + timedelta(seconds=settings.session_ttl),
            csrf_secret=new_token(16),
        )
        old = request.cookies.get(SESSION_COOKIE)
        if old and len(old) <= 128:
            ctx.store.sessions.end(sha256_b64(old), now)  # no session fixation
        ctx.store.sessions.add(session)
        svc.audit.record("login.success", user_id=user.id, client_id=req.client.client_id, ip=ip)
        svc.metrics.logins.labels("success").inc()
        # The user just authenticated: drop what asked for it, or we would ask again.
        again = {k: v for k, v in params.items() if k not in ("max_age",)}
        if "prompt" in again:
            rest = " ".join(p for p in again["prompt"].split() if p != "login")
            again.pop("prompt")
            if rest:
                again["prompt"] = rest
        response = redirect("/oauth2/v1/authorize?" + encode_pairs(again.items()), 303)
        set_cookie(response, SESSION_COOKIE, raw, settings.session_ttl)
        set_cookie(
            response,
            DEVICE_COOKIE,
            known_device.issue(device_key, user.id, now, device),
            int(known_device.KNOWN_DEVICE_TTL.total_seconds()),
            path="/oauth2/v1/login",
        )
        return response

    def consent_form(
        request: Request, form: Params, params: Params, req: AuthorizationRequest, authz: str
    ) -> Response:
        now = ctx.clock()
        found = current_session(request, now)
        if found is None:
            return login_page(request, req, authz)
        session, user = found
        if form.duplicated or not csrf_ok("consent", session.csrf_secret, form.get("csrf_token")):
            svc.audit.record("consent.csrf_refused", user_id=user.id, ip=_client_ip(request))
            return error_page(
                request,
                "Request refused",
                "The consent form was not sent from this browser's page.",
                status=403,
            )
        decision = form.get("decision")
        if decision == "deny":
            svc.audit.record(
                "consent.denied",
                user_id=user.id,
                client_id=req.client.client_id,
                ip=_client_ip(request),
            )
            denied = AuthorizationError(
                errors.AccessDenied("the user denied the request"), req.redirect_uri, req.state
            )
            return error_redirect(denied, 303)
        if decision != "allow":
            return error_page(request, "Invalid request", "Choose Allow or Deny.")
        previous = ctx.store.consents.get(user.id, req.client.client_id)
        kept = previous.scopes if previous and previous.revoked_at is None else ()
        ctx.store.consents.put(
            Consent(user.id, req.client.client_id, tuple(dict.fromkeys((*kept, *req.scopes))), now)
        )
        svc.audit.record(
            "consent.granted",
            user_id=user.id,
            client_id=req.client.client_id,
            ip=_client_ip(request),
            scopes=list(req.scopes),
        )
        return success(request, req, session, user, now, 303)

    async def logout(request: Request) -> Response:
        try:
            params = read_query(request) if request.method == "GET" else await read_form(request)
        except errors.OAuthError as exc:
            return error_page(request, "Invalid request", exc.description)

        def verify_hint(hint: str) -> dict[str, Any]:
            try:
                return svc.issuer.verify_own(
                    hint, int(ctx.clock().timestamp()), typ=None, check_exp=False
                )
            except InvalidOwnToken:
                raise InvalidLogout(
                    "The sign-out request carries an invalid id_token_hint."
                ) from None

        def work() -> Response:
            now = ctx.clock()
            if params.duplicated:
                return error_page(
                    request, "Invalid sign-out request", "The sign-out request repeats a parameter."
                )
            try:
                req = validate_logout(params, verify_hint, svc.client)
            except InvalidLogout as exc:
                return error_page(request, "Invalid sign-out request", str(exc))
            found = current_session(request, now)
            if found is not None and not req.hinted:
                # RP-Initiated Logout §2: any page can link here; ask the user (CSRF-protected).
                session, user = found
                presented = params.get("csrf_token") if request.method == "POST" else None
                if presented is None:
                    return page(
                        "logout_confirm.html",
                        form_targets=[_origin(req.location) if req.location else None],
                        form_action="/oauth2/v1/userlogout",
                        fields=req.carried(params),
                        csrf_token=csrf("logout", session.csrf_secret),
                        user_display_name=user.display_name,
                        username=user.username,
                    )
                if not csrf_ok("logout", session.csrf_secret, presented):
                    svc.audit.record("logout.csrf_refused", user_id=user.id, ip=_client_ip(request))
                    return error_page(
                        request,
                        "Sign-out refused",
                        "The sign-out form was not sent from this browser's page.",
                        status=403,
                    )
            raw = request.cookies.get(SESSION_COOKIE)
            if raw and len(raw) <= 128:
                ended = ctx.store.sessions.get(sha256_b64(raw))
                ctx.store.sessions.end(sha256_b64(raw), now)
                if ended is not None:
                    svc.audit.record("logout", user_id=ended.user_id, ip=_client_ip(request))
            response: Response = (
                redirect(req.location, 303)
                if req.location
                else page("logged_out.html", message="You have been signed out.")
            )
            response.delete_cookie(
                SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=svc.secure_cookies
            )
            return response

        return await run_in_threadpool(work)

    return [
        Route("/oauth2/v1/authorize", authorize, methods=["GET", "POST"]),
        Route(
            "/oauth2/v1/login",
            form_post(login_form, "Sign-in expired", "This sign-in request is not valid any more."),
            methods=["POST"],
        ),
        Route(
            "/oauth2/v1/consent",
            form_post(
                consent_form,
                "Request expired",
                "This authorization request is not valid any more.",
            ),
            methods=["POST"],
        ),
        Route("/oauth2/v1/userlogout", logout, methods=["GET", "POST"]),
    ]
