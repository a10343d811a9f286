"""FastAPI adapter: a dependency for `Security(require_token, scopes=[...])`.

require_token = TokenDependency(validator)
@app.get("/things")
def things(token: AccessToken = Security(require_token, scopes=["things:read"])): ...
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.security import SecurityScopes

from tessera.resource.errors import InvalidTokenError, TokenError
from tessera.resource.starlette import token_from_connection
from tessera.resource.validator import AccessToken, TokenValidator

__all__ = ["TokenDependency", "http_error"]


def http_error(error: TokenError) -> HTTPException:
    return HTTPException(
        status_code=error.status,
        detail=error.body(),
        headers=error.headers(),
    )


class TokenDependency:
    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        try:
            token = await token_from_connection(request, self.validator)
            if token is None:
                raise InvalidTokenError("")
            self.validator.require_scopes(token, security_scopes.scopes)
        except TokenError as exc:
            raise http_error(exc) from None
        return token
