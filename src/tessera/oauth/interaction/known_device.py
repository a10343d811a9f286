"""The known-device cookie: proof that this browser signed in to an account before, so that
failures made elsewhere do not throttle it (see `throttle`).

The value is `<device id>.<expiry, Unix seconds>.<MAC>`, the MAC an HMAC-SHA256 (RFC 2104),
under a key derived from the server secret, of the user id, the device id and the expiry: the
user id is bound without being written in the cookie, and checked against the account being
signed in to. The cookie authenticates nobody: it only picks which throttle counters apply, and
the password is still required.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime, timedelta
from hashlib import sha256

__all__ = ["KNOWN_DEVICE_TTL", "issue", "read"]

KNOWN_DEVICE_TTL = timedelta(days=180)
_MAX_LENGTH = 200


def _mac(key: bytes, user_id: str, device_id: str, expires: int) -> str:
    message = f"known-device|{user_id}|{device_id}|{expires}".encode("utf-8", "surrogatepass")
    digest = hmac.new(key, message, sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(key: bytes, user_id: str, now: datetime, device_id: str | None = None) -> str:
    """A cookie value for `user_id`, valid for `KNOWN_DEVICE_TTL` from `now`; `device_id`
    keeps the id the browser had for this user (its failures stay counted on it)."""
    device = device_id or secrets.token_urlsafe(16)
    expires = int((now + KNOWN_DEVICE_TTL).timestamp())
    return f"{device}.{expires}.{_mac(key, user_id, device, expires)}"


def read(key: bytes, value: str | None, user_id: str | None, now: datetime) -> str | None:
    """The device id of a cookie value issued by us for `user_id`, unexpired; else None."""
    if not value or user_id is None or len(value) > _MAX_LENGTH or not value.isascii():
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    device, expires_text, mac = parts
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(key, user_id, device, expires), mac):
        return None
    return device if expires > now.timestamp() else None
