"""Authorising every request with `tessera.resource`: FastAPI dependencies that validate the
bearer token (RFC 6750 §2.1, header only), or a DPoP-bound token with its proof (RFC 9449 §7.1,
checked per the settings' `dpop_policy`), and require any one of a set of scopes, then any one
of the application roles of the request's action (`tessera.shared.integration_roles`).

A missing or invalid token answers 401 with `WWW-Authenticate: Bearer …`, a token in the query
string 400 `invalid_request`, a valid token without the scope 403 `insufficient_scope` with
`scope=` naming the scopes any one of which would do (see `tessera.integration.scopes`).
A token with the scope but without a role of the action (the `roles` claim, RFC 9068
§2.2.3.1) answers 403 too: an RFC 9457 problem (`…:problem:insufficient-role`) whose detail
names the roles any one of which would do, with the same `insufficient_scope` challenge
(RFC 6750 §3.1: the request needs more privileges than the token has). The scope is checked
first; `TESSERA_INTEGRATION_ENFORCE_ROLES=false` checks the scope only.
The routes that change integrations (`Writer`) then check the user's sign-in against
`TESSERA_INTEGRATION_MANAGE_ACR` / `_MANAGE_MAX_AGE` when set: 401
`insufficient_user_authentication` with the RFC 9470 §3 challenge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OAuth2, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from tessera.integration.problems import Problem
from tessera.integration.scopes import (
    ANY_READ,
    SCOPE_ALL,
    SCOPE_MANAGE,
    SCOPE_MONITOR,
    SCOPE_RUN,
    WRITE,
)
from tessera.integration.store import Caller
from tessera.resource import (
    AccessToken,
    AuthRequirement,
    InsufficientRoleError,
    InsufficientScopeError,
    TokenError,
    TokenValidator,
)
from tessera.resource.fastapi import TokenDependency, http_error
from tessera.shared.dpop import DEFAULT_ALGS
from tessera.shared.integration_roles import ALLOWED, Action

__all__ = [
    "Guards",
    "Monitor",
    "Reader",
    "Token",
    "Writer",
    "caller_of",
    "require_any",
    "role_problem",
]

# What Swagger UI's "Authorize" offers; each operation's description says which of them it takes.
_SCOPES = {
    SCOPE_ALL: "read and run integrations (Oracle Integration's instance scope)",
    SCOPE_MANAGE: "create, replace, delete, activate and deactivate integrations; read",
    SCOPE_MONITOR: "read integrations and monitoring",
    SCOPE_RUN: "run activated integrations",
}


def require_any(token: AccessToken, scopes: Iterable[str]) -> None:
    """Raise the 403 `insufficient_scope` answer unless the token has one of `scopes` (with
    the DPoP challenge alone for a DPoP-bound token, RFC 9449 §7.1)."""
    wanted = tuple(scopes)
    if wanted and token.scopes.isdisjoint(wanted):
        error = InsufficientScopeError(
            "the access token lacks the scope this request needs", scope=" ".join(wanted)
        )
        raise http_error(error.for_dpop(DEFAULT_ALGS, only=token.is_dpop_bound))


def role_problem(error: InsufficientRoleError, token: AccessToken, algs: Iterable[str]) -> Problem:
    """The 403 answer to a token without the roles: a problem document naming them, with the
    `insufficient_scope` challenge (the DPoP one alone for a DPoP-bound token, RFC 9449 §7.1)."""
    error.for_dpop(tuple(algs), only=token.is_dpop_bound)
    return Problem(
        403,
        "insufficient-role",
        error.description,
        headers=error.headers(),
        extra={"error": error.error, "required_roles": list(error.roles)},
    )


def caller_of(token: AccessToken) -> Caller:
    return Caller(
        sub=token.subject,
        sub_type=token.sub_type,
        client_id=token.client_id,
        user_displayname=token.user_display_name,
    )


class Guards:
    """The app's token check, on `app.state.services.guards`."""

    def __init__(
        self,
        validator: TokenValidator,
        manage: AuthRequirement | None = None,
        *,
        enforce_roles: bool = True,
    ) -> None:
        self._validator = validator
        self._require_token = TokenDependency(validator, scopes=_SCOPES)
        self.manage = manage or AuthRequirement()
        self.enforce_roles = enforce_roles

    def require_role(self, token: AccessToken, action: Action) -> None:
        """Raise the 403 problem unless the token carries one of the roles of `action` (nothing
        when roles are not enforced). Call it after the scope check."""
        if not self.enforce_roles:
            return
        try:
            self._validator.require_roles(token, ALLOWED[action])
        except InsufficientRoleError as exc:
            raise role_problem(exc, token, self._validator.dpop.algorithms) from None

    def require_manage_level(self, token: AccessToken) -> None:
        """RFC 9470 §3: the 401 challenge unless the sign-in meets the management requirement."""
        try:
            self._validator.require_authentication(token, self.manage)
        except TokenError as exc:
            algs = self._validator.dpop.algorithms
            raise http_error(exc.for_dpop(algs, only=token.is_dpop_bound)) from None

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        return await self._require_token(request, security_scopes)

    def scheme(self) -> dict[str, Any]:
        """The app's OAuth 2.0 scheme for OpenAPI: its issuer's endpoints and the scopes."""
        encoded: dict[str, Any] = jsonable_encoder(
            self._require_token.model, by_alias=True, exclude_none=True
        )
        return encoded


class _Bearer(SecurityBase):
    """Where the routes meet the app's `Guards`. It stands for the OAuth 2.0 scheme
    `tessera` in OpenAPI; the app's description fills the scheme in (`Guards.scheme`)."""

    def __init__(self) -> None:
        self.model = OAuth2(flows=OAuthFlows())
        self.scheme_name = "tessera"

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        guards: Guards = request.app.state.services.guards
        return await guards(request, security_scopes)


_BEARER = _Bearer()
Bearer = Annotated[AccessToken, Security(_BEARER)]

# Any one of a request's scopes will do, which an OpenAPI security requirement (all of its
# scopes) cannot say: the scheme is listed without scopes and the check is ours.


async def _any_token(token: Bearer) -> AccessToken:
    return token


def _guards(request: Request) -> Guards:
    guards: Guards = request.app.state.services.guards
    return guards


async def _reader(request: Request, token: Bearer) -> AccessToken:
    require_any(token, ANY_READ)
    _guards(request).require_role(token, Action.READ)
    return token


async def _monitor(request: Request, token: Bearer) -> AccessToken:
    require_any(token, ANY_READ)
    _guards(request).require_role(token, Action.MONITOR)
    return token


async def _writer(request: Request, token: Bearer) -> AccessToken:
    # 403s first: a step-up cannot give a missing scope or role.
    require_any(token, WRITE)
    guards = _guards(request)
    guards.require_role(token, Action.MANAGE)
    guards.require_manage_level(token)
    return token


Token = Annotated[AccessToken, Depends(_any_token)]  # the scope and role are the route's to check
Reader = Annotated[AccessToken, Depends(_reader)]  # design time: GET integrations…
Monitor = Annotated[AccessToken, Depends(_monitor)]  # GET monitoring/…
Writer = Annotated[AccessToken, Depends(_writer)]
