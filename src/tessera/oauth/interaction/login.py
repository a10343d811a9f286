"""Signing in and the browser session (OIDC Core §3.1.2.3, docs/security.md rules 3 and 29).

`sign_in` decides an attempt at the sign-in form and performs its writes through the store:
throttled attempts check no password; a failure is counted on every throttle key; a success
forgets this browser's own failures, upgrades an outdated password hash, ends the session the
browser had (no session fixation) and starts a new one. `current_session` reads the session a
cookie names, and refuses it once it ended or expired, or once the user was disabled or changed
the password after signing in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import BrowserSession, User
from tessera.domain.passwords import hash_password, needs_rehash, verify_password
from tessera.oauth.interaction import known_device
from tessera.oauth.interaction.throttle import (
    Reason,
    ThrottleKeys,
    ThrottlePolicy,
    decide,
    throttle_keys,
)
from tessera.shared.acr import with_methods
from tessera.store.protocols import Store

__all__ = [
    "Attempt",
    "Failed",
    "LoginPolicy",
    "Outcome",
    "SignedIn",
    "SignedInUser",
    "Throttled",
    "Timer",
    "authenticated_further",
    "check_password",
    "current_session",
    "end_session",
    "session_hash",
    "sign_in",
    "sign_in_verified",
    "without_reauthentication",
]

_T = TypeVar("_T")
_MAX_SESSION_ID = 128


class Timer(Protocol):
    """Runs a password hash or verification (the web side counts its CPU time)."""

    def __call__(self, work: Callable[[], _T], /) -> _T: ...


def _untimed(work: Callable[[], _T], /) -> _T:
    return work()


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    throttle: ThrottlePolicy
    session_ttl_seconds: int
    device_key: bytes  # the known-device cookie's MAC key

    @property
    def device_cookie_seconds(self) -> int:
        return int(known_device.KNOWN_DEVICE_TTL.total_seconds())


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the sign-in form and the browser's cookies bring."""

    username: str
    password: str
    ip: str
    device_cookie: str | None = None  # the known-device cookie
    session_cookie: str | None = None  # the session the browser had, ended on success


@dataclass(frozen=True, slots=True)
class Throttled:
    """Refused without checking the password (RFC 6585 §4: 429 and Retry-After)."""

    retry_after: int
    reason: Reason | None


@dataclass(frozen=True, slots=True)
class Failed:
    """Wrong password, unknown or disabled user: one answer for all (the failure is counted)."""

    user: User | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    session: BrowserSession
    raw_session_id: str  # the session cookie's value; only its hash is stored
    device_cookie: str  # the renewed known-device cookie
    rehashed: bool  # the password hash was upgraded to the current parameters


Outcome = Throttled | Failed | SignedIn


@dataclass(frozen=True, slots=True)
class SignedInUser:
    session: BrowserSession
    user: User


def session_hash(raw: str | None) -> str | None:
    """The stored id of the session a cookie names; None for an absent or oversized cookie."""
    if not raw or len(raw) > _MAX_SESSION_ID:
        return None
    return sha256_b64(raw)


def current_session(store: Store, raw: str | None, now: datetime) -> SignedInUser | None:
    """The session cookie's session and user, if the session still stands. Without a cookie
    this reads nothing (the authorization endpoint's fast path relies on it)."""
    id_hash = session_hash(raw)
    if id_hash is None:
        return None
    session = store.sessions.get(id_hash)
    if session is None or session.ended_at is not None or session.expires_at <= now:
        return None
    user = store.users.get(session.user_id)
    if user is None or not user.active or user.password_changed_at > session.auth_time:
        return None
    return SignedInUser(session, user)


def end_session(store: Store, raw: str | None, now: datetime) -> BrowserSession | None:
    """End the session a cookie names; the session as it was (None if there was none)."""
    id_hash = session_hash(raw)
    if id_hash is None:
        return None
    session = store.sessions.get(id_hash)
    store.sessions.end(id_hash, now)
    return session


def check_password(
    store: Store,
    throttle: ThrottlePolicy,
    keys: ThrottleKeys,
    user: User | None,
    password: str,
    now: datetime,
    timed: Timer = _untimed,
) -> Throttled | bool:
    """The throttled password check of a sign-in (or of a change that asks for the current
    password): `Throttled` unchecked during a wait (guessing stays bounded); False for a wrong
    password or an unknown or disabled user, counted on every key; True, forgetting this
    browser's own failures."""
    recent = store.login_throttle.recent(keys.checked(), now - throttle.window)
    verdict = decide(keys, recent, now, throttle)
    if not verdict.allowed:
        return Throttled(verdict.retry_after, verdict.reason)
    stored = user.password_hash if user else None
    ok = timed(lambda: verify_password(stored, password))
    if not ok or user is None or not user.active:
        for key in keys.recorded():
            store.login_throttle.record_failure(key, now)
        return False
    if verdict.own_failures and keys.own:  # a write only when there is something to forget
        store.login_throttle.clear(keys.own)
    return True


def sign_in(
    store: Store, policy: LoginPolicy, attempt: Attempt, now: datetime, timed: Timer = _untimed
) -> Outcome:
    """Decide a sign-in attempt and write what it changes (docs/security.md rule 29)."""
    user = store.users.get_by_username(attempt.username) if attempt.username else None
    device = known_device.read(
        policy.device_key, attempt.device_cookie, user.id if user else None, now
    )
    keys = throttle_keys(attempt.username, attempt.ip, device)
    checked = check_password(store, policy.throttle, keys, user, attempt.password, now, timed)
    if isinstance(checked, Throttled):
        return checked
    if not checked or user is None:
        return Failed(user)
    rehashed = needs_rehash(user.password_hash)
    if rehashed:
        new_hash = timed(lambda: hash_password(attempt.password))
        user = replace(user, password_hash=new_hash)
        store.users.update(user)
    session, raw = _start_session(store, policy, attempt.session_cookie, user, ("pwd",), now)
    cookie = known_device.issue(policy.device_key, user.id, now, device)
    return SignedIn(user, session, raw, cookie, rehashed)


def sign_in_verified(
    store: Store,
    policy: LoginPolicy,
    user: User,
    methods: tuple[str, ...],
    cookies: Attempt,
    now: datetime,
    *,
    upstream_provider: str | None = None,
    auth_time: datetime | None = None,
) -> SignedIn | Failed:
    """A sign-in whose methods were verified elsewhere: a passkey alone (W3C WebAuthn §7.2),
    the methods this browser proved before a password change, or an upstream OpenID provider's
    ID token (OIDC Core §3.1.3.7; methods `("fed",)`, `upstream_provider` its id, kept on the
    session, and `auth_time` when the provider authenticated the user: docs/federation.md). A
    new session with them (authenticated at `auth_time`, else now), unless the user was
    disabled."""
    if not user.active:
        return Failed(user)
    device = known_device.read(policy.device_key, cookies.device_cookie, user.id, now)
    amr = with_methods((), *methods)
    if auth_time is not None:
        # Not before the account's creation or last password change (its cut-off):
        # `current_session` takes an older session for one that was revoked.
        auth_time = min(max(auth_time, user.password_changed_at), now)
    session, raw = _start_session(
        store, policy, cookies.session_cookie, user, amr, now, upstream_provider, auth_time
    )
    cookie = known_device.issue(policy.device_key, user.id, now, device)
    return SignedIn(user, session, raw, cookie, rehashed=False)


def _start_session(
    store: Store,
    policy: LoginPolicy,
    session_cookie: str | None,
    user: User,
    amr: tuple[str, ...],
    now: datetime,
    upstream_provider: str | None = None,
    auth_time: datetime | None = None,
) -> tuple[BrowserSession, str]:
    raw = new_token(32)
    session = BrowserSession(
        id_hash=sha256_b64(raw),
        user_id=user.id,
        auth_time=now if auth_time is None else auth_time,
        expires_at=now + timedelta(seconds=policy.session_ttl_seconds),
        csrf_secret=new_token(16),
        amr=amr,
        upstream_provider=upstream_provider,
    )
    old = session_hash(session_cookie)
    if old is not None:
        store.sessions.end(old, now)  # no session fixation
    store.sessions.add(session)
    return session, raw


def authenticated_further(
    store: Store, current: SignedInUser, methods: tuple[str, ...], now: datetime
) -> SignedInUser | None:
    """The session after a second factor: its methods gain `methods` and its `auth_time`
    moves to now (OIDC Core §2: the time of the last authentication). None when the session
    ended meanwhile."""
    amr = with_methods(current.session.amr, *methods)
    if not store.sessions.authenticated(current.session.id_hash, amr, now, now):
        return None
    return SignedInUser(replace(current.session, amr=amr, auth_time=now), current.user)


def without_reauthentication(params: Mapping[str, str]) -> dict[str, str]:
    """The authorization request to resume after a sign-in: without `max_age` and
    `prompt=login` (OIDC Core §3.1.2.1), which asked for the sign-in and would ask again."""
    again = {k: v for k, v in params.items() if k != "max_age"}
    if "prompt" in again:
        rest = " ".join(p for p in again.pop("prompt").split() if p != "login")
        if rest:
            again["prompt"] = rest
    return again
