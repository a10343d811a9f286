"""A plain ASGI middleware: every request needs a valid token (and `scopes`), except the
`exclude` path prefixes. The validated `AccessToken` is put in `scope["state"]["token"]`."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.resource.errors import InvalidTokenError, TokenError
from tessera.resource.starlette import token_from_connection
from tessera.resource.validator import TokenValidator

__all__ = ["BearerAuthMiddleware"]


class BearerAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        validator: TokenValidator,
        scopes: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.validator = validator
        self.scopes = tuple(scopes)
        self.exclude = tuple(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exclude):
            await self.app(scope, receive, send)
            return
        try:
            token = await token_from_connection(HTTPConnection(scope), self.validator)
            if token is None:
                raise InvalidTokenError("")
            self.validator.require_scopes(token, self.scopes)
        except TokenError as exc:
            response = JSONResponse(
                exc.body(),
                status_code=exc.status,
                headers=exc.headers(),
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)
