"""The known-device cookie: proof that this browser signed in to an account before, so that
failures made elsewhere do not throttle it (see `login_throttle`).

The value is `<user id, base64url>.<device id>.<expiry, Unix seconds>.<HMAC-SHA256>`, the MAC
under a key derived from the server secret (RFC 2104). It authenticates nobody: it only picks
which throttle counters apply, and a password is still required.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

__all__ = ["KNOWN_DEVICE_TTL", "KnownDevice", "device_of", "issue", "read"]

KNOWN_DEVICE_TTL = timedelta(days=180)
_MAX_LENGTH = 512


@dataclass(frozen=True, slots=True)
class KnownDevice:
    user_id: str
    device_id: str
    expires: int  # Unix seconds


def _mac(key: bytes, user: str, device: str, expires: int) -> str:
    digest = hmac.new(key, f"known-device|{user}|{device}|{expires}".encode(), sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(
    key: bytes, user_id: str, now: datetime, previous: KnownDevice | None = None
) -> tuple[str, KnownDevice]:
    """A cookie value for `user_id`, valid for `KNOWN_DEVICE_TTL`; the device id of `previous`
    is kept when it was this user's (its failures stay counted on it)."""
    device_id = (
        previous.device_id
        if previous is not None and previous.user_id == user_id
        else secrets.token_hex(16)
    )
    expires = int((now + KNOWN_DEVICE_TTL).timestamp())
    user = base64.urlsafe_b64encode(user_id.encode()).rstrip(b"=").decode("ascii")
    value = f"{user}.{device_id}.{expires}.{_mac(key, user, device_id, expires)}"
    return value, KnownDevice(user_id, device_id, expires)


def read(key: bytes, value: str | None, now: datetime) -> KnownDevice | None:
    """The device a cookie value names, if its MAC is ours and it has not expired."""
    if not value or len(value) > _MAX_LENGTH or not value.isascii():
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    user, device, expires_text, mac = parts
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(key, user, device, expires), mac):
        return None
    if expires <= now.timestamp():
        return None
    try:
        user_id = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return KnownDevice(user_id, device, expires)


def device_of(device: KnownDevice | None, user_id: str | None) -> str | None:
    """The device id when the cookie is for the account being signed in to, else None."""
    if device is None or user_id is None or device.user_id != user_id:
        return None
    return device.device_id
