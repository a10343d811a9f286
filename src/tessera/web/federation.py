"""Signing in through upstream OpenID Connect providers (docs/federation.md): the browser's
round trip to the provider and back, and our public keys for `private_key_jwt`.

- `start` sends the browser to the provider (OIDC Core §3.1.2.1: the authorization code flow
  with PKCE, RFC 7636, `state` and `nonce`); what the callback must check travels in a sealed
  cookie limited to these paths (`tessera_federation`, ten minutes).
- `callback` has the core check the answer and redeem the code (`tessera.oauth.federation.flow`:
  the mix-up defence of one redirect URI per provider, RFC 9207 `iss`, `state` once, the ID
  token of OIDC Core §3.1.3.7), then, by the request's purpose: signs in (the account the core
  resolves, then the authorization request the sign-in page had), links the provider to the
  signed-in user's account, or shows an administrator's test what would happen.
- `test` starts the administrator's "try sign-in" from a sealed ticket (the console's link).
- `jwks` serves the public JWK Set of our key for a provider (RFC 7517 §5), its `jwks_uri`.

Each handler parses, calls the core and renders; every refusal is a page saying what went
wrong (`UpstreamError.reason` and `Refused.reason` are our words, never the upstream's), audited
as `federation.refused` with the technical detail, and nothing is created, linked or signed in
(docs/security.md rule 65). The cookie is deleted whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.domain.model import UpstreamProvider
from tessera.manage.providers import federation_url
from tessera.oauth import errors
from tessera.oauth.authorize import AuthorizationError, UnsafeToRedirect
from tessera.oauth.federation.accounts import (
    Account,
    UpstreamClaims,
    authenticated_at,
    link_identity,
    plan_account,
    resolve_account,
)
from tessera.oauth.federation.errors import Refused, UpstreamError
from tessera.oauth.federation.flow import (
    COOKIE_NAME,
    COOKIE_PATH,
    REQUEST_LIFETIME,
    TEST_TICKET_PURPOSE,
    FederationRequest,
    Purpose,
    begin,
    complete,
    open_request,
    open_test_ticket,
    seal_request,
)
from tessera.oauth.federation.secrets import PROVIDER_KEY_PURPOSE, client_jwks, credentials_for
from tessera.oauth.interaction.login import Attempt, SignedIn, current_session, sign_in_verified
from tessera.shared.sealing import SealError
from tessera.web.account import SECURITY_PAGE, security_changed, when
from tessera.web.browser import SESSION_COOKIE, signed_in_response, validate_authz
from tessera.web.forms import Params, read_query
from tessera.web.logs import get_logger
from tessera.web.pages import (
    client_address,
    delete_cookie,
    error_page,
    page,
    read_cookie,
    redirect,
    set_cookie,
    url,
)
from tessera.web.responses import NO_STORE, json_response
from tessera.web.services import Services, services

__all__ = [
    "FEDERATION_COOKIE",
    "FEDERATION_ROUTES",
    "FEDERATION_THREADS",
    "begin_link",
    "callback_uri",
]

FEDERATION_COOKIE = COOKIE_NAME  # the domain's cookie suffix is appended
_BASE = COOKIE_PATH  # the routes' common path, and the cookie's
_COOKIE_TTL = int(REQUEST_LIFETIME.total_seconds())  # the sealed request's own lifetime
_REQUEST_KEY_PURPOSE = "federation requests"
_START_AGAIN = "Go back to the application and sign in again."
# Threads for the federation routes, apart from the node's worker threads (`web.app`): they
# mostly wait on the network.
FEDERATION_THREADS = 16


def callback_uri(svc: Services, provider: UpstreamProvider) -> str:
    """The redirect URI registered at the provider, as the CLI and the admin API show it: one
    per provider (the mix-up defence)."""
    return federation_url(svc.ctx.settings.issuer, provider, "callback")


def _request_key(svc: Services) -> bytes:
    return svc.ctx.subkey(_REQUEST_KEY_PURPOSE)


# --- pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Back:
    """Where a refusal page offers to go: the sign-in page, or the account page."""

    url: str
    label: str


def _back_for(svc: Services, req: FederationRequest | None) -> _Back | None:
    if req is None:
        return None
    if req.purpose == "link":
        return _Back(url(svc, SECURITY_PAGE), "Back to your account")
    if req.authz:
        return _Back(url(svc, "/oauth2/v1/authorize?") + req.authz, "Back to sign-in")
    return None


def _refusal(
    svc: Services,
    request: Request,
    title: str,
    message: str,
    *,
    status: int,
    detail: str,
    provider: UpstreamProvider | None = None,
    name: str | None = None,
    back: _Back | None = None,
    hint: str | None = None,
    user_id: str | None = None,
) -> Response:
    """The refusal page, audited as `federation.refused` with the technical detail."""
    svc.audit.record(
        "federation.refused",
        user_id=user_id,
        ip=client_address(request),
        provider=provider.name if provider else (name or "")[:64],
        detail=detail,
    )
    response = error_page(
        svc,
        request,
        title,
        message,
        status,
        hint=hint if hint is not None else (None if back else _START_AGAIN),
        back=(back.url, back.label) if back else None,
    )
    delete_cookie(svc, response, FEDERATION_COOKIE, path=_BASE)
    return response


def _unavailable(
    svc: Services,
    request: Request,
    provider: UpstreamProvider,
    exc: UpstreamError,
    *,
    back: _Back | None = None,
    hint: str | None = None,
    user_id: str | None = None,
) -> Response:
    """The provider could not be discovered or reached (502): the round trip did not start."""
    return _refusal(
        svc,
        request,
        f"{provider.display_name} is not available",
        exc.reason,
        status=502,
        detail=exc.detail,
        provider=provider,
        back=back,
        hint=hint,
        user_id=user_id,
    )


def _to_provider(svc: Services, location: str, req: FederationRequest) -> Response:
    """303 to the provider's authorization endpoint, the request sealed in the cookie."""
    response = redirect(location, 303)
    sealed = seal_request(_request_key(svc), req)
    set_cookie(svc, response, FEDERATION_COOKIE, sealed, _COOKIE_TTL, path=_BASE)
    return response


def _begin(
    svc: Services,
    provider: UpstreamProvider,
    *,
    purpose: Purpose,
    authz: str | None,
    user_id: str | None,
    login_hint: str | None,
    prompt_login: bool = False,
    max_age: int | None = None,
) -> Response:
    """Discover the provider (cached) and send the browser there (raises `UpstreamError`)."""
    metadata = svc.node.upstream.metadata(provider.issuer)
    location, req = begin(
        provider,
        metadata,
        redirect_uri=callback_uri(svc, provider),
        purpose=purpose,
        authz=authz,
        user_id=user_id,
        login_hint=login_hint,
        prompt_login=prompt_login,
        max_age=max_age,
        now=svc.ctx.clock(),
    )
    return _to_provider(svc, location, req)


def begin_link(
    svc: Services, request: Request, provider: UpstreamProvider, user_id: str
) -> Response:
    """The account page's "Link <provider>": the round trip that links the provider's account
    to the signed-in user's (the callback checks the session is still that user's)."""
    try:
        return _begin(svc, provider, purpose="link", authz=None, user_id=user_id, login_hint=None)
    except UpstreamError as exc:
        back = _Back(url(svc, SECURITY_PAGE), "Back to your account")
        return _unavailable(svc, request, provider, exc, back=back, user_id=user_id)


# --- start --------------------------------------------------------------------------------------


def _unknown(svc: Services, request: Request, name: str, back: _Back | None) -> Response:
    return _refusal(
        svc,
        request,
        "Unknown sign-in provider",
        "This identity domain has no sign-in provider of that name, or it is turned off.",
        status=404,
        detail="no enabled provider of that name",
        name=name,
        back=back,
    )


def _start(svc: Services, request: Request, name: str, query: Params) -> Response:
    title = "Sign-in not started"
    authz = query.get("authz", "")
    back = _Back(url(svc, "/oauth2/v1/authorize?") + authz, "Back to sign-in") if authz else None
    if query.duplicated:
        message = "The sign-in link repeats a parameter."
        return _refusal(svc, request, title, message, status=400, detail=message, name=name)
    prompt_login, max_age = False, None
    if authz:
        try:
            resumed, _ = validate_authz(svc, authz)  # one that cannot be resumed is refused now
        except (UnsafeToRedirect, AuthorizationError, errors.OAuthError):
            message = "This sign-in request is not valid any more."
            detail = "the authorization request (authz) is not valid"
            return _refusal(svc, request, title, message, status=400, detail=detail, name=name)
        # A fresh sign-in asked of us is asked of the provider (checked at the callback).
        prompt_login, max_age = "login" in resumed.prompt, resumed.max_age
    provider = svc.ctx.store.upstream_providers.get_by_name(name)
    if provider is None or not provider.enabled:
        return _unknown(svc, request, name, back)
    hint = query.get("login_hint")
    try:
        return _begin(
            svc,
            provider,
            purpose="sign-in",
            authz=authz or None,
            user_id=None,
            login_hint=hint,  # `begin` drops an overlong or unprintable one
            prompt_login=prompt_login,
            max_age=max_age,
        )
    except UpstreamError as exc:
        again = "Try again in a moment, or sign in another way."
        return _unavailable(svc, request, provider, exc, back=back, hint=again)


def _test(svc: Services, request: Request, name: str, query: Params) -> Response:
    """The administrator's "try sign-in": a sealed ticket for this provider (ten minutes). A
    disabled provider can be tried before it is turned on."""
    title = "Test sign-in not started"
    opened = open_test_ticket(
        svc.ctx.subkey(TEST_TICKET_PURPOSE), query.get("ticket", ""), svc.ctx.clock()
    )
    provider = svc.ctx.store.upstream_providers.get_by_name(name)
    if query.duplicated or opened is None or provider is None or opened[0] != provider.id:
        return _refusal(
            svc,
            request,
            title,
            "This test link is not valid, or it is more than ten minutes old.",
            status=400,
            detail="the test ticket is invalid, expired or for another provider",
            provider=provider,
            name=name,
            hint="Start the test again from the console or with `tessera admin providers test`.",
        )
    try:
        return _begin(svc, provider, purpose="test", authz=None, user_id=opened[1], login_hint=None)
    except UpstreamError as exc:
        # An administrator's test: the technical detail helps.
        return _unavailable(svc, request, provider, exc, hint=exc.detail, user_id=opened[1])


# --- callback -----------------------------------------------------------------------------------


def _callback(svc: Services, request: Request, name: str, query: Params) -> Response:
    now = svc.ctx.clock()
    sealed = read_cookie(svc, request, FEDERATION_COOKIE)
    req = open_request(_request_key(svc), sealed, now) if sealed else None
    title = "Sign-in not completed"
    if req is None:
        return _refusal(
            svc,
            request,
            title,
            "This sign-in was not started in this browser, or it took more than ten minutes.",
            status=400,
            detail="no valid federation cookie" if sealed is None else "the cookie is not valid",
            name=name,
        )
    back = _back_for(svc, req)
    if req.purpose == "link":
        title = "Provider not linked"
    provider = svc.ctx.store.upstream_providers.get_by_name(name)
    if provider is None or not (provider.enabled or req.purpose == "test"):
        return _unknown(svc, request, name, back)
    if query.duplicated:  # RFC 6749 §3.1: no parameter may repeat
        message = "The answer of the sign-in provider is not valid."
        detail = "a parameter of the response repeats"
        return _refusal(
            svc, request, title, message, status=400, detail=detail, provider=provider, back=back
        )
    # What to do with the claims, or the refusal of a check made before the code is redeemed.
    outcome: _Outcome | Response
    if req.purpose == "sign-in":
        outcome = _prepare_sign_in(svc, request, provider, req)
    elif req.purpose == "link":
        outcome = _prepare_link(svc, request, provider, req, now)
    else:
        outcome = _prepare_test(svc, request, provider, req)
    if isinstance(outcome, Response):
        return outcome
    response: Response
    try:
        claims = complete(
            svc.ctx.store,
            svc.node.upstream,
            provider,
            # Sealed at rest (docs/security.md rule 67), opened for this exchange only.
            credentials_for(svc.ctx.subkey(PROVIDER_KEY_PURPOSE), provider),
            req,
            query,
            redirect_uri=callback_uri(svc, provider),
            now=now,
            provider_name_in_path=name,
        )
    except UpstreamError as exc:
        if req.purpose == "test":
            svc.audit.record(
                "federation.refused",
                actor=req.user_id,  # who asked for the test: `tessera.manage.providers`
                ip=client_address(request),
                provider=provider.name,
                detail=exc.detail,
                test=True,
            )
            response = _test_page(svc, provider, None, exc.reason, exc.detail)
        else:
            response = _refusal(
                svc,
                request,
                title,
                exc.reason,
                status=400,
                detail=exc.detail,
                provider=provider,
                back=back,
                user_id=req.user_id,
            )
    else:
        response = outcome(claims)
    delete_cookie(svc, response, FEDERATION_COOKIE, path=_BASE)  # used once, whatever came
    return response


_Outcome = Callable[[UpstreamClaims], Response]


def _prepare_sign_in(
    svc: Services, request: Request, provider: UpstreamProvider, req: FederationRequest
) -> _Outcome | Response:
    back = _back_for(svc, req)
    params = Params([])
    if req.authz:
        try:
            _, params = validate_authz(svc, req.authz)
        except (UnsafeToRedirect, AuthorizationError, errors.OAuthError):
            return _refusal(
                svc,
                request,
                "Sign-in expired",
                "This sign-in request is not valid any more.",
                status=400,
                detail="the authorization request (authz) is not valid any more",
                provider=provider,
            )

    def finish(claims: UpstreamClaims) -> Response:
        account = resolve_account(svc.ctx.store, provider, claims, svc.ctx.clock())
        if isinstance(account, Refused):
            return _refusal(
                svc,
                request,
                "Sign-in refused",
                account.reason,
                status=403,
                detail=account.detail,
                provider=provider,
                back=back,
                hint="",
            )
        return _signed_in(svc, request, provider, req, params, account, claims)

    return finish


_ACCOUNT_EVENTS = {"linked": "federation.linked", "created": "federation.user_created"}


def _signed_in(
    svc: Services,
    request: Request,
    provider: UpstreamProvider,
    req: FederationRequest,
    params: Params,
    account: Account,
    claims: UpstreamClaims,
) -> Response:
    """The session of the account `resolve_account` gave, then back to the authorization
    request, as after a password (`fed` is one factor: the second-factor rules follow). The
    session was authenticated when the provider says it authenticated the user."""
    user, ip = account.user, client_address(request)
    event = _ACCOUNT_EVENTS.get(account.outcome)
    if event is None and (account.group_ids or account.left_ids):
        event = "federation.groups_changed"  # a linked account whose groups claim changed
    if event is not None:
        svc.audit.record(
            event,
            user_id=user.id,
            ip=ip,
            provider=provider.name,
            groups=list(account.group_ids),
            groups_left=list(account.left_ids),
        )
    cookies = Attempt(
        username=user.username,
        password="",
        ip=ip,
        device_cookie=None,  # not sent to this path (signed_in_response, `device`)
        session_cookie=read_cookie(svc, request, SESSION_COOKIE),
    )
    now = svc.ctx.clock()
    signed = sign_in_verified(
        svc.ctx.store,
        svc.login_policy,
        user,
        ("fed",),
        cookies,
        now,
        upstream_provider=provider.id,
        auth_time=authenticated_at(claims, now),
    )
    if not isinstance(signed, SignedIn):
        return _refusal(
            svc,
            request,
            "Sign-in refused",
            "This account is disabled.",
            status=403,
            detail="the local account is disabled",
            provider=provider,
            back=_back_for(svc, req),
            hint="",
            user_id=user.id,
        )
    svc.audit.record(
        "login.success",
        user_id=user.id,
        client_id=params.get("client_id"),
        ip=ip,
        method="fed",
        provider=provider.name,
    )
    svc.metrics.logins.labels("success").inc()
    # Without an authorization request to resume (a bookmarked start): the account page.
    location = None if req.authz else url(svc, "/account/")
    return signed_in_response(svc, params, signed, location, device=False)


def _prepare_link(
    svc: Services,
    request: Request,
    provider: UpstreamProvider,
    req: FederationRequest,
    now: datetime,
) -> _Outcome | Response:
    """Linking needs the browser still signed in as the user who asked (checked before the
    code is redeemed, and the account the link names is that session's user)."""
    back = _back_for(svc, req)
    current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
    if current is None or current.user.id != req.user_id:
        return _refusal(
            svc,
            request,
            "Provider not linked",
            "You are not signed in as the account that asked to link this provider.",
            status=403,
            detail="the session is not the linking user's",
            provider=provider,
            back=back,
            user_id=req.user_id,
        )

    def finish(claims: UpstreamClaims) -> Response:
        linked = link_identity(svc.ctx.store, provider, claims, current.user, svc.ctx.clock())
        if isinstance(linked, Refused):
            return _refusal(
                svc,
                request,
                "Provider not linked",
                linked.reason,
                status=409,
                detail=linked.detail,
                provider=provider,
                back=back,
                hint="",
                user_id=current.user.id,
            )
        return security_changed(
            svc,
            request,
            current,
            "account.provider_linked",
            f"your {provider.display_name} account was linked",
            "provider-linked",
            provider=provider.name,
        )

    return finish


def _prepare_test(
    svc: Services, request: Request, provider: UpstreamProvider, req: FederationRequest
) -> _Outcome:
    def finish(claims: UpstreamClaims) -> Response:
        svc.audit.record(
            "federation.tested",
            actor=req.user_id,  # who asked for the test: `tessera.manage.providers`
            ip=client_address(request),
            provider=provider.name,
        )
        plan = plan_account(svc.ctx.store, provider, claims, svc.ctx.clock())  # reads only
        if isinstance(plan, Refused):
            return _test_page(svc, provider, claims, f"Refuse: {plan.reason}", plan.detail)
        return _test_page(svc, provider, claims, plan.describe(), None)

    return finish


def _test_page(
    svc: Services,
    provider: UpstreamProvider,
    claims: UpstreamClaims | None,
    outcome: str,
    detail: str | None,
) -> Response:
    """What the provider sent and what a real sign-in would do; or why it failed, with the
    technical detail (the page is an administrator's)."""
    return page(
        svc,
        "federation_test.html",
        200 if claims is not None else 400,
        provider=provider,
        claims=claims,
        outcome=outcome,
        detail=detail,
        tested_at=when(svc.ctx.clock()),
    )


# --- jwks ---------------------------------------------------------------------------------------


def _jwks(svc: Services, name: str) -> Response:
    provider = svc.ctx.store.upstream_providers.get_by_name(name)
    if provider is None:
        raise HTTPException(404, "no such provider")  # the app's JSON not_found
    try:
        keys = client_jwks(svc.ctx.subkey(PROVIDER_KEY_PURPOSE), provider)
    except SealError:  # sealed under another key: the administrator rotates it
        get_logger("tessera.web").error("provider_key_unreadable", provider=provider.name)
        body = {"error": "server_error", "error_description": "the provider's key does not open"}
        return json_response(body, 500, headers=NO_STORE)
    # Short-lived: a rotated key must reach the provider soon (`providers update --rotate-key`).
    return json_response(keys, headers={"Cache-Control": "max-age=60"})


# --- endpoints ----------------------------------------------------------------------------------

_Handler = Callable[[Services, Request, str, Params], Response]


def _endpoint(work: _Handler) -> Callable[[Request], object]:
    async def endpoint(request: Request) -> Response:
        svc = services(request)
        name = str(request.path_params["name"])
        try:
            query = read_query(request)
        except errors.OAuthError as exc:
            return _refusal(
                svc,
                request,
                "Invalid request",
                exc.description or "The request is not valid.",
                status=400,
                detail=exc.description or "unreadable query",
                name=name,
            )

        # The round trip waits on the provider (discovery, token, userinfo, keys): on threads
        # of its own, so callbacks waiting on a slow provider, or on another domain of this
        # node, never hold the threads that provider's answers need.
        limiter = getattr(request.app.state, "federation_limiter", None)
        return await anyio.to_thread.run_sync(work, svc, request, name, query, limiter=limiter)

    return endpoint


async def jwks(request: Request) -> Response:
    svc = services(request)
    return await run_in_threadpool(_jwks, svc, str(request.path_params["name"]))


FEDERATION_ROUTES = [
    Route(_BASE + "/{name}/start", _endpoint(_start), methods=["GET"]),
    Route(_BASE + "/{name}/callback", _endpoint(_callback), methods=["GET"]),
    Route(_BASE + "/{name}/test", _endpoint(_test), methods=["GET"]),
    Route(_BASE + "/{name}/jwks", jwks, methods=["GET"]),
]
