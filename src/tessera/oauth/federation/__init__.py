"""Signing in through upstream OpenID Connect providers (docs/federation.md).

`metadata` talks to the provider (OIDC Discovery 1.0, the token and userinfo requests),
`id_token` validates its ID tokens (OIDC Core §3.1.3.7), `flow` is the browser's round trip
(the request, its sealed cookie, the callback's checks), `accounts` maps the claims and finds,
links or creates the local account, `home_realm` picks a provider by e-mail domain, `secrets`
seals our credentials at the providers. No web framework here: `tessera.web.federation` calls
these functions.
"""

from __future__ import annotations

from tessera.oauth.federation.accounts import (
    Account,
    Plan,
    UpstreamClaims,
    link_identity,
    map_claims,
    plan_account,
    resolve_account,
)
from tessera.oauth.federation.errors import Refused, UpstreamError
from tessera.oauth.federation.flow import (
    COOKIE_NAME,
    COOKIE_PATH,
    FederationRequest,
    begin,
    check_response,
    complete,
    open_request,
    seal_request,
)
from tessera.oauth.federation.home_realm import provider_for_email
from tessera.oauth.federation.id_token import validate_id_token
from tessera.oauth.federation.metadata import ProviderMetadata, UpstreamClient, parse_metadata
from tessera.oauth.federation.secrets import (
    PROVIDER_KEY_PURPOSE,
    Credentials,
    client_jwks,
    credentials_for,
    new_client_key,
    open_secret,
    seal_secret,
)

__all__ = [
    "COOKIE_NAME",
    "COOKIE_PATH",
    "PROVIDER_KEY_PURPOSE",
    "Account",
    "Credentials",
    "FederationRequest",
    "Plan",
    "ProviderMetadata",
    "Refused",
    "UpstreamClaims",
    "UpstreamClient",
    "UpstreamError",
    "begin",
    "check_response",
    "client_jwks",
    "complete",
    "credentials_for",
    "link_identity",
    "map_claims",
    "new_client_key",
    "open_request",
    "open_secret",
    "parse_metadata",
    "plan_account",
    "provider_for_email",
    "resolve_account",
    "seal_request",
    "seal_secret",
    "validate_id_token",
]
