"""How a client authenticates at a token endpoint, for the client library and for the identity
domain when it is itself the client of an upstream OpenID provider (docs/federation.md): the
`client_secret_basic` header (RFC 6749 §2.3.1) and a `private_key_jwt` client assertion (RFC
7523 §2.2 and §3, OIDC Core §9).

`iss` = `sub` = the client id, `aud` one string (the authorization server's issuer identifier:
what RFC 7523bis and FAPI 2.0 §5.3.2.1 recommend, and what Tessera and oidc-provider accept),
a random 256-bit `jti`, `iat`, and `exp` `lifetime` seconds later. joserfc is imported only
when an assertion is signed, so `tessera.client` stays importable with the standard library
and httpx alone.
"""

from __future__ import annotations

import base64
import secrets
import warnings
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from joserfc.jwk import Key

__all__ = ["ASSERTION_LIFETIME", "JWT_BEARER", "basic_authorization", "client_assertion_form"]

# RFC 7523 §2.2: the value of `client_assertion_type`.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60


def basic_authorization(client_id: str, secret: str) -> str:
    """The `Authorization` value of `client_secret_basic`: RFC 6749 §2.3.1 form-urlencodes the
    id and the secret before the Basic encoding (RFC 7617)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_assertion_form(
    key: Key,
    *,
    alg: str,
    kid: str,
    client_id: str,
    audience: str,
    now: float,
    lifetime: int = ASSERTION_LIFETIME,
) -> dict[str, str]:
    """The form parameters of RFC 7523 §2.2 (`client_id`, `client_assertion_type`,
    `client_assertion`) with a new assertion signed by `key` (RFC 7523 §3)."""
    from joserfc import jwt
    from joserfc.errors import SecurityWarning

    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(32),
        "iat": issued,
        "exp": issued + lifetime,
    }
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    with warnings.catch_warnings():
        # joserfc flags EdDSA as superseded by RFC 9864's Ed25519, which servers rarely list
        # yet; the signature is the same.
        warnings.simplefilter("ignore", SecurityWarning)
        assertion = jwt.encode(header, claims, key, algorithms=[alg])
    return {
        "client_id": client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
