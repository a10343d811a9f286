"""Proof Key for Code Exchange, RFC 7636, S256 only (RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from tessera.oauth.errors import InvalidGrant, InvalidRequest

__all__ = ["check_challenge_params", "check_verifier", "s256"]

# code-verifier = 43*128unreserved (RFC 7636 §4.1); a S256 challenge is 43 base64url chars.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge_params(challenge: str | None, method: str | None, *, required: bool) -> None:
    """At the authorization endpoint (RFC 7636 §4.3, §4.4.1)."""
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method given without code_challenge")
        if required:
            # RFC 9700 §2.1.1: public clients MUST use PKCE.
            raise InvalidRequest("code_challenge is required for this app (PKCE, S256)")
        return
    # RFC 7636 §4.3 defaults to plain when the method is absent; we accept only S256.
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not a S256 challenge")


def check_verifier(challenge: str | None, verifier: str | None) -> None:
    """At the token endpoint (RFC 7636 §4.6): fail with `invalid_grant`."""
    if challenge is None:
        if verifier is not None:
            # RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
            raise InvalidGrant("code_verifier given for a code issued without code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
