"""Reading the parts of a compact JWT before (or beside) verifying it: RFC 7515 §7.1 (base64url
segments), RFC 7519 §2 (NumericDate). Shared by the resource library and the identity domain."""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any, TypeGuard

import orjson

__all__ = ["at_hash", "decode_segment", "is_numeric_date"]

# OIDC Core §3.1.3.6: the hash of the JWS alg ("RS256" → SHA-256); EdDSA over Ed25519, SHA-512.
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def decode_segment(segment: str) -> Any:
    """The JSON value of one base64url segment (without padding); `ValueError` when it is not
    base64url or not JSON (`orjson.JSONDecodeError` is a `ValueError`)."""
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def is_numeric_date(value: Any) -> TypeGuard[int | float]:
    """A finite JSON number (NumericDate); never a bool, NaN or infinity."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the hash of the access token's ASCII octets,
    base64url, with the hash of the ID token's `alg`; `ValueError` for an alg without one."""
    digest = hashlib.sha512 if alg in ("EdDSA", "Ed25519") else _HASHES.get(alg[-3:])
    if digest is None:
        raise ValueError(f"no at_hash for {alg!r}")
    full = digest(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")
