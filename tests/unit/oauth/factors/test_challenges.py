"""The signed WebAuthn ceremony state: round trip, expiry, binding to purpose, subject and key,
and tampering or malformed input (each a `ChallengeError`, never another exception)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tessera.oauth.factors.challenges import (
    CHALLENGE_BYTES,
    ChallengeError,
    issue,
    open_state,
)

KEY = b"s" * 32
NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def test_round_trip_returns_the_challenge() -> None:
    challenge, state = issue(KEY, "register", "session-a", NOW)
    assert len(challenge) == CHALLENGE_BYTES
    assert state.isascii() and len(state) < 200
    assert open_state(KEY, state, "register", "session-a", NOW + timedelta(seconds=299)) == challenge


def test_each_issue_is_a_new_random_challenge() -> None:
    challenges = {issue(KEY, "register", "s", NOW)[0] for _ in range(50)}
    assert len(challenges) == 50


def test_expiry() -> None:
    _, state = issue(KEY, "signin", "browser-1", NOW, ttl=60)
    open_state(KEY, state, "signin", "browser-1", NOW + timedelta(seconds=59))
    for later in (60, 61, 3600):
        with pytest.raises(ChallengeError, match="expired"):
            open_state(KEY, state, "signin", "browser-1", NOW + timedelta(seconds=later))


@pytest.mark.parametrize(
    ("key", "purpose", "subject"),
    [
        (KEY, "signin", "session-a"),  # another purpose
        (KEY, "register", "session-b"),  # another browser or session
        (KEY, "register", "session-a "),
        (b"t" * 32, "register", "session-a"),  # another key (another domain)
    ],
)
def test_bound_to_purpose_subject_and_key(key: bytes, purpose: str, subject: str) -> None:
    _, state = issue(KEY, "register", "session-a", NOW)
    with pytest.raises(ChallengeError, match="not valid here"):
        open_state(key, state, purpose, subject, NOW)


def test_fields_cannot_be_shifted_between_purpose_and_subject() -> None:
    _, state = issue(KEY, "a|b", "c", NOW)
    with pytest.raises(ChallengeError):
        open_state(KEY, state, "a", "b|c", NOW)


def _tampered(state: str, index: int) -> str:
    parts = state.split(".")
    text = parts[index]
    parts[index] = ("B" if text[0] == "A" else "A") + text[1:]
    return ".".join(parts)


@pytest.mark.parametrize("index", [1, 3])
def test_tampered_challenge_or_mac_is_refused(index: int) -> None:
    _, state = issue(KEY, "register", "s", NOW)
    with pytest.raises(ChallengeError, match="not valid here"):
        open_state(KEY, _tampered(state, index), "register", "s", NOW)


def test_an_extended_expiry_is_refused() -> None:
    _, state = issue(KEY, "register", "s", NOW, ttl=60)
    version, challenge, expires, mac = state.split(".")
    extended = f"{version}.{challenge}.{int(expires) + 3600}.{mac}"
    with pytest.raises(ChallengeError, match="not valid here"):
        open_state(KEY, extended, "register", "s", NOW + timedelta(seconds=120))


@pytest.mark.parametrize(
    "state",
    [
        "",
        "v1",
        "v1...",
        "v2.AAAA.1.AAAA",
        "v1.AAAA.1765000000.AAAA",
        "v1." + "A" * 43 + ".-5." + "A" * 43,
        "v1." + "A" * 43 + ".1e9." + "A" * 43,
        "v1." + "A" * 43 + ".1765000000." + "A" * 43 + ".extra",
        "v1." + "é" * 43 + ".1765000000." + "A" * 43,
        "v1." + "A" * 43 + "." + "9" * 100_000 + "." + "A" * 43,
    ],
)
def test_malformed_states_are_refused(state: str) -> None:
    with pytest.raises(ChallengeError) as caught:
        open_state(KEY, state, "register", "s", NOW)
    assert caught.value.message


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        issue(b"", "register", "s", NOW)
    with pytest.raises(ValueError):
        issue(KEY, "register", "s", NOW, ttl=0)
    with pytest.raises(ValueError):
        issue(KEY, "register", "s", NOW, ttl=86400)
