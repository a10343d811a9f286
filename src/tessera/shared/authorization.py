"""The `Authorization` header of a request to a protected resource: `Bearer <token>` (RFC 6750
§2.1) or `DPoP <token>` (RFC 9449 §7.1), the scheme matched case-insensitively (RFC 9110 §11.1)."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from tessera.shared.bearer import MalformedAuthorization, check_token

__all__ = ["AccessCredentials", "parse_access_authorization", "request_authorization"]

_SCHEMES = {"bearer": "Bearer", "dpop": "DPoP"}


@dataclass(frozen=True, slots=True)
class AccessCredentials:
    scheme: str  # "Bearer" or "DPoP"
    token: str

    @property
    def is_dpop(self) -> bool:
        return self.scheme == "DPoP"


def parse_access_authorization(values: list[str]) -> AccessCredentials | None:
    """The scheme and token; None without a header; `MalformedAuthorization` for two headers,
    another scheme or a malformed token."""
    if not values:
        return None
    if len(values) > 1:
        raise MalformedAuthorization("more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    name = _SCHEMES.get(scheme.lower())
    if name is None:
        raise MalformedAuthorization(
            "use the Bearer or DPoP scheme: Authorization: Bearer <token> or DPoP <token>"
        )
    return AccessCredentials(name, check_token(token.strip()))


def request_authorization(
    query: Container[str], authorization: list[str]
) -> AccessCredentials | None:
    """`parse_access_authorization` of a request that must not carry the token in its query
    (RFC 9700 §4.3.2: logs and referrers keep URIs): `MalformedAuthorization` if it does."""
    if "access_token" in query:
        raise MalformedAuthorization("send the access token in the Authorization header")
    return parse_access_authorization(authorization)
