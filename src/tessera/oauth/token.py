"""The token endpoint's dispatcher: RFC 6749 §3.2 (parameters, `grant_type`), §2.3 and §3.2.1
(client authentication), §5.2 (errors). The grants themselves are in `tessera.oauth.grants`.

`TokenEndpoint.handle` refuses repeated parameters, a missing or unsupported `grant_type`, an
invalid DPoP proof (RFC 9449 §4.3, §5), an unauthenticated client, a grant the app may not use
and a missing proof of an app that always uses DPoP (RFC 9449 §5.2), in that order, records the
proof's `jti` (§11.1); then the grant answers a `TokenResponse` (the §5.1 body and the claims
of the access token in it) or raises an `OAuthError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from tessera.domain.model import Client, Resource, User
from tessera.oauth import errors
from tessera.oauth.client_auth import AssertionCheck, authenticate_client
from tessera.oauth.device import DEVICE_CODE_GRANT
from tessera.oauth.dpop import DPoPPolicy
from tessera.oauth.grants.authorization_code import AuthorizationCodeGrant
from tessera.oauth.grants.client_credentials import ClientCredentialsGrant
from tessera.oauth.grants.device_code import DeviceCodeGrant
from tessera.oauth.grants.jwt_bearer import JWT_BEARER, IssuerKeys, JwtBearerGrant
from tessera.oauth.grants.policy import DEFAULT_ACCESS_TTL, TokenPolicy
from tessera.oauth.grants.refresh_token import RefreshTokenGrant
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse, scope_claim, user_claims
from tessera.oauth.grants.token_exchange import TOKEN_EXCHANGE, TokenExchangeGrant
from tessera.oauth.memberships import Memberships
from tessera.oauth.metadata import ENDPOINT_PATHS
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.tokens import TokenIssuer
from tessera.shared.dpop import Proof
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
        dpop: DPoPPolicy | None = None,
        revocations: RevocationState | None = None,
        device_key: bytes | None = None,
        app_roles: Callable[[str, str], tuple[str, ...]] | None = None,
    ) -> None:
        """`revocations`: the node's revocation state (introspection's), which token exchange
        checks subject tokens against; a state of its own when not given."""
        self._pepper = pepper
        self.dpop = dpop or DPoPPolicy(store.nonces.use_once)
        # RFC 9449 §4.3 check 9: `htu` is the endpoint's URL as discovery names it (the
        # domain's issuer), never the Host header, which a client does not sign.
        self.url = issuer.issuer + ENDPOINT_PATHS["token_endpoint"]
        self._assertions = assertions
        self.clock = clock
        self.lookup_client = lookup_client
        self.policy = policy
        self.memberships = Memberships(store, app_roles)
        minter = TokenMinter(issuer, policy, lookup_resource, admin_scopes, self.memberships)
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
        if assertions is not None:  # RFC 7523 §2.1: keys fetched and jtis kept as for §2.2
            self._grants[JWT_BEARER] = JwtBearerGrant(
                store,
                minter,
                audiences={issuer.issuer, self.url},
                use_once=assertions.use_once,
                keys_of=IssuerKeys(assertions.fetcher),
                list_resources=list_resources,
                admin_scopes=admin_scopes,
            ).handle
        self._grants[TOKEN_EXCHANGE] = TokenExchangeGrant(  # RFC 8693
            store,
            minter,
            revocations or RevocationState(store.revocations),
            list_resources,
            admin_scopes,
        ).handle
        if device_key is not None:  # RFC 8628 §3.4; the key of the device codes' hashes
            self._grants[DEVICE_CODE_GRANT] = DeviceCodeGrant(
                store, minter, policy, device_key
            ).handle

    def handle(
        self,
        authorization: str | None,
        form: Mapping[str, str],
        duplicated: set[str],
        dpop_proof: str | None = None,
    ) -> TokenResponse:
        """`dpop_proof`: the request's `DPoP` header (`tessera.oauth.dpop.proof_value`). A
        request with one does I/O (its `jti`): never on the event loop."""
        errors.refuse_repeated(duplicated)
        now = self.clock()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.InvalidRequest("grant_type is required")
        grant = self._grants.get(grant_type)
        if grant is None:
            # The password and implicit grants are not offered (RFC 9700 §2.4).
            raise errors.UnsupportedGrantType(f"unsupported grant_type {grant_type[:64]}")
        proof = None
        if dpop_proof is not None:  # checked before anything is written or burned
            proof = self.dpop.verify(dpop_proof, method="POST", url=self.url, now=now)
        client = authenticate_client(
            authorization,
            form,
            self.lookup_client,
            self._pepper,
            now,
            assertions=self._assertions,
        )
        try:
            return self._grant(grant, TokenRequest(grant_type, form, client, now), proof)
        except errors.OAuthError as exc:
            exc.client_id = client.client_id  # authenticated: the audit log names the app
            raise

    def _grant(
        self,
        grant: Callable[[TokenRequest], TokenResponse],
        request: TokenRequest,
        proof: Proof | None,
    ) -> TokenResponse:
        """The authenticated app's grant, under its grant types and DPoP rules."""
        client, grant_type = request.client, request.grant_type
        if grant_type not in client.grant_types:
            raise errors.UnauthorizedClient(f"this app may not use the {grant_type} grant")
        if proof is None:
            if client.requires_dpop:
                # RFC 9449 §5.2: MUST reject; §5: the DPoP header MUST hold a valid proof,
                # and a missing one is not valid: `invalid_dpop_proof`.
                raise errors.InvalidDPoPProof(
                    "this app always uses DPoP (dpop_bound_access_tokens): send a DPoP proof"
                )
            return grant(request)
        # §11.1: the proof's jti is recorded after client authentication: no writes for strangers.
        self.dpop.use(proof, request.now)
        return grant(replace(request, dpop_jkt=proof.jkt))
