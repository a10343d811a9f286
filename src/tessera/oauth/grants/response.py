"""The successful token response (RFC 6749 §5.1): an RFC 9068 access token, the refresh token
if one was issued, and the OIDC ID token (OIDC Core §3.1.3.3) when `openid` was granted.

A `TokenResponse` carries the body AND the claims of the access token it holds, so the web layer
audits what it issued without decoding the token it has just signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tessera.domain.model import Client, Grant, Resource, User
from tessera.domain.scopes import OIDC_SCOPES
from tessera.oauth import errors
from tessera.oauth.grants.policy import TokenPolicy
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.memberships import Memberships
from tessera.oauth.tokens import AccessTokenSpec, TokenIssuer, authentication_claims

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "IssuedClaims",
    "TokenMinter",
    "TokenResponse",
    "scope_claim",
    "token_type",
    "user_claims",
]


@dataclass(frozen=True, slots=True)
class IssuedClaims:
    """Who the issued access token is for (its `client_id`, `sub`, `sub_type` and `jti`) and
    the grant that issued it."""

    client_id: str
    sub: str
    sub_type: str  # "user" or "client" (docs/security.md rule 22)
    jti: str
    grant_type: str
    act: dict[str, Any] | None = None  # RFC 8693 §4.1: the actor of an exchanged token


# RFC 8693 §3: the token type identifier of an access token.
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True, slots=True)
class TokenResponse:
    body: dict[str, Any]  # RFC 6749 §5.1
    claims: IssuedClaims


def scope_claim(scopes: tuple[str, ...], audience: str | None) -> str:
    """The `scope` claim and response parameter: resource scopes without their audience."""
    out = []
    for scope in scopes:
        if audience is not None and scope.startswith(audience) and scope not in OIDC_SCOPES:
            out.append(scope[len(audience) :])
        else:
            out.append(scope)
    return " ".join(out)


def token_type(request: TokenRequest) -> str:
    """RFC 9449 §5: `DPoP` for a token bound to the request's proof; else `Bearer` (RFC 6750)."""
    return "DPoP" if request.dpop_jkt is not None else "Bearer"


def user_claims(
    user: User, scopes: tuple[str, ...], groups: Callable[[str], tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """OIDC Core §5.4: the claims each standard scope releases; `groups` the user's group
    names, under the `groups` scope (read only then)."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims.update(name=user.display_name, preferred_username=user.username)
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=user.email_verified)
    if "groups" in scopes and groups is not None:
        claims["groups"] = list(groups(user.id))
    return claims


class TokenMinter:
    """Signs the tokens of a response and builds its body."""

    def __init__(
        self,
        issuer: TokenIssuer,
        policy: TokenPolicy,
        lookup_resource: Callable[[str], Resource | None],
        admin_scopes: frozenset[str],
        memberships: Memberships,
    ) -> None:
        self.issuer = issuer
        self.policy = policy
        self.lookup_resource = lookup_resource
        self.admin_scopes = admin_scopes
        self.memberships = memberships

    def resource(self, audience: str | None) -> Resource | None:
        """The resource of a token's audience, looked up once per token."""
        return self.lookup_resource(audience) if audience else None

    def lifetime(self, client: Client, resource: Resource | None) -> tuple[int, str]:
        """The app's access-token lifetime, capped by the resource's, and the resource's
        signing algorithm (ES256 unless the resource says otherwise)."""
        lifetime = client.access_ttl or self.policy.default_access_ttl
        alg = "ES256"
        if resource is not None:
            alg = resource.signing_alg
            if resource.access_ttl is not None:
                lifetime = min(lifetime, resource.access_ttl)
        return lifetime, alg

    def _access(self, request: TokenRequest, spec: AccessTokenSpec) -> tuple[str, IssuedClaims]:
        token, claims = self.issuer.access_token(spec, int(request.now.timestamp()))
        issued = IssuedClaims(
            client_id=spec.client_id,
            sub=spec.subject,
            sub_type=spec.sub_type,
            jti=claims["jti"],
            grant_type=request.grant_type,
            act=claims.get("act"),
        )
        return token, issued

    def exchanged(self, request: TokenRequest, spec: AccessTokenSpec) -> TokenResponse:
        """RFC 8693 §2.2.1: the issued access token, its type, no refresh token."""
        token, issued = self._access(request, spec)
        body = {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": token_type(request),
            "expires_in": spec.lifetime,
            "scope": spec.scope,
        }
        return TokenResponse(body, issued)

    def for_client(
        self, request: TokenRequest, audience: str, scopes: tuple[str, ...]
    ) -> TokenResponse:
        """RFC 6749 §4.4.3: an access token for the app itself (`sub_type: client`)."""
        client = request.client
        resource = self.resource(audience)
        lifetime, alg = self.lifetime(client, resource)
        scope = scope_claim(scopes, audience)
        directory = self.memberships.for_app(resource, client.client_id)
        spec = AccessTokenSpec(
            subject=client.client_id,
            sub_type="client",
            client_id=client.client_id,
            audience=audience,
            scope=scope,
            lifetime=lifetime,
            alg=alg,
            jkt=request.dpop_jkt,
            roles=directory.roles,
            groups=directory.groups,
        )
        token, issued = self._access(request, spec)
        body = {"access_token": token, "token_type": token_type(request), "expires_in": lifetime}
        return TokenResponse({**body, "scope": scope}, issued)

    def for_user(
        self,
        request: TokenRequest,
        grant: Grant,
        user: User,
        refresh_value: str | None,
        nonce: str | None,
        *,
        signed_in: bool = True,
    ) -> TokenResponse:
        """RFC 6749 §5.1 for a user's grant, with the ID token when `openid` was granted.
        `signed_in=False` for a grant without a sign-in here (a partner's assertion, RFC 7523
        §2.1): no ID token and no `auth_time`, so the token never meets a resource server's
        recent sign-in requirement (docs/security.md rule 46)."""
        if not self.admin_scopes.isdisjoint(grant.scopes) and not user.is_admin:
            # Only administrators hold the admin scope, also after losing the flag.
            raise errors.InvalidGrant("the admin scope is for administrators only")
        client = request.client
        resource = self.resource(grant.audience)
        lifetime, alg = self.lifetime(client, resource)
        auth_time = int(grant.auth_time.timestamp())
        scope = scope_claim(grant.scopes, grant.audience)
        directory = self.memberships.for_user(resource, user.id)
        spec = AccessTokenSpec(
            subject=user.id,
            sub_type="user",
            client_id=client.client_id,
            audience=grant.audience or self.issuer.issuer,
            scope=scope,
            lifetime=lifetime,
            alg=alg,
            grant_id=grant.grant_id,
            auth_time=auth_time if signed_in else None,
            user_display_name=user.display_name,
            amr=grant.amr,
            jkt=request.dpop_jkt,
            roles=directory.roles,
            groups=directory.groups,
        )
        access, issued = self._access(request, spec)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": token_type(request),
            "expires_in": lifetime,
            "scope": scope,
        }
        if refresh_value is not None:
            body["refresh_token"] = refresh_value
        if signed_in and "openid" in grant.scopes:
            body["id_token"] = self.issuer.id_token(
                subject=user.id,
                client_id=client.client_id,
                now=int(request.now.timestamp()),
                lifetime=self.policy.id_token_ttl,
                auth_time=auth_time,
                nonce=nonce,
                access_token=access,
                extra={
                    **user_claims(user, grant.scopes, self.memberships.group_names),
                    **authentication_claims(grant.amr),
                },
                sid=grant.session_id and grant.grant_id,
                alg=client.id_token_signed_response_alg,  # OIDC Registration §2
            )
        return TokenResponse(body, issued)
