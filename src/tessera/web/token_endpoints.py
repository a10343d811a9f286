"""HTTP adapters of the token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
endpoints: parse the request, call `tessera.oauth`, render the answer (docs/architecture.md,
"Requests, from the wire to the database"). The node's `Services` are `request.app.state.services`.

Two answers skip the hop to a worker thread (docs/architecture.md, "Hot-path budget"):
`client_credentials` for a cached app and resource needs no I/O, and introspection of an access
token of a cached app checks the signature in memory and syncs the revocation state with one
asynchronous query. A request with a DPoP proof (RFC 9449 §5) always takes the thread: its
`jti` is written to the database (§11.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.model import Client
from tessera.oauth import errors
from tessera.oauth.client_auth import authenticate_client
from tessera.oauth.dpop import proof_value
from tessera.oauth.grants.response import TokenResponse
from tessera.oauth.grants.token_exchange import TOKEN_EXCHANGE
from tessera.oauth.introspection import (
    access_token_answer,
    introspect,
    may_introspect,
    verified_access_token,
)
from tessera.oauth.revocation import revoke
from tessera.web.bearer import single_authorization
from tessera.web.errors import oauth_error_response
from tessera.web.forms import Params, read_form
from tessera.web.proxy import client_ip
from tessera.web.responses import CORS_ANY, NO_STORE, cors_preflight, json_response
from tessera.web.services import Services, services

__all__ = ["TOKEN_ROUTES", "authenticate", "introspection", "refused", "revocation", "token"]


def authenticate(
    request: Request,
    form: Params,
    allow_public: bool,
    lookup: Callable[[str], Client | None] | None = None,
) -> Client:
    """The calling app (RFC 6749 §2.3, RFC 7523 §2.2), after refusing repeated parameters
    (§3.2). Not on the event loop: an assertion's `jti` is written to the database and its
    app's `jwks_uri` may be fetched."""
    svc = services(request)
    errors.refuse_repeated(form.duplicated)
    return authenticate_client(
        single_authorization(request),
        form,
        lookup or svc.client,
        svc.ctx.secret_pepper,
        svc.ctx.clock(),
        allow_public=allow_public,
        assertions=svc.assertions,
    )


def refused(request: Request, event: str, exc: errors.OAuthError) -> Response:
    """The OAuth error as JSON; a failed client authentication is audited as `event`."""
    if exc.error == "invalid_client":
        services(request).audit.record(
            event, ip=client_ip(request.scope), error=exc.error, reason=exc.audit_reason
        )
    return oauth_error_response(exc)


def _asserted(form: Params) -> bool:
    """A client assertion needs I/O (its jti, maybe the app's keys): never on the loop."""
    return "client_assertion" in form or "client_assertion_type" in form


# --- the token endpoint ------------------------------------------------------------------------


async def token(request: Request) -> Response:
    svc = services(request)
    form = Params([])
    proof: str | None = None
    try:
        form = await read_form(request)
        authorization = single_authorization(request)
        proof = proof_value(request.headers.getlist("dpop"))  # RFC 9449 §4.3 check 1
        issued = None if proof is not None else _issue_inline(svc, authorization, form)
        if issued is None:
            issued = await run_in_threadpool(_issue, svc, authorization, form, proof)
    except errors.OAuthError as exc:
        return _refused(svc, request, form, exc)
    claims = issued.claims
    # RFC 8693 §4.1: an exchanged token names its actor (the app, prior actors nested).
    actor: dict[str, Any] = {} if claims.act is None else {"act": claims.act}
    svc.audit.record(
        "token.issued",
        ip=client_ip(request.scope),
        client_id=claims.client_id,
        user_id=claims.sub if claims.sub_type == "user" else None,
        grant_type=claims.grant_type,
        jti=claims.jti,
        **actor,
    )
    svc.metrics.tokens.labels(claims.grant_type).inc()
    headers = {**NO_STORE, **CORS_ANY}
    nonce = svc.token_endpoint.dpop.fresh_nonce(svc.ctx.clock()) if proof is not None else None
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2: the nonce of the client's next proof
    return json_response(issued.body, headers=headers)


def _issue(
    svc: Services, authorization: str | None, form: Params, proof: str | None
) -> TokenResponse:
    svc.health.check()  # docs/security.md rule 26: nothing is issued while the database is down
    return svc.token_endpoint.handle(authorization, form, form.duplicated, proof)


def _issue_inline(svc: Services, authorization: str | None, form: Params) -> TokenResponse | None:
    """client_credentials for a cached app and resource needs no I/O: answer on the loop
    (never called for a request with a DPoP proof, whose `jti` is a database write)."""
    if form.get("grant_type") != "client_credentials" or svc.health.down or _asserted(form):
        return None
    try:
        return svc.inline_token_endpoint.handle(authorization, form, form.duplicated)
    except NotCached:
        return None


def _refused(svc: Services, request: Request, form: Params, exc: errors.OAuthError) -> Response:
    svc.metrics.token_errors.labels(exc.error).inc()
    # A refused token exchange may be a stolen or revoked subject token (RFC 8693 §2.2.2:
    # `invalid_request`): audited too.
    exchange = form.get("grant_type") == TOKEN_EXCHANGE
    if exchange or exc.error in ("invalid_grant", "invalid_client", "invalid_dpop_proof"):
        svc.audit.record(
            "token.refused",
            ip=client_ip(request.scope),
            client_id=exc.client_id,
            error=exc.error,
            grant_type=_clipped(form.get("grant_type")),
            reason=exc.audit_reason,  # the private debug text when there is one
        )
    return oauth_error_response(exc)


# --- introspection -----------------------------------------------------------------------------


async def introspection(request: Request) -> Response:
    try:
        form = await read_form(request)
        body = await _introspect_on_loop(request, form)
        if body is None:
            body = await run_in_threadpool(_introspect, request, form)
    except errors.OAuthError as exc:
        return oauth_error_response(exc)
    return json_response(body, headers=NO_STORE)


def _introspect(request: Request, form: Params) -> dict[str, Any]:
    svc = services(request)
    caller = authenticate(request, form, allow_public=False)  # RFC 7662 §2.1
    return introspect(caller, form, svc.ctx.store, svc.issuer, svc.revocations, svc.ctx.clock())


async def _introspect_on_loop(request: Request, form: Params) -> dict[str, Any] | None:
    """An access token of a cached app is answered on the event loop (its signature is checked
    in memory, the revocation state synced with one asynchronous query); None when the app is
    not cached or the token is not a JWT."""
    token_value = form.get("token")
    if not token_value or token_value.count(".") != 2 or _asserted(form):
        return None  # refresh tokens are opaque: looked up in the database
    svc = services(request)
    try:
        caller = authenticate(request, form, allow_public=False, lookup=svc.cached_client)
    except NotCached:
        return None
    claims = verified_access_token(token_value, svc.issuer, svc.ctx.clock())
    if claims is None or not may_introspect(caller, claims):
        return {"active": False}
    await svc.revocations.sync_async()  # see revocations made on any node a moment ago
    return access_token_answer(claims, svc.revocations)


# --- revocation --------------------------------------------------------------------------------


async def revocation(request: Request) -> Response:
    try:
        form = await read_form(request)
        await run_in_threadpool(_revoke, request, form)
    except errors.OAuthError as exc:
        return oauth_error_response(exc)
    return Response(status_code=200, headers={**NO_STORE, **CORS_ANY})


def _revoke(request: Request, form: Params) -> None:
    svc = services(request)
    client = authenticate(request, form, allow_public=True)
    now = svc.ctx.clock()
    family_kept = svc.token_endpoint.policy.family_event_expiry(now)
    revoke(client, form, svc.ctx.store, svc.issuer, now, family_kept)
    svc.audit.record(
        "token.revoked",
        client_id=client.client_id,
        ip=client_ip(request.scope),
        hint=_clipped(form.get("token_type_hint")),  # any value is accepted (RFC 7009 §2.2)
    )


def _clipped(value: str | None) -> str | None:
    return value[:64] if value else None


TOKEN_ROUTES = [
    Route("/oauth2/v1/token", token, methods=["POST"]),
    Route("/oauth2/v1/token", cors_preflight, methods=["OPTIONS"]),
    Route("/oauth2/v1/introspect", introspection, methods=["POST"]),
    Route("/oauth2/v1/revoke", revocation, methods=["POST"]),
    Route("/oauth2/v1/revoke", cors_preflight, methods=["OPTIONS"]),
]
