"""HTTP adapters for the userinfo endpoint and the revocation feed, and the protocol routes (the
token, introspection and revocation endpoints are in `tessera.web.token_endpoints`)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.domain.model import Client
from tessera.oauth import errors
from tessera.oauth.feed import parse_feed_query
from tessera.oauth.token import user_claims
from tessera.oauth.tokens import InvalidOwnToken
from tessera.web import token_endpoints
from tessera.web.bearer import bearer_token
from tessera.web.errors import oauth_error_response
from tessera.web.forms import Params, read_form
from tessera.web.responses import CORS_ANY, NO_STORE, json_response
from tessera.web.services import Services

__all__ = ["protocol_routes"]

_CORS_PREFLIGHT = {
    **CORS_ANY,
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def protocol_routes(svc: Services) -> list[Route]:
    ctx = svc.ctx

    def _authenticate(request: Request, form: Params, allow_public: bool) -> Client:
        return token_endpoints.authenticate(request, form, allow_public)

    async def userinfo(request: Request) -> Response:
        try:
            form = await read_form(request) if _is_form(request) else None
            if form is not None and form.duplicated:
                raise errors.InvalidRequest(f"repeated parameter: {sorted(form.duplicated)[0]}")
            value = bearer_token(request, form)

            def work() -> dict[str, Any]:
                now = ctx.clock()
                try:
                    claims = svc.issuer.verify_own(value, int(now.timestamp()))
                except InvalidOwnToken:
                    raise errors.InvalidToken("the access token is invalid or expired") from None
                svc.revocations.sync()
                if svc.revocations.revoked(claims):
                    raise errors.InvalidToken("the access token was revoked")
                if (
                    claims.get("sub_type") != "user"
                    or "openid" not in str(claims.get("scope", "")).split()
                ):
                    raise errors.InsufficientScope("the token lacks the openid scope", "openid")
                user = ctx.store.users.get(str(claims["sub"]))
                if user is None or not user.active:
                    raise errors.InvalidToken("the user is no longer active")
                scopes = tuple(str(claims.get("scope", "")).split())
                return {"sub": user.id, **user_claims(user, scopes)}

            body = await run_in_threadpool(work)
        except errors.OAuthError as exc:
            return oauth_error_response(exc, bearer=True)
        return json_response(body, headers={**NO_STORE, **CORS_ANY})

    async def revocation_feed(request: Request) -> Response:
        """The revocation feed for resource servers: events after `since`, long-polled."""
        try:
            query = request.query_params
            repeated = {k for k in ("since", "wait") if len(query.getlist(k)) > 1}
            since, wait = parse_feed_query(query, repeated)
            caller = await run_in_threadpool(_authenticate, request, Params([]), False)
            if not caller.is_resource_server:
                raise errors.NotAResourceServer("only a resource server may read this feed")
        except errors.OAuthError as exc:
            return oauth_error_response(exc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            events = await run_in_threadpool(ctx.store.revocations.since, since, 1000)
            remaining = deadline - loop.time()
            if (
                events
                or remaining <= 0
                or svc.wakeup.closing  # shutting down: answer now, the follower resumes later
                or await request.is_disconnected()
            ):
                break
            # Woken at once by a local or Redis-published revocation; else poll the database.
            await svc.wakeup.wait(min(0.2, remaining))
        body = {
            "events": [
                {
                    "seq": e.seq,
                    "kind": e.kind.value,
                    "key": e.key,
                    "not_before": e.not_before.timestamp(),
                    "expires_at": e.expires_at.timestamp(),
                }
                for e in events
            ],
            "last_seq": events[-1].seq if events else since,
        }
        return json_response(body, headers=NO_STORE)

    async def preflight(_: Request) -> Response:
        return Response(status_code=204, headers=_CORS_PREFLIGHT)

    return [
        Route("/oauth2/v1/token", token_endpoints.token, methods=["POST"]),
        Route("/oauth2/v1/token", preflight, methods=["OPTIONS"]),
        Route("/oauth2/v1/introspect", token_endpoints.introspection, methods=["POST"]),
        Route("/oauth2/v1/revoke", token_endpoints.revocation, methods=["POST"]),
        Route("/oauth2/v1/revoke", preflight, methods=["OPTIONS"]),
        Route("/oauth2/v1/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/oauth2/v1/userinfo", preflight, methods=["OPTIONS"]),
        Route("/oauth2/v1/revocations", revocation_feed, methods=["GET"]),
    ]


def _is_form(request: Request) -> bool:
    """A POST with a form body, which may carry the token (RFC 6750 §2.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return request.method == "POST" and content_type == "application/x-www-form-urlencoded"
