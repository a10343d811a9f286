"""Proof Key for Code Exchange, RFC 7636, S256 only (RFC 9700 §2.1.1).

pkce = Pkce.new()
authorize(..., code_challenge=pkce.challenge, code_challenge_method="S256")
token(..., code_verifier=pkce.verifier)
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

__all__ = ["Pkce", "new_verifier", "s256_challenge"]

# code-verifier = 43*128unreserved (RFC 7636 §4.1)
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def new_verifier(nbytes: int = 32) -> str:
    """A high-entropy verifier: 32 random octets, base64url without padding (RFC 7636 §4.1)."""
    if not 32 <= nbytes <= 96:
        raise ValueError("a code verifier needs 32 to 96 random octets (43 to 128 characters)")
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    if not _VERIFIER.match(verifier):
        raise ValueError("a code verifier is 43 to 128 unreserved characters (RFC 7636 §4.1)")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"  # `plain` is never used (RFC 9700 §2.1.1)

    @classmethod
    def new(cls) -> Pkce:
        verifier = new_verifier()
        return cls(verifier, s256_challenge(verifier))
