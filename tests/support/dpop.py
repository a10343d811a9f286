"""Making DPoP proofs in tests (RFC 9449 §4.2), with every field overridable so a test can
break one check at a time. Independent of `tessera.client`'s signer on purpose. And the
endpoints of a running server that take proofs, for the e2e tests."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import ECKey, Key

from tests.support.flow import basic_auth
from tests.support.server import Server

__all__ = [
    "ath",
    "client_credentials",
    "make_proof",
    "new_key",
    "par_url",
    "post_token",
    "thumbprint",
    "token_url",
    "userinfo_url",
]


def new_key() -> ECKey:
    return ECKey.generate_key("P-256")


def thumbprint(key: Key) -> str:
    return key.thumbprint()


def ath(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_proof(
    key: Key,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
    alg: str = "ES256",
    typ: str = "dpop+jwt",
    jwk: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    signing_key: Key | None = None,
) -> str:
    """A proof for `method url`; `jwk` replaces the header's key, `signing_key` the key that
    signs (to break the signature), `claims` adds or overrides claims (None values drop them)."""
    payload: dict[str, Any] = {
        "jti": jti or secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time() if iat is None else iat),
    }
    if access_token is not None:
        payload["ath"] = ath(access_token)
    if nonce is not None:
        payload["nonce"] = nonce
    for name, value in (claims or {}).items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    header = {"typ": typ, "alg": alg, "jwk": jwk if jwk is not None else key.as_dict(private=False)}
    return jws.serialize_compact(header, _json(payload), signing_key or key, algorithms=[alg])


def _json(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload, separators=(",", ":")).encode()


def token_url(server: Server) -> str:
    return server.issuer + "/oauth2/v1/token"


def par_url(server: Server) -> str:
    return server.issuer + "/oauth2/v1/par"


def userinfo_url(server: Server) -> str:
    return server.issuer + "/oauth2/v1/userinfo"


def post_token(server: Server, data: dict[str, str], proof: str | None) -> httpx.Response:
    """A token request of the demo confidential app (client_secret_basic), with `proof` in the
    DPoP header when given."""
    app = server.demo["confidential_app"]
    headers = {"DPoP": proof} if proof is not None else {}
    return httpx.post(
        token_url(server), data=data, auth=basic_auth(app), headers=headers, timeout=30
    )


def client_credentials(server: Server, proof: str | None) -> httpx.Response:
    data = {"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"]}
    return post_token(server, data, proof)
