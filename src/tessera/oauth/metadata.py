"""Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OIDC Discovery §3).

Only what is implemented is advertised: the web layer passes the endpoints it serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tessera.shared.acr import ACR_LEVELS
from tessera.shared.dpop import DEFAULT_ALGS

__all__ = ["ENDPOINT_PATHS", "REVOCATION_FEED_PATH", "assertion_audiences", "build_metadata"]

# Oracle IDCS paths, so its clients and docs carry over (docs/architecture.md, "Decisions").
ENDPOINT_PATHS: Mapping[str, str] = {
    "authorization_endpoint": "/oauth2/v1/authorize",
    "token_endpoint": "/oauth2/v1/token",
    "revocation_endpoint": "/oauth2/v1/revoke",
    "introspection_endpoint": "/oauth2/v1/introspect",
    "userinfo_endpoint": "/oauth2/v1/userinfo",
    "end_session_endpoint": "/oauth2/v1/userlogout",
    "jwks_uri": "/oauth2/v1/keys",
    "pushed_authorization_request_endpoint": "/oauth2/v1/par",  # RFC 9126 §5
    "registration_endpoint": "/oauth2/v1/register",  # RFC 7591 §3
    "device_authorization_endpoint": "/oauth2/v1/device",  # RFC 8628 §4, Oracle's path
}

REVOCATION_FEED_PATH = "/oauth2/v1/revocations"  # ours (docs/security.md rule 30)
# The endpoints where apps authenticate (client assertions may name their URLs as `aud`).
_AUTHENTICATING = (
    "token_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "pushed_authorization_request_endpoint",
    "device_authorization_endpoint",
)

# RFC 7591 §2 / OIDC Core §9, in the order a client should prefer them.
_SECRET_AUTH = ["private_key_jwt", "client_secret_jwt", "client_secret_basic", "client_secret_post"]
_CLIENT_AUTH = [*_SECRET_AUTH, "none"]
# RFC 8414 §2 `*_auth_signing_alg_values_supported` (RFC 8725 §3.1: never `none`).
_AUTH_SIGNING_ALGS = [
    "PS256",
    "ES256",
    "EdDSA",
    "RS256",
    "PS384",
    "PS512",
    "RS384",
    "RS512",
    "ES384",
    "ES512",
    "HS256",
    "HS384",
    "HS512",
]


def assertion_audiences(issuer: str) -> frozenset[str]:
    """RFC 7523 §3 item 3: a client assertion's `aud` names the issuer (RFC 8414 §2; what
    FAPI 2.0 asks clients to use) or the URL of an endpoint that authenticates apps."""
    urls = [issuer + ENDPOINT_PATHS[name] for name in _AUTHENTICATING]
    return frozenset({issuer, *urls, issuer + REVOCATION_FEED_PATH})


def build_metadata(
    issuer: str,
    endpoints: set[str],
    scopes: list[str],
    grant_types: list[str],
    *,
    require_par: bool = False,
) -> dict[str, Any]:
    """The metadata document; `endpoints` names the keys of ENDPOINT_PATHS that are served."""
    doc: dict[str, Any] = {"issuer": issuer}  # RFC 8414 §3.3: identical to the configured issuer
    for name, path in ENDPOINT_PATHS.items():
        if name in endpoints:
            doc[name] = issuer + path
    doc["scopes_supported"] = scopes
    doc["response_types_supported"] = ["code"]  # RFC 9700 §2.1.2: no implicit grant
    doc["response_modes_supported"] = ["query"]
    # OIDC Discovery §3: omitted, request_uri_parameter_supported means true.
    doc["request_parameter_supported"] = False
    doc["request_uri_parameter_supported"] = False
    doc["grant_types_supported"] = grant_types
    doc["subject_types_supported"] = ["public"]
    doc["id_token_signing_alg_values_supported"] = ["RS256", "ES256"]
    doc["claims_supported"] = [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "name",
        "preferred_username",
        "email",
        "email_verified",
        "sid",
        "acr",
        "amr",
    ]
    doc["acr_values_supported"] = list(ACR_LEVELS)
    doc["claims_parameter_supported"] = True  # the id_token.acr request only (docs/mfa.md)
    if "token_endpoint" in endpoints:
        doc["token_endpoint_auth_methods_supported"] = _CLIENT_AUTH
        doc["token_endpoint_auth_signing_alg_values_supported"] = _AUTH_SIGNING_ALGS
        # RFC 9449 §5.1: DPoP is supported, with proofs signed with these algorithms.
        doc["dpop_signing_alg_values_supported"] = list(DEFAULT_ALGS)
    if "authorization_endpoint" in endpoints:
        doc["code_challenge_methods_supported"] = ["S256"]  # RFC 9700 §2.1.1: no `plain`
        doc["authorization_response_iss_parameter_supported"] = True  # RFC 9207 §3
        doc["prompt_values_supported"] = ["none", "login", "consent"]
    if "revocation_endpoint" in endpoints:
        doc["revocation_endpoint_auth_methods_supported"] = _CLIENT_AUTH
        doc["revocation_endpoint_auth_signing_alg_values_supported"] = _AUTH_SIGNING_ALGS
    if "introspection_endpoint" in endpoints:
        doc["introspection_endpoint_auth_methods_supported"] = _SECRET_AUTH
        doc["introspection_endpoint_auth_signing_alg_values_supported"] = _AUTH_SIGNING_ALGS
    if "pushed_authorization_request_endpoint" in endpoints:
        # RFC 9126 §5: true when every app of the domain must push its requests.
        doc["require_pushed_authorization_requests"] = require_par
    return doc
