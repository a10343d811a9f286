"""The grant types the token endpoint offers (RFC 6749 §4, §6; RFC 7523 §2.1; RFC 8693 §2.1;
RFC 8628 §3.4): the one list that discovery publishes (RFC 8414 §2 `grant_types_supported`),
app validation accepts and the CLI's help names. It imports nothing, so the CLI can name the
list without loading the protocol core."""

from __future__ import annotations

__all__ = ["DEVICE_CODE_GRANT", "GRANT_TYPES", "JWT_BEARER", "TOKEN_EXCHANGE"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4

GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    JWT_BEARER,
    TOKEN_EXCHANGE,
    DEVICE_CODE_GRANT,
)
