"""HTTP adapters for the token, introspection and revocation endpoints."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.model import Client
from tessera.oauth import errors
from tessera.oauth.client_auth import authenticate_client
from tessera.oauth.introspection import (
    access_token_answer,
    introspect,
    may_introspect,
    verified_access_token,
)
from tessera.oauth.revocation import revoke
from tessera.web.errors import oauth_error_response
from tessera.web.forms import Params, read_form
from tessera.web.proxy import client_ip
from tessera.web.responses import CORS_ANY, NO_STORE, json_response
from tessera.web.services import Services

__all__ = ["protocol_routes"]

_CORS_PREFLIGHT = {
    **CORS_ANY,
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def _authorization(request: Request) -> str | None:
    """The one Authorization header; two of them are refused, never half-read."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise errors.InvalidRequest("more than one Authorization header")
    return values[0] if values else None


def protocol_routes(svc: Services) -> list[Route]:
    ctx = svc.ctx

    def _authenticate(
        request: Request,
        form: Params,
        allow_public: bool,
        lookup: Callable[[str], Client | None] = svc.client,
    ) -> Any:
        if form.duplicated:
            raise errors.InvalidRequest(f"repeated parameter: {sorted(form.duplicated)[0]}")
        return authenticate_client(
            _authorization(request),
            form,
            lookup,
            ctx.secret_pepper,
            ctx.clock(),
            allow_public=allow_public,
        )

    def _issue(authorization: str | None, form: Params, duplicated: set[str]) -> dict[str, Any]:
        svc.health.check()
        return svc.token_endpoint.handle(authorization, form, duplicated)

    def _issue_inline(authorization: str | None, form: Params) -> dict[str, Any] | None:
        """client_credentials for a cached app and resource needs no I/O: answer on the loop."""
        if form.get("grant_type") != "client_credentials" or svc.health.down:
            return None
        try:
            return svc.inline_token_endpoint.handle(authorization, form, form.duplicated)
        except NotCached:
            return None

    async def token(request: Request) -> Response:
        form = Params([])
        try:
            form = await read_form(request)
            body = _issue_inline(_authorization(request), form)
            if body is None:
                body = await run_in_threadpool(
                    _issue, _authorization(request), form, form.duplicated
                )
        except errors.OAuthError as exc:
            svc.metrics.token_errors.labels(exc.error).inc()
            if exc.error in ("invalid_grant", "invalid_client"):
                svc.audit.record(
                    "token.refused",
                    ip=client_ip(request.scope),
                    error=exc.error,
                    grant_type=_safe(form.get("grant_type")),
                    reason=exc.description,
                )
            return oauth_error_response(exc)
        claims = _unverified_claims(body["access_token"])
        svc.audit.record(
            "token.issued",
            ip=client_ip(request.scope),
            client_id=claims.get("client_id"),
            user_id=claims.get("sub") if claims.get("sub_type") == "user" else None,
            grant_type=_safe(form.get("grant_type")),
            jti=claims.get("jti"),
        )
        svc.metrics.tokens.labels(form["grant_type"]).inc()  # one of ours: it was issued
        return json_response(body, headers={**NO_STORE, **CORS_ANY})

    async def introspect_on_loop(request: Request, form: Params) -> dict[str, Any] | None:
        """An access token of a cached app is answered on the event loop (its signature is
        checked in memory, the revocation state synced with one asynchronous query); None
        when the app is not cached or the token is not a JWT."""
        token = form.get("token")
        if not token or token.count(".") != 2 or form.get("token_type_hint") == "refresh_token":
            return None
        try:
            caller = _authenticate(request, form, allow_public=False, lookup=svc.cached_client)
        except NotCached:
            return None
        now = ctx.clock()
        claims = verified_access_token(token, svc.issuer, now)
        if claims is None or not may_introspect(caller, claims):
            return {"active": False}
        await svc.revocations.sync_async()  # see revocations made on any node a moment ago
        return access_token_answer(claims, svc.revocations)

    async def introspection(request: Request) -> Response:
        try:
            form = await read_form(request)

            def work() -> dict[str, Any]:
                caller = _authenticate(request, form, allow_public=False)  # RFC 7662 §2.1
                return introspect(caller, form, ctx.store, svc.issuer, svc.revocations, ctx.clock())

            body = await introspect_on_loop(request, form)
            if body is None:
                body = await run_in_threadpool(work)
        except errors.OAuthError as exc:
            return oauth_error_response(exc)
        return json_response(body, headers=NO_STORE)

    async def revocation(request: Request) -> Response:
        try:
            form = await read_form(request)

            def work() -> None:
                client = _authenticate(request, form, allow_public=True)
                now = ctx.clock()
                revoke(
                    client, form, ctx.store, svc.issuer, now, svc.token_endpoint._event_expiry(now)
                )
                svc.audit.record(
                    "token.revoked",
                    client_id=client.client_id,
                    ip=client_ip(request.scope),
                    hint=_safe(form.get("token_type_hint")),  # any value is accepted
                )

            await run_in_threadpool(work)
        except errors.OAuthError as exc:
            return oauth_error_response(exc)
        return Response(status_code=200, headers={**NO_STORE, **CORS_ANY})

    async def preflight(_: Request) -> Response:
        return Response(status_code=204, headers=_CORS_PREFLIGHT)

    return [
        Route("/oauth2/v1/token", token, methods=["POST"]),
        Route("/oauth2/v1/token", preflight, methods=["OPTIONS"]),
        Route("/oauth2/v1/introspect", introspection, methods=["POST"]),
        Route("/oauth2/v1/revoke", revocation, methods=["POST"]),
        Route("/oauth2/v1/revoke", preflight, methods=["OPTIONS"]),
    ]


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a token we have just signed, for the audit log (never for decisions)."""
    payload = token.split(".")[1]
    value = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return value if isinstance(value, dict) else {}


def _safe(value: str | None) -> str | None:
    return value[:64] if value else None
