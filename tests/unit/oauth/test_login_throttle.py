"""Progressive sign-in delays (issue 12): never a lockout, bounded guessing, known devices kept
working, IPv6 grouped by /64. The store is the in-memory one; time is injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tessera.oauth.interaction import known_device
from tessera.oauth.interaction.throttle import (
    ThrottleKeys,
    ThrottlePolicy,
    Verdict,
    address_group,
    decide,
    throttle_keys,
)
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = ThrottlePolicy(
    window_seconds=900,
    free_per_pair=5,
    free_per_account=50,
    free_per_address=50,
    first_delay_seconds=30,
)
KEY = b"k" * 32


class Throttle:
    """The sign-in handler's use of the decision, on a memory store and a clock of our own."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.now = T0

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def check(self, keys: ThrottleKeys) -> Verdict:
        recent = self.store.login_throttle.recent(keys.checked(), self.now - POLICY.window)
        return decide(keys, recent, self.now, POLICY)

    def attempt(self, keys: ThrottleKeys, correct: bool = False) -> Verdict:
        """An attempt: refused during a wait, else a failure is recorded (or, when `correct`,
        the browser's own failures are forgotten)."""
        verdict = self.check(keys)
        if verdict.allowed:
            if correct:
                if verdict.own_failures and keys.own:
                    self.store.login_throttle.clear(keys.own)
            else:
                for key in keys.recorded():
                    self.store.login_throttle.record_failure(key, self.now)
        return verdict


def test_delays_start_after_the_free_failures_and_double_up_to_the_window() -> None:
    assert [POLICY.delay(n, 5) for n in range(4, 12)] == [0, 30, 60, 120, 240, 480, 900, 900]
    assert POLICY.delay(10**6, 5) == 900


def test_a_wrong_password_storm_never_locks_the_account_for_good() -> None:
    throttle = Throttle()
    attackers = [throttle_keys("alice", f"203.0.113.{i}") for i in range(10)]
    for _ in range(5):
        for keys in attackers:
            assert throttle.attempt(keys).allowed
    owner = throttle_keys("alice", "198.51.100.7")
    delayed = throttle.check(owner)
    assert not delayed.allowed and delayed.reason == "account"
    assert 0 < delayed.retry_after <= POLICY.window_seconds
    throttle.tick(delayed.retry_after)
    assert throttle.attempt(owner, correct=True).allowed


def test_the_password_is_not_checked_while_delayed_so_guessing_stays_bounded() -> None:
    throttle = Throttle()
    keys = throttle_keys("alice", "203.0.113.9")
    checked = 0
    for _ in range(3600):  # an hour of one guess a second
        if throttle.attempt(keys).allowed:
            checked += 1
        throttle.tick(1)
    # Per 900 s window at most the 5 free guesses and one after each of the waits of 30, 60,
    # 120, 240, 480 and 900 s (then the window has forgotten them).
    assert checked <= 4 * (5 + 6)
    assert throttle.store.login_throttle.failures("pair:alice|203.0.113.9", T0) == checked


def test_a_known_device_is_not_throttled_by_failures_elsewhere() -> None:
    throttle = Throttle()
    device = known_device.read(KEY, known_device.issue(KEY, "u-alice", T0), "u-alice", T0)
    for i in range(10):
        for _ in range(5):
            throttle.attempt(throttle_keys("alice", f"203.0.113.{i}"))
    assert not throttle.check(throttle_keys("alice", "198.51.100.7")).allowed
    own = throttle_keys("alice", "198.51.100.7", device)
    assert throttle.attempt(own, correct=True).allowed


def test_a_known_device_still_has_its_own_limit() -> None:
    throttle = Throttle()
    keys = throttle_keys("alice", "198.51.100.7", "d1")
    for _ in range(5):
        assert throttle.attempt(keys).allowed
    verdict = throttle.check(keys)
    assert not verdict.allowed and verdict.retry_after == 30
    # Another device of the same account is not held by this one's failures.
    assert throttle.check(throttle_keys("alice", "198.51.100.8", "d2")).allowed


def test_a_success_forgets_the_browsers_own_failures_and_writes_nothing_otherwise() -> None:
    throttle = Throttle()
    keys = throttle_keys("alice", "198.51.100.7")
    throttle.attempt(keys)
    verdict = throttle.attempt(keys, correct=True)
    assert verdict.own_failures == 1
    assert throttle.check(keys).own_failures == 0
    clean = throttle.check(throttle_keys("bob", "198.51.100.7"))
    assert clean.allowed and clean.own_failures == 0  # nothing to clear: no write


def test_one_address_spraying_many_accounts_is_delayed() -> None:
    throttle = Throttle()
    for i in range(50):
        assert throttle.attempt(throttle_keys(f"user{i}", "203.0.113.5")).allowed
    verdict = throttle.check(throttle_keys("bob", "203.0.113.5"))
    assert verdict.reason == "address" and verdict.retry_after == 30
    assert throttle.check(throttle_keys("bob", "203.0.113.6")).allowed


def test_ipv6_addresses_in_one_64_share_a_counter() -> None:
    throttle = Throttle()
    for i in range(5):
        throttle.attempt(throttle_keys("alice", f"2001:db8:1:2::{i + 1:x}"))
    assert not throttle.check(throttle_keys("alice", "2001:db8:1:2:ffff::1")).allowed
    assert throttle.check(throttle_keys("alice", "2001:db8:1:3::1")).allowed


@pytest.mark.parametrize(
    ("ip", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_address_groups(ip: str, group: str) -> None:
    assert address_group(ip) == group


def test_usernames_share_counters_case_insensitively() -> None:
    assert throttle_keys("Alice ", "203.0.113.7") == throttle_keys("alice", "203.0.113.7")
    assert throttle_keys("", "203.0.113.7").checked() == ["ip:203.0.113.7"]


# --- the known-device cookie -------------------------------------------------------------------


def test_known_device_cookie_round_trips_for_its_user_only_and_keeps_its_device_id() -> None:
    value = known_device.issue(KEY, "u-alice", T0)
    device = known_device.read(KEY, value, "u-alice", T0 + timedelta(days=1))
    assert device is not None
    assert len(value) < 100  # a short handle, nothing like a token
    assert known_device.read(KEY, value, "u-bob", T0) is None
    assert known_device.read(KEY, value, None, T0) is None
    renewed = known_device.issue(KEY, "u-alice", T0 + timedelta(days=1), device)
    assert known_device.read(KEY, renewed, "u-alice", T0 + timedelta(days=1)) == device
    assert renewed != value  # a later expiry


def test_a_forged_or_expired_known_device_cookie_is_ignored() -> None:
    value = known_device.issue(KEY, "u-alice", T0)
    dev, expires, mac = value.split(".")
    assert known_device.read(KEY, value, "u-alice", T0 + known_device.KNOWN_DEVICE_TTL) is None
    assert known_device.read(b"x" * 32, value, "u-alice", T0) is None
    assert known_device.read(KEY, f"{dev}.{int(expires) + 99}.{mac}", "u-alice", T0) is None
    assert known_device.read(KEY, f"other.{expires}.{mac}", "u-alice", T0) is None
    for junk in ("", "a.b", "a.²³.d", "é.1.d", "x" * 600, f"{value}.x"):
        assert known_device.read(KEY, junk, "u-alice", T0) is None
