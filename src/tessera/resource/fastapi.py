"""FastAPI adapter: a dependency for `Security(require_token, scopes=[...])`.

require_token = TokenDependency(validator, scopes={"things:read": "Read things"})
@app.get("/things")
def things(token: AccessToken = Security(require_token, scopes=["things:read"])): ...

`TokenDependency` is also the OAuth 2.0 security scheme of the OpenAPI description (OpenAPI
3.1 §4.8.27, "oauth2" with an `authorizationCode` flow at the issuer's authorization and token
endpoints, RFC 6749 §4.1): FastAPI lists it under `components.securitySchemes` and, on each
operation that depends on it, under `security` with that operation's scopes, so Swagger UI's
"Authorize" signs in with the code flow. The identity domain requires PKCE (RFC 7636), which
OpenAPI cannot express: pass `swagger_ui_init_oauth(client_id)` to `FastAPI(...)`.

RFC 9470 step-up: `TokenDependency(validator, acr_values=[ACR_MFA], max_age=600)` requires that
of every operation using it; `require_token.requiring(acr_values=..., max_age=...)` is a copy
(the same OpenAPI scheme) for some operations only. A token with the scopes but a weaker or
older sign-in answers 401 `insufficient_user_authentication` with the requirement.

Application roles (RFC 9068 §2.2.3.1): `TokenDependency(validator, roles=["Admin", "Editor"])`
or `.requiring(roles=[...])` requires any one of these roles in the token's `roles` claim,
after the scopes and before the step-up: 403 `insufficient_scope` naming them otherwise.

DPoP (RFC 9449): a bound token is accepted as `Authorization: DPoP` with a proof, checked on
every request; `TokenDependency(validator, require_dpop=True)` (or `.requiring(dpop=True)`)
refuses Bearer tokens on its operations.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.openapi.models import OAuth2, OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from tessera.resource.errors import InvalidTokenError, TokenError
from tessera.resource.starlette import token_from_connection
from tessera.resource.stepup import requirement
from tessera.resource.validator import AccessToken, TokenValidator

__all__ = ["TokenDependency", "http_error", "swagger_ui_init_oauth"]

_DESCRIPTION = (
    "An RFC 9068 JWT access token from the identity domain `{issuer}` for the audience "
    "`{audience}`, sent as `Authorization: Bearer <token>` (RFC 6750 §2.1; never in the query "
    "string), or as `Authorization: DPoP <token>` with a `DPoP` proof when it is DPoP-bound "
    "(RFC 9449 §7.1). The authorization code flow requires PKCE with S256 (RFC 7636)."
)


def http_error(error: TokenError) -> HTTPException:
    return HTTPException(status_code=error.status, detail=error.body(), headers=error.headers())


class TokenDependency(SecurityBase):
    """Validates the bearer token and the operation's scopes; the OAuth 2.0 scheme in OpenAPI.

    `scopes` names and describes the scopes the app's operations require (the list Swagger UI
    offers); the endpoints default to Tessera's `/oauth2/v1/authorize` and `/oauth2/v1/token`
    at the validator's issuer.
    """

    def __init__(
        self,
        validator: TokenValidator,
        *,
        scopes: Mapping[str, str] | Iterable[str] = (),
        authorization_url: str | None = None,
        token_url: str | None = None,
        scheme_name: str = "tessera",
        description: str | None = None,
        acr_values: str | Iterable[str] | None = None,
        max_age: int | None = None,
        require_dpop: bool = False,
        roles: Iterable[str] = (),
    ) -> None:
        self.validator = validator
        self.requirement = requirement(acr_values, max_age)
        self.require_dpop = require_dpop
        self.roles = tuple(roles)
        issuer = validator.issuer
        described = dict(scopes) if isinstance(scopes, Mapping) else dict.fromkeys(scopes, "")
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=authorization_url or f"{issuer}/oauth2/v1/authorize",
            tokenUrl=token_url or f"{issuer}/oauth2/v1/token",
            scopes=described,
        )
        self.model = OAuth2(
            flows=OAuthFlows(authorizationCode=flow),
            description=description
            or _DESCRIPTION.format(issuer=issuer, audience=validator.audience),
        )
        self.scheme_name = scheme_name

    def requiring(
        self,
        acr_values: str | Iterable[str] | None = None,
        max_age: int | None = None,
        *,
        dpop: bool | None = None,
        roles: Iterable[str] | None = None,
    ) -> TokenDependency:
        """This dependency with another RFC 9470 requirement (when `acr_values` or `max_age` is
        given; else the current one stays), when `dpop` is given, DPoP required or not, and
        when `roles` is given, those roles (any one) instead (same scheme in OpenAPI)."""
        other = copy.copy(self)
        if acr_values is not None or max_age is not None:
            other.requirement = requirement(acr_values, max_age)
        if dpop is not None:
            other.require_dpop = dpop
        if roles is not None:
            other.roles = tuple(roles)
        return other

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        token = None
        try:
            token = await token_from_connection(
                request, self.validator, require_dpop=self.require_dpop
            )
            if token is None:
                raise InvalidTokenError("")
            self.validator.require_scopes(token, security_scopes.scopes)
            self.validator.require_roles(token, self.roles)
            self.validator.require_authentication(token, self.requirement)
        except TokenError as exc:
            only = self.require_dpop or (token is not None and token.is_dpop_bound)
            raise http_error(exc.for_dpop(self.validator.dpop.algorithms, only=only)) from None
        return token


def swagger_ui_init_oauth(client_id: str, scopes: Iterable[str] = ()) -> dict[str, Any]:
    """`FastAPI(swagger_ui_init_oauth=...)`: Swagger UI signs in as the public app
    `client_id` with PKCE (S256), pre-selecting `scopes`."""
    return {
        "clientId": client_id,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": " ".join(scopes),
    }
