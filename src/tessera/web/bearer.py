"""Reading credentials from a request: a bearer token (RFC 6750 §2) or a DPoP-bound one (RFC 9449
§7.1) for our protected endpoints, the one `Authorization` header for client authentication."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from tessera.oauth.errors import InvalidRequest, MissingToken
from tessera.shared.authorization import AccessCredentials, request_authorization
from tessera.shared.bearer import MalformedAuthorization

__all__ = ["access_credentials", "bearer_token", "single_authorization"]


def bearer_token(request: Request, form: Mapping[str, str] | None = None) -> str:
    """The bearer token of the Authorization header (§2.1) or, given the parsed form body of a
    POST, of its `access_token` parameter (§2.2), for an endpoint that takes no DPoP."""
    credentials = access_credentials(request, form)
    if credentials.is_dpop:
        raise InvalidRequest("use the Bearer scheme: Authorization: Bearer <token>")
    return credentials.token


def access_credentials(
    request: Request, form: Mapping[str, str] | None = None
) -> AccessCredentials:
    """`Authorization: Bearer <token>`, `Authorization: DPoP <token>` (RFC 9449 §7.1) or a
    POST's `access_token` (a bearer token, RFC 6750 §2.2); two methods at once are refused
    (§2: one method only)."""
    try:
        found = request_authorization(
            request.query_params, request.headers.getlist("authorization")
        )
    except MalformedAuthorization as exc:
        raise InvalidRequest(str(exc)) from None
    in_body = form.get("access_token") if form is not None else None
    if found is not None and in_body is not None:
        raise InvalidRequest("send the access token by one method only (RFC 6750 §2)")
    if found is not None:
        return found
    if in_body is None:
        raise MissingToken()  # RFC 6750 §3.1: no error code when no credentials were sent
    return AccessCredentials("Bearer", in_body)


def single_authorization(request: Request) -> str | None:
    """The one Authorization header; two of them are refused, never half-read."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    return values[0] if values else None
