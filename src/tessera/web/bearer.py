"""Reading a bearer token from a request (RFC 6750 §2.1) for our protected endpoints."""

from __future__ import annotations

from starlette.requests import Request

from tessera.oauth.errors import InvalidRequest, InvalidToken
from tessera.shared.bearer import MalformedAuthorization, parse_bearer

__all__ = ["bearer_token"]


def bearer_token(request: Request) -> str:
    if "access_token" in request.query_params:
        # RFC 9700 §4.3.2: never in the URI, where logs and referrers keep it.
        raise InvalidRequest("send the access token in the Authorization header")
    try:
        token = parse_bearer(request.headers.getlist("authorization"))
    except MalformedAuthorization as exc:
        raise InvalidRequest(str(exc)) from None
    if token is None:
        raise InvalidToken("")  # RFC 6750 §3.1: no error code when no credentials were sent
    return token
