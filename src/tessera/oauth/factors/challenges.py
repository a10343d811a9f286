"""The signed state of a WebAuthn ceremony, carried in a hidden form field.

The options page makes a random challenge (W3C WebAuthn Level 3 §13.4.3: at least 16 random
bytes; we use 32) and puts it, with its expiry, in a state string MACed with HMAC-SHA256
(RFC 2104) under a server key. The MAC also covers the ceremony's purpose (e.g. registering a
passkey, signing in) and its subject (the browser or session it was issued to, or the user), so
a state answers only the ceremony and the browser it was made for, and no server state is kept
between the two requests. A state is not single-use by itself: the caller records the
challenge with `store.nonces.use_once` (until `now + ttl` at the latest) when it accepts it.

Format: `v1.<challenge, base64url>.<expiry, Unix seconds>.<MAC, base64url>`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import datetime

from tessera.domain.hashing import keyed_hash, verify_keyed_hash

__all__ = ["CHALLENGE_BYTES", "MAX_TTL", "ChallengeError", "issue", "open_state"]

CHALLENGE_BYTES = 32
MAX_TTL = 3600
_VERSION = "v1"
_MAX_STATE = 200  # 2 + 43 + 12 + 43 and three dots fit well within
_B64URL = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded
_EXPIRY = re.compile(r"[0-9]{1,12}")
_MALFORMED = "The passkey request is malformed; please start again."


class ChallengeError(Exception):
    """A state that is not ours, not for this ceremony or subject, or expired."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed(purpose: str, subject: str, challenge: str, expires: int) -> str:
    # A JSON array is an unambiguous encoding of the fields, whatever characters they hold.
    return json.dumps(["webauthn-state", _VERSION, purpose, subject, challenge, expires])


def issue(
    key: bytes, purpose: str, subject: str, now: datetime, ttl: int = 300
) -> tuple[bytes, str]:
    """A new random challenge and the state that carries it, valid for `ttl` seconds."""
    if not key:
        raise ValueError("a state key is required")
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL} seconds")
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    encoded = _b64(challenge)
    expires = int(now.timestamp()) + ttl
    mac = keyed_hash(key, _signed(purpose, subject, encoded, expires))
    state = f"{_VERSION}.{encoded}.{expires}.{mac}"
    return challenge, state


def open_state(key: bytes, state: str, purpose: str, subject: str, now: datetime) -> bytes:
    """The challenge `state` carries, if we issued it for `purpose` and `subject` and it has
    not expired at `now`; else `ChallengeError`."""
    if not key:
        raise ValueError("a state key is required")
    if len(state) > _MAX_STATE or not state.isascii():
        raise ChallengeError(_MALFORMED)
    parts = state.split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        raise ChallengeError(_MALFORMED)
    _, encoded, expires_text, mac = parts
    if not _B64URL.fullmatch(encoded) or not _EXPIRY.fullmatch(expires_text):
        raise ChallengeError(_MALFORMED)
    expires = int(expires_text)
    if not verify_keyed_hash(key, _signed(purpose, subject, encoded, expires), mac):
        raise ChallengeError(
            "The passkey request is not valid here (another page, browser or session); "
            "please start again."
        )
    if int(now.timestamp()) >= expires:
        raise ChallengeError("The passkey request has expired; please start again.")
    return base64.urlsafe_b64decode(encoded + "=")
