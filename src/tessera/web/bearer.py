"""Reading a bearer token from a request (RFC 6750 §2.1), shared by our protected endpoints."""

from __future__ import annotations

import re

from starlette.requests import Request

from tessera.oauth.errors import InvalidRequest, InvalidToken

__all__ = ["bearer_token"]

# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer …`, the scheme matched case-insensitively."""
    if "access_token" in request.query_params:
        # RFC 9700 §4.3.2: never in the URI, where logs and referrers keep it.
        raise InvalidRequest("send the access token in the Authorization header")
    values = request.headers.getlist("authorization")
    if not values:
        raise InvalidToken("")  # RFC 6750 §3.1: no error code when no credentials were sent
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 16384 or not _B64TOKEN.match(token):
        raise InvalidRequest("malformed Authorization header; use: Bearer <token>")
    return token
