"""The token68 of an `Authorization: Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1) header."""

from __future__ import annotations

import re

__all__ = ["MAX_TOKEN_LENGTH", "MalformedAuthorization", "check_token"]

# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MAX_TOKEN_LENGTH = 16384


class MalformedAuthorization(ValueError):
    """The header is there but malformed (answer 400 invalid_request)."""


def check_token(token: str) -> str:
    """The token of a `Bearer` or `DPoP` header (the same token68 syntax, RFC 9449 §7.1)."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.match(token):
        raise MalformedAuthorization("malformed bearer token")
    return token
