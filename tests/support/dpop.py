"""Making DPoP proofs in tests (RFC 9449 §4.2), with every field overridable so a test can
break one check at a time. Independent of `tessera.client`'s signer on purpose."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, Key

__all__ = ["ath", "make_proof", "new_key", "thumbprint"]


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
