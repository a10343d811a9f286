"""The token endpoint's dispatcher: RFC 6749 §3.2 (parameters, `grant_type`), §2.3 and §3.2.1
(client authentication), §5.2 (errors). The grants themselves are in `tessera.oauth.grants`.

`TokenEndpoint.handle` refuses repeated parameters, a missing or unsupported `grant_type`, an
unauthenticated client and a grant the app may not use, in that order; then the grant answers
a `TokenResponse` (the §5.1 body and the claims of the access token in it) or raises an
`OAuthError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from tessera.domain.model import Client, Resource, User
from tessera.oauth import errors
from tessera.oauth.client_auth import AssertionCheck, authenticate_client
from tessera.oauth.grants.authorization_code import AuthorizationCodeGrant
from tessera.oauth.grants.client_credentials import ClientCredentialsGrant
from tessera.oauth.grants.policy import DEFAULT_ACCESS_TTL, TokenPolicy
from tessera.oauth.grants.refresh_token import RefreshTokenGrant
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse, scope_claim, user_claims
from tessera.oauth.tokens import TokenIssuer
from tessera.store.protocols import Store

__all__ = [
    "DEFAULT_ACCESS_TTL",
    "TokenEndpoint",
    "TokenPolicy",
    "TokenResponse",
    "scope_claim",
    "user_claims",
]


class TokenEndpoint:
    def __init__(
        self,
        store: Store,
        issuer: TokenIssuer,
        *,
        pepper: bytes,
        refresh_key: bytes,
        clock: Callable[[], datetime],
        lookup_client: Callable[[str], Client | None],
        lookup_resource: Callable[[str], Resource | None],
        list_resources: Callable[[], list[Resource]],
        policy: TokenPolicy,
        lookup_user: Callable[[str], User | None] | None = None,
        admin_scopes: frozenset[str] = frozenset(),
        assertions: AssertionCheck | None = None,
    ) -> None:
        self._pepper = pepper
        self._assertions = assertions
        self.clock = clock
        self.lookup_client = lookup_client
        self.policy = policy
        minter = TokenMinter(issuer, policy, lookup_resource, admin_scopes)
        self._grants = {
            "authorization_code": AuthorizationCodeGrant(store, minter, policy).handle,
            "refresh_token": RefreshTokenGrant(
                store,
                minter,
                policy,
                refresh_key,
                lookup_user or store.users.get,
                lookup_resource,
            ).handle,
            "client_credentials": ClientCredentialsGrant(
                minter, list_resources, admin_scopes
            ).handle,
        }

    def handle(
        self, authorization: str | None, form: Mapping[str, str], duplicated: set[str]
    ) -> TokenResponse:
        errors.refuse_repeated(duplicated)
        now = self.clock()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.InvalidRequest("grant_type is required")
        grant = self._grants.get(grant_type)
        if grant is None:
            # The password and implicit grants are not offered (RFC 9700 §2.4).
            raise errors.UnsupportedGrantType(f"unsupported grant_type {grant_type[:64]}")
        client = authenticate_client(
            authorization,
            form,
            self.lookup_client,
            self._pepper,
            now,
            assertions=self._assertions,
        )
        if grant_type not in client.grant_types:
            raise errors.UnauthorizedClient(f"this app may not use the {grant_type} grant")
        return grant(TokenRequest(grant_type, form, client, now))
