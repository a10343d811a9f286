"""Password-reset links: stateless, time-limited, single use (OWASP Forgot Password Cheat Sheet).

A token is `<payload>.<MAC>`, both base64url: the payload names the user, the expiry, a
fingerprint of the account's current credentials and a random nonce; the MAC is HMAC-SHA256
(RFC 2104) under a key of the identity domain (`Context.subkey(RESET_KEY_PURPOSE)`), so a link
of one domain is worth nothing in another. The fingerprint is a keyed hash of the password hash,
its change time and the e-mail address: once the password changes (the link was used, or an
administrator set one) or the address does, every link issued before is dead. Two concurrent
submissions of one link pass the fingerprint check together; the caller records `reset_jti` with
`store.nonces.use_once` so only one of them wins.

Requests are throttled per account and per client address on the sign-in throttle's counters
(`reset_request_allowed`, `reset_mail_allowed`), so nobody can flood a mailbox through the form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import User
from tessera.oauth.interaction.throttle import address_group
from tessera.store.protocols import Store

__all__ = [
    "DEFAULT_RESET_TTL",
    "RESET_KEY_PURPOSE",
    "ResetMailPolicy",
    "ResetTokenInvalid",
    "check_reset_token",
    "issue_reset_token",
    "reset_expiry",
    "reset_jti",
    "reset_mail_allowed",
    "reset_request_allowed",
]

RESET_KEY_PURPOSE = "password-reset link"
DEFAULT_RESET_TTL = 1800
_MAX_TTL = 86400
_MAX_TOKEN = 600  # a real token is about 150 characters; anything longer is not ours
_CONTEXT = b"tessera password reset v1\x00"


class ResetTokenInvalid(ValueError):
    """The link cannot reset a password; the message says why, for the page and the audit."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ResetTokenInvalid("the link is malformed")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ResetTokenInvalid("the link is malformed") from None
    # Canonical only: the decoder skips characters outside the alphabet, and two spellings of
    # one link would be two keys for `reset_jti` (two uses).
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise ResetTokenInvalid("the link is malformed")
    return raw


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()


def _fingerprint(key: bytes, user: User) -> str:
    """Changes when the password (its hash or change time) or the e-mail address changes."""
    material = "\x00".join(
        ("fingerprint", user.password_hash, user.password_changed_at.isoformat(), user.email or "")
    )
    return _b64(_mac(key, material.encode("utf-8", "surrogatepass"))[:16])


def issue_reset_token(key: bytes, user: User, now: datetime, ttl: int = DEFAULT_RESET_TTL) -> str:
    """A link token for `user`, valid `ttl` seconds from `now` and until the password changes."""
    if not 60 <= ttl <= _MAX_TTL:
        raise ValueError(f"a reset link lives 60 to {_MAX_TTL} seconds")
    expires = int(now.timestamp()) + ttl
    nonce = secrets.token_urlsafe(12)
    payload = "|".join((user.id, str(expires), _fingerprint(key, user), nonce))
    raw = payload.encode("utf-8", "surrogatepass")
    return f"{_b64(raw)}.{_b64(_mac(key, raw))}"


@dataclass(frozen=True, slots=True)
class _Claims:
    user_id: str
    expires: int
    fingerprint: str


def _read(key: bytes, token: str) -> _Claims:
    """The authenticated payload of `token` (not yet checked against the clock or the user)."""
    if len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise ResetTokenInvalid("the link is malformed")
    payload_text, mac_text = token.split(".")
    payload, mac = _unb64(payload_text), _unb64(mac_text)
    if not hmac.compare_digest(_mac(key, payload), mac):
        raise ResetTokenInvalid("the link is not valid")
    # The user id is all before the last three fields (it is ours, but may hold a "|").
    try:
        user_id, expires, fingerprint, _ = payload.decode("utf-8", "surrogatepass").rsplit("|", 3)
        return _Claims(user_id, int(expires), fingerprint)
    except ValueError:  # authentic but not a reset payload: the key serves another purpose
        raise ResetTokenInvalid("the link is malformed") from None


def check_reset_token(
    key: bytes, token: str, lookup_user: Callable[[str], User | None], now: datetime
) -> User:
    """The user a link resets the password of; `ResetTokenInvalid` unless it is authentic,
    unexpired, of an active user, and issued since the user's last password change."""
    claims = _read(key, token)
    if claims.expires <= now.timestamp():
        raise ResetTokenInvalid("the link has expired: ask for a new one")
    user = lookup_user(claims.user_id)
    if user is None or not user.active:
        raise ResetTokenInvalid("the account of this link does not exist or is disabled")
    if not hmac.compare_digest(_fingerprint(key, user), claims.fingerprint):
        raise ResetTokenInvalid("the link was used already, or the account changed since")
    return user


def reset_jti(token: str) -> str:
    """The key that makes a link single use across nodes (`store.nonces.use_once`): a hash,
    as the link itself must not be stored (docs/security.md rule 23)."""
    return f"password-reset:{sha256_b64(token)}"


def reset_expiry(token: str) -> datetime:
    """When a link checked by `check_reset_token` expires: how long to keep its `reset_jti`."""
    payload = _unb64(token.partition(".")[0])
    expires = payload.decode("utf-8", "surrogatepass").rsplit("|", 3)[1]
    return datetime.fromtimestamp(int(expires), UTC)


@dataclass(frozen=True, slots=True)
class ResetMailPolicy:
    """At most `per_user` reset mails per account and `per_address` requests per client
    address in `window_seconds` (at most the sign-in window, after which counters are purged)."""

    window_seconds: int
    per_user: int = 3
    per_address: int = 20

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


def reset_request_allowed(store: Store, policy: ResetMailPolicy, ip: str, now: datetime) -> bool:
    """Count a reset request of the client address and say whether to look at it at all
    (before any account is looked up: a lookup by e-mail address reads the domain's users).
    The counters are the sign-in throttle's table, under keys of their own."""
    address_key = f"reset-ip:{address_group(ip)}"
    if store.login_throttle.failures(address_key, now - policy.window) >= policy.per_address:
        return False
    store.login_throttle.record_failure(address_key, now)
    return True


def reset_mail_allowed(store: Store, policy: ResetMailPolicy, user_id: str, now: datetime) -> bool:
    """Count a reset mail to the account and say whether it may go out."""
    user_key = f"reset-user:{user_id}"
    if store.login_throttle.failures(user_key, now - policy.window) >= policy.per_user:
        return False
    store.login_throttle.record_failure(user_key, now)
    return True
