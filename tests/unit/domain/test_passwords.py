"""Passwords: argon2id at OWASP's parameters, constant-work verification, and the policy.

OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError

from tessera.domain import passwords
from tessera.domain.passwords import (
    MIN_PASSWORD_LENGTH,
    WeakPassword,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)

GOOD = "correct horse battery staple"


@pytest.fixture(scope="module")
def good_hash() -> str:
    return hash_password(GOOD)


# --- hashing -----------------------------------------------------------------------------------


def test_hash_is_argon2id_at_owasp_parameters(good_hash: str) -> None:
    assert good_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hash_is_salted(good_hash: str) -> None:
    assert hash_password(GOOD) != good_hash


def test_hash_does_not_contain_the_password(good_hash: str) -> None:
    assert GOOD not in good_hash


def test_verify_accepts_the_right_password(good_hash: str) -> None:
    assert verify_password(good_hash, GOOD) is True


def test_verify_refuses_a_wrong_password(good_hash: str) -> None:
    assert verify_password(good_hash, GOOD + "!") is False
    assert verify_password(good_hash, GOOD.upper()) is False
    assert verify_password(good_hash, "") is False


def test_verify_without_a_hash_is_false() -> None:
    # An unknown user: the same work is done, and the answer is always no.
    assert verify_password(None, GOOD) is False
    assert verify_password(None, "tessera-dummy-password-for-timing") is False


def test_the_unknown_users_stand_in_hash_costs_what_a_real_one_does(good_hash: str) -> None:
    # An unknown user's check must take as long as a known one's: same type, version, params,
    # and a hash that really is verified (a malformed one would fail at once, unhashed).
    stand_in = extract_parameters(passwords._DUMMY_HASH)
    assert stand_in == extract_parameters(good_hash)
    assert passwords._DUMMY_HASH.split("$")[1] == good_hash.split("$")[1] == "argon2id"
    assert not needs_rehash(passwords._DUMMY_HASH)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(passwords._DUMMY_HASH, GOOD)


def test_nobody_signs_in_with_the_stand_ins_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # Were the stand-in's password known, it would still open no missing or empty account.
    monkeypatch.setattr(passwords, "_DUMMY_HASH", hash_password(GOOD))
    assert verify_password(None, GOOD) is False
    assert verify_password("", GOOD) is False


def test_verify_with_an_empty_hash_is_false_even_for_the_dummy_password() -> None:
    assert verify_password("", GOOD) is False
    assert verify_password("", "tessera-dummy-password-for-timing") is False


def test_verify_with_a_malformed_hash_is_false() -> None:
    assert verify_password("not-a-hash", GOOD) is False
    assert verify_password("$argon2id$v=19$m=19456,t=2,p=1$garbage", GOOD) is False


def test_verify_refuses_an_overlong_password_without_hashing_it(good_hash: str) -> None:
    assert verify_password(good_hash, "a" * 100_000) is False


def test_a_current_hash_needs_no_rehash(good_hash: str) -> None:
    assert needs_rehash(good_hash) is False


@pytest.mark.parametrize(
    ("time_cost", "memory_cost", "parallelism"), [(3, 19456, 1), (2, 65536, 1), (2, 19456, 4)]
)
def test_a_hash_with_other_parameters_needs_rehash(
    time_cost: int, memory_cost: int, parallelism: int
) -> None:
    old = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
    ).hash(GOOD)
    assert needs_rehash(old) is True
    assert verify_password(old, GOOD) is True  # it still verifies, then gets rehashed


# --- the policy --------------------------------------------------------------------------------


def weak(password: str, username: str = "") -> str:
    with pytest.raises(WeakPassword) as caught:
        check_policy(password, username=username)
    return str(caught.value)


@pytest.mark.parametrize("password", ["", " ", "\t\n"])
def test_policy_refuses_an_empty_password(password: str) -> None:
    assert weak(password) == "the password is empty"


def test_policy_refuses_a_short_password() -> None:
    assert "at least 12 characters" in weak("Xy7#pQ2!mZ")
    assert MIN_PASSWORD_LENGTH == 12


def test_policy_accepts_the_minimum_length() -> None:
    check_policy("Xy7#pQ2!mZ4k")


def test_policy_refuses_an_overlong_password() -> None:
    assert "at most 1024 characters" in weak("Xy7#pQ2!" * 200)


@pytest.mark.parametrize(
    "password",
    ["123456789012", "qwerty123456", "QWERTY123456", "1q2w3e4r5t6y", "abcdefghijkl"],
)
def test_policy_refuses_a_common_password(password: str) -> None:
    assert "too common" in weak(password)


@pytest.mark.parametrize(
    "password", ["password1234", "Password2026!", "Welcome12345", "!!changeme2026", "letmein-12345"]
)
def test_policy_refuses_a_common_word_padded_with_digits_or_symbols(password: str) -> None:
    assert "too common" in weak(password)


@pytest.mark.parametrize(
    "password", ["aaaaaaaaaaaa", "abababababab", "abcabcabcabc", "111111111111"]
)
def test_policy_refuses_a_repetitive_password(password: str) -> None:
    assert "too repetitive" in weak(password)


@pytest.mark.parametrize(
    "password", ["alice-in-wonderland", "My-ALICE-password-2026", "xxALICExx2026"]
)
def test_policy_refuses_a_password_containing_the_username(password: str) -> None:
    assert "must not contain the username" in weak(password, username="Alice")


def test_policy_accepts_a_long_varied_password() -> None:
    check_policy(GOOD, username="alice")
    check_policy("Wonderland-Demo-2026", username="alice")
