"""Client authentication at the token, introspection and revocation endpoints.

RFC 6749 §2.3.1 (`client_secret_basic` with form-urlencoded id and secret, `client_secret_post`),
§2.3 (a client MUST NOT use more than one method), §3.2.1 (public clients identify themselves
with `client_id`). Secrets are compared in constant time against their keyed hashes; during a
rotation the previous secret works until its expiry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import unquote_plus

from tessera.domain.hashing import keyed_hash
from tessera.domain.model import Client
from tessera.oauth.errors import InvalidClient, InvalidRequest

__all__ = ["authenticate_client", "parse_basic"]

_MAX = 512


# The same public words for every failure: a caller learns nothing about which apps exist.
_BAD = "unknown client or bad credentials"


def parse_basic(authorization: str) -> tuple[str, str]:
    """Decode `Basic base64(urlencode(id):urlencode(secret))`; `InvalidClient` if malformed."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise InvalidClient("unsupported client authentication scheme; use Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII input, bad UTF-8
        raise InvalidClient("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not sep or "\x00" in client_id or "\x00" in secret:
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


def _secret_ok(client: Client, secret: str, pepper: bytes, now: datetime) -> bool:
    presented = keyed_hash(pepper, secret)
    ok = False
    for stored in client.secret_hashes:
        live = stored.expires_at is None or stored.expires_at > now
        # Compare against every stored hash so the time does not depend on which one matched.
        ok |= hmac.compare_digest(presented, stored.hash) and live
    return ok


def authenticate_client(
    authorization: str | None,
    form: Mapping[str, str],
    lookup: Callable[[str], Client | None],
    pepper: bytes,
    now: datetime,
    *,
    allow_public: bool = True,
) -> Client:
    """Return the authenticated client or raise `InvalidClient` / `InvalidRequest`."""
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    if authorization is not None:
        if form_secret is not None:
            raise InvalidRequest("use one client authentication method, not Basic and the body")
        client_id, secret = parse_basic(authorization)
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id in the body differs from the Basic credentials")
    elif form_id is not None:
        client_id, secret = form_id, form_secret  # type: ignore[assignment]
    else:
        raise InvalidClient("client authentication is required")
    if not client_id or len(client_id) > _MAX or (secret is not None and len(secret) > _MAX):
        raise InvalidClient(_BAD, debug="an empty or overlong client_id or secret")
    client = lookup(client_id)
    if client is None:
        raise InvalidClient(_BAD, debug="no app has this client_id")
    if client.is_public:
        if secret:
            raise InvalidClient("a public app has no secret")
        if not allow_public:
            raise InvalidClient("this endpoint needs a confidential app's credentials")
        return client
    if secret is None:
        raise InvalidClient("client authentication is required")
    if not _secret_ok(client, secret, pepper, now):
        raise InvalidClient(_BAD, debug="the secret matches none of the app's live secrets")
    return client
