"""Authorising every request with `tessera.resource`: FastAPI dependencies that validate the
bearer token (RFC 6750 §2.1, header only) and require any one of a set of scopes.

A missing or invalid token answers 401 with `WWW-Authenticate: Bearer …`, a token in the query
string 400 `invalid_request`, a valid token without the scope 403 `insufficient_scope` with
`scope=` naming the scopes any one of which would do (see `tessera.integration.scopes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Security

from tessera.integration.scopes import SCOPE_ALL, SCOPE_MANAGE, SCOPE_MONITOR, SCOPE_RUN
from tessera.integration.store import Caller
from tessera.resource import AccessToken, InsufficientScopeError, TokenValidator
from tessera.resource.fastapi import TokenDependency, http_error

__all__ = ["Guards", "caller_of", "require_any"]

# What Swagger UI's "Authorize" offers; each operation's description says which of them it takes.
_SCOPES = {
    SCOPE_ALL: "read and run integrations (Oracle Integration's instance scope)",
    SCOPE_MANAGE: "create, replace, delete, activate and deactivate integrations; read",
    SCOPE_MONITOR: "read integrations and monitoring",
    SCOPE_RUN: "run activated integrations",
}

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
        self._require_token = TokenDependency(validator, scopes=_SCOPES)

    def any_of(self, *scopes: str) -> Guard:
        """A dependency answering the validated token when it has any one of `scopes`."""
        require_token = self._require_token

        # Any one of `scopes` will do, which an OpenAPI security requirement (all of its
        # scopes) cannot say: the scheme is listed without scopes and the check is ours.
        # A default, not `Annotated[...]`: postponed annotations cannot name this local.
        async def guard(token: AccessToken = Security(require_token)) -> AccessToken:
            require_any(token, scopes)
            return token

        return guard
