"""Authorising every request with `tessera.resource`: FastAPI dependencies that validate the
bearer token (RFC 6750 §2.1, header only) and require any one of a set of scopes.

A missing or invalid token answers 401 with `WWW-Authenticate: Bearer …`, a token in the query
string 400 `invalid_request`, a valid token without the scope 403 `insufficient_scope` with
`scope=` naming the scopes any one of which would do (see `tessera.integration.scopes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from tessera.integration.store import Caller
from tessera.resource import AccessToken, InsufficientScopeError, TokenValidator
from tessera.resource.fastapi import TokenDependency, http_error

__all__ = ["Guards", "bearer_scheme", "caller_of", "require_any"]

# Declares the scheme in the OpenAPI description; `tessera.resource` does the actual parsing.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description=(
        "An RFC 9068 JWT access token from the identity domain for this service's audience, "
        "sent as `Authorization: Bearer <token>` (never in the query string)."
    ),
    auto_error=False,
)

Guard = Callable[..., Awaitable[AccessToken]]


def require_any(token: AccessToken, scopes: Iterable[str]) -> None:
    """Raise the 403 `insufficient_scope` answer unless the token has one of `scopes`."""
    wanted = tuple(scopes)
    if wanted and token.scopes.isdisjoint(wanted):
        raise http_error(
            InsufficientScopeError(
                "the access token lacks the scope this request needs", scope=" ".join(wanted)
            )
        )


def caller_of(token: AccessToken) -> Caller:
    return Caller(
        sub=token.subject,
        sub_type=token.sub_type,
        client_id=token.client_id,
        user_displayname=token.user_display_name,
    )


class Guards:
    def __init__(self, validator: TokenValidator) -> None:
        self._require_token = TokenDependency(validator)

    def any_of(self, *scopes: str) -> Guard:
        """A dependency answering the validated token when it has any one of `scopes`."""
        require_token = self._require_token

        async def guard(
            request: Request,
            _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        ) -> AccessToken:
            token = await require_token(request, SecurityScopes())
            require_any(token, scopes)
            return token

        return guard
