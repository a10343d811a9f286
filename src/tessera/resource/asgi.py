"""A plain ASGI middleware: every request needs a valid token (and `scopes`), except the
`exclude` path prefixes. The validated `AccessToken` is put in `scope["state"]["token"]`.

RFC 9470 step-up: `acr_values` / `max_age` require a level or a recent sign-in of every
request; `requirements` maps path prefixes to an `AuthRequirement` of their own (the longest
matching prefix wins over the default). A token with the scopes that fails it answers 401
`insufficient_user_authentication` with the challenge.

DPoP (RFC 9449): a bound token is accepted as `Authorization: DPoP` with a proof, checked on
every request; `require_dpop=True` refuses Bearer tokens on every path it guards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.resource.errors import InvalidTokenError, TokenError
from tessera.resource.starlette import token_from_connection
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.resource.validator import TokenValidator

__all__ = ["BearerAuthMiddleware"]


class BearerAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        validator: TokenValidator,
        scopes: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        acr_values: str | Iterable[str] | None = None,
        max_age: int | None = None,
        requirements: Mapping[str, AuthRequirement] | None = None,
        require_dpop: bool = False,
    ) -> None:
        self.app = app
        self.validator = validator
        self.scopes = tuple(scopes)
        self.exclude = tuple(exclude)
        self.requirement = requirement(acr_values, max_age)
        self.require_dpop = require_dpop
        # Longest prefix first, so that "/admin/keys" wins over "/admin".
        self.requirements = sorted((requirements or {}).items(), key=lambda p: -len(p[0]))

    def requirement_for(self, path: str) -> AuthRequirement:
        for prefix, needed in self.requirements:
            if path.startswith(prefix):
                return needed
        return self.requirement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exclude):
            await self.app(scope, receive, send)
            return
        token = None
        try:
            token = await token_from_connection(
                HTTPConnection(scope), self.validator, require_dpop=self.require_dpop
            )
            if token is None:
                raise InvalidTokenError("")
            self.validator.require_scopes(token, self.scopes)
            self.validator.require_authentication(token, self.requirement_for(scope["path"]))
        except TokenError as exc:
            only = self.require_dpop or (token is not None and token.is_dpop_bound)
            exc.for_dpop(self.validator.dpop.algorithms, only=only)
            response = JSONResponse(
                exc.body(),
                status_code=exc.status,
                headers=exc.headers(),
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)
