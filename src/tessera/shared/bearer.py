"""The `Authorization: Bearer` header, RFC 6750 §2.1."""

from __future__ import annotations

import re

__all__ = ["MalformedAuthorization", "check_token", "parse_bearer"]

# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MAX_TOKEN_LENGTH = 16384


class MalformedAuthorization(ValueError):
    """The header is there but is not `Bearer <token>` (answer 400 invalid_request)."""


def parse_bearer(values: list[str]) -> str | None:
    """The token from the Authorization header values; None when there is no header.

    The scheme is matched case-insensitively (RFC 7235 §2.1).
    """
    if not values:
        return None
    if len(values) > 1:
        raise MalformedAuthorization("more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise MalformedAuthorization("use the Bearer scheme: Authorization: Bearer <token>")
    return check_token(token)


def check_token(token: str) -> str:
    """The token of a `Bearer` or `DPoP` header (the same token68 syntax, RFC 9449 §7.1)."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.match(token):
        raise MalformedAuthorization("malformed bearer token")
    return token
