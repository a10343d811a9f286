"""Random tokens and their stored forms.

Codes, refresh tokens and session ids are 256-bit random values stored as SHA-256 (a preimage
search of 2^256 needs no slow KDF). Client secrets are stored as HMAC-SHA256 under a key derived
from the key-encryption key, so a database dump alone does not let anyone test guesses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["keyed_hash", "new_id", "new_token", "sha256_b64", "verify_keyed_hash"]


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token of `nbytes` bytes of entropy (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def new_id(prefix: str = "", nbytes: int = 16) -> str:
    """A random identifier (128 bits by default), hex, with an optional prefix."""
    return f"{prefix}{secrets.token_hex(nbytes)}"


def sha256_b64(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def keyed_hash(key: bytes, value: str) -> str:
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_keyed_hash(key: bytes, value: str, expected: str) -> bool:
    """Constant-time comparison of `value`'s keyed hash with `expected`."""
    return hmac.compare_digest(keyed_hash(key, value), expected)
