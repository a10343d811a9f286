"""Signing in and the browser session (docs/security.md rules 3 and 29), on the memory store with
the injected clock: failures counted, progressive delays that end, known devices, disabled
users, rehashing, no session fixation, and the end of a session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher

from tessera.domain.hashing import sha256_b64
from tessera.domain.passwords import needs_rehash, verify_password
from tessera.oauth.interaction.csrf import browser_id, csrf_token, csrf_valid
from tessera.oauth.interaction.login import (
    Attempt,
    Failed,
    LoginPolicy,
    Outcome,
    SignedIn,
    Throttled,
    current_session,
    end_session,
    session_hash,
    sign_in,
    without_reauthentication,
)
from tessera.oauth.interaction.throttle import ThrottlePolicy
from tests.unit.oauth.conftest import Core

_T = TypeVar("_T")
PASSWORD = "correct horse battery"
HOME = "198.51.100.7"
POLICY = LoginPolicy(
    throttle=ThrottlePolicy(
        window_seconds=900,
        free_per_pair=5,
        free_per_account=50,
        free_per_address=50,
        first_delay_seconds=30,
    ),
    session_ttl_seconds=3600,
    device_key=b"d" * 32,
)
# Lower account and address limits, for the tests that need to reach them (fewer hashes).
SMALL = replace(POLICY, throttle=replace(POLICY.throttle, free_per_account=10, free_per_address=10))


class CountingTimer:
    """The injected timer: counts the password hashes and verifications it runs."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, work: Callable[[], _T], /) -> _T:
        self.runs += 1
        return work()


def attempt(
    core: Core,
    password: str = PASSWORD,
    ip: str = HOME,
    username: str = "alice",
    policy: LoginPolicy = POLICY,
    **kw: Any,
) -> Outcome:
    return sign_in(core.store, policy, Attempt(username, password, ip, **kw), core.clock())


def signed_in(outcome: Outcome) -> SignedIn:
    assert isinstance(outcome, SignedIn), outcome
    return outcome


def failures(core: Core, key: str) -> int:
    return core.store.login_throttle.failures(key, core.clock() - POLICY.throttle.window)


def test_a_wrong_password_fails_and_counts_on_every_key(core: Core) -> None:
    alice = core.add_user()
    outcome = attempt(core, "wrong password")
    assert outcome == Failed(alice)
    for key in ("ip:198.51.100.7", "pair:alice|198.51.100.7", "acct:alice"):
        assert failures(core, key) == 1, key
    assert core.store.sessions.list_for_user(alice.id, core.clock()) == []


def test_an_unknown_user_fails_like_a_wrong_password_and_is_counted(core: Core) -> None:
    assert attempt(core, username="ghost") == Failed(None)
    assert failures(core, "pair:ghost|198.51.100.7") == 1


def test_a_disabled_user_with_the_right_password_fails_and_is_counted(core: Core) -> None:
    alice = core.add_user()
    core.store.users.update(replace(alice, disabled_at=core.clock()))
    outcome = attempt(core)
    assert isinstance(outcome, Failed) and outcome.user is not None
    assert failures(core, "acct:alice") == 1
    assert core.store.sessions.list_for_user(alice.id, core.clock()) == []


def test_delays_grow_with_failures_skip_the_password_and_end(core: Core) -> None:
    core.add_user()
    for _ in range(5):
        assert isinstance(attempt(core, "wrong password"), Failed)
    timer = CountingTimer()
    outcome = sign_in(core.store, POLICY, Attempt("alice", PASSWORD, HOME), core.clock(), timer)
    assert outcome == Throttled(30, "account")
    assert timer.runs == 0  # no password is checked during a wait
    core.clock.advance(29)
    assert attempt(core) == Throttled(1, "account")
    core.clock.advance(1)
    assert isinstance(attempt(core, "wrong again"), Failed)
    assert attempt(core) == Throttled(60, "account")  # doubled
    core.clock.advance(60)
    signed_in(attempt(core))


def test_failures_older_than_the_window_are_forgotten(core: Core) -> None:
    core.add_user()
    for _ in range(5):
        attempt(core, "wrong password")
    core.clock.advance(POLICY.throttle.window_seconds + 1)
    # Counted with the five before, a sixth failure would mean a wait of 60 s.
    assert isinstance(attempt(core, "wrong password"), Failed)
    signed_in(attempt(core))


def test_a_success_forgets_this_browsers_failures_only(core: Core) -> None:
    core.add_user()
    for _ in range(2):
        attempt(core, "wrong password")
    signed_in(attempt(core))
    assert failures(core, "pair:alice|198.51.100.7") == 0
    assert failures(core, "acct:alice") == 2  # the account's count stays complete
    assert failures(core, "ip:198.51.100.7") == 2


def test_a_known_device_keeps_signing_in_while_the_account_is_delayed(core: Core) -> None:
    core.add_user()
    device_cookie = signed_in(attempt(core, policy=SMALL)).device_cookie
    for i in range(2):  # a storm of wrong passwords from other addresses
        for _ in range(5):
            attempt(core, "wrong password", ip=f"203.0.113.{i}", policy=SMALL)
    fresh = attempt(core, ip="192.0.2.77", policy=SMALL)
    assert fresh == Throttled(30, "account")  # a fresh browser waits
    assert isinstance(attempt(core, policy=SMALL), Throttled)  # so does one without the cookie
    owner = attempt(core, device_cookie=device_cookie, policy=SMALL)
    renewed = signed_in(owner).device_cookie
    assert renewed.split(".")[0] == device_cookie.split(".")[0]  # the same device id
    # The cookie belongs to alice: it does nothing for another account.
    core.add_user("bob")
    for _ in range(5):
        attempt(core, "wrong password", username="bob")
    assert isinstance(attempt(core, username="bob", device_cookie=device_cookie), Throttled)


def test_a_known_device_is_still_held_by_its_addresss_limit(core: Core) -> None:
    core.add_user()
    device_cookie = signed_in(attempt(core, policy=SMALL)).device_cookie
    for i in range(10):  # one address spraying many accounts
        attempt(core, "wrong password", username=f"user{i}", policy=SMALL)
    outcome = attempt(core, device_cookie=device_cookie, policy=SMALL)
    assert outcome == Throttled(30, "address")


def test_an_outdated_hash_is_upgraded_at_sign_in(core: Core) -> None:
    alice = core.add_user()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    core.store.users.update(replace(alice, password_hash=weak))
    timer = CountingTimer()
    outcome = sign_in(core.store, POLICY, Attempt("alice", PASSWORD, HOME), core.clock(), timer)
    assert signed_in(outcome).rehashed and timer.runs == 2  # verify, then hash
    stored = core.store.users.get(alice.id)
    assert stored is not None and stored.password_hash != weak
    assert not needs_rehash(stored.password_hash) and verify_password(
        stored.password_hash, PASSWORD
    )
    assert signed_in(attempt(core)).rehashed is False


def test_a_sign_in_starts_a_session_and_ends_the_one_the_browser_had(core: Core) -> None:
    alice = core.add_user()
    first = signed_in(attempt(core))
    assert first.session.id_hash == sha256_b64(first.raw_session_id)  # only the hash is stored
    assert first.session.expires_at == core.clock() + timedelta(seconds=3600)
    core.clock.advance(5)
    second = signed_in(attempt(core, session_cookie=first.raw_session_id))
    old = core.store.sessions.get(first.session.id_hash)
    assert old is not None and old.ended_at == core.clock()  # no session fixation
    assert current_session(core.store, first.raw_session_id, core.clock()) is None
    found = current_session(core.store, second.raw_session_id, core.clock())
    assert found is not None and found.user.id == alice.id
    assert found.session.auth_time == core.clock()


def test_a_session_ends_at_its_expiry(core: Core) -> None:
    core.add_user()
    raw = signed_in(attempt(core)).raw_session_id
    core.clock.advance(3599)
    assert current_session(core.store, raw, core.clock()) is not None
    core.clock.advance(1)
    assert current_session(core.store, raw, core.clock()) is None


def test_a_password_change_or_disabling_after_sign_in_ends_the_session(core: Core) -> None:
    alice = core.add_user()
    raw = signed_in(attempt(core)).raw_session_id
    later = core.clock.advance(10)
    core.store.users.update(replace(alice, password_changed_at=later))
    assert current_session(core.store, raw, later) is None
    core.store.users.update(alice)
    assert current_session(core.store, raw, later) is not None
    core.store.users.update(replace(alice, disabled_at=later))
    assert current_session(core.store, raw, later) is None


def test_logging_out_ends_the_session(core: Core) -> None:
    core.add_user()
    raw = signed_in(attempt(core)).raw_session_id
    ended = end_session(core.store, raw, core.clock())
    assert ended is not None and ended.ended_at is None  # the session as it was
    assert current_session(core.store, raw, core.clock()) is None
    assert end_session(core.store, None, core.clock()) is None


def test_without_a_session_cookie_nothing_is_read(core: Core) -> None:
    unreadable: Any = object()  # any store access would raise
    assert current_session(unreadable, None, core.clock()) is None
    assert current_session(unreadable, "x" * 129, core.clock()) is None
    assert session_hash("x" * 129) is None and session_hash("") is None
    assert current_session(core.store, "no-such-session", core.clock()) is None


@pytest.mark.parametrize(
    ("params", "again"),
    [
        ({"client_id": "a", "prompt": "login", "max_age": "0"}, {"client_id": "a"}),
        ({"prompt": "login consent"}, {"prompt": "consent"}),
        ({"prompt": "consent", "state": "s"}, {"state": "s", "prompt": "consent"}),
        ({"scope": "openid"}, {"scope": "openid"}),
    ],
)
def test_after_sign_in_the_request_no_longer_asks_for_one(
    params: dict[str, str], again: dict[str, str]
) -> None:
    assert without_reauthentication(params) == again


# --- the sign-in form's CSRF token -------------------------------------------------------------


def test_the_login_csrf_token_is_bound_to_the_browser_id_cookie() -> None:
    bid, fresh = browser_id(None)
    assert fresh and len(bid) >= 16
    assert browser_id(bid) == (bid, False)
    assert browser_id("x" * 129)[1] is True  # an oversized cookie is replaced
    token = csrf_token(b"c" * 32, "login", bid)
    assert csrf_valid(b"c" * 32, "login", bid, token)
    assert not csrf_valid(b"c" * 32, "login", browser_id(None)[0], token)  # another browser
    assert not csrf_valid(b"c" * 32, "consent", bid, token)  # another form
    assert not csrf_valid(b"c" * 32, "login", None, token)
    assert not csrf_valid(b"c" * 32, "login", bid, None)
