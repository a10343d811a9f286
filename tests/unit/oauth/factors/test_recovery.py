"""Recovery codes: shape and entropy, distinctness, forgiving reading, keyed hashing."""

from __future__ import annotations

import math
import re

import pytest

from tessera.oauth.factors import recovery

KEY = b"k" * 32
SHAPE = re.compile(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}")


def test_ten_distinct_codes_of_the_documented_shape_by_default() -> None:
    codes = recovery.new_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(SHAPE.fullmatch(code) for code in codes)


def test_codes_carry_at_least_60_bits() -> None:
    assert len(set(recovery.ALPHABET)) == len(recovery.ALPHABET)
    assert recovery.CODE_LENGTH * math.log2(len(recovery.ALPHABET)) >= 60
    # No look-alikes in what we print: they are read as the digits they resemble.
    assert not set("ilou") & set(recovery.ALPHABET)


def test_codes_are_random_across_calls() -> None:
    many = [code for _ in range(100) for code in recovery.new_codes(10)]
    assert len(set(many)) == 1000
    # Every character of the alphabet turns up (nothing missing from the draw).
    assert set("".join(many).replace("-", "")) == set(recovery.ALPHABET)


@pytest.mark.parametrize("n", [0, -1, 101])
def test_a_silly_count_is_refused(n: int) -> None:
    with pytest.raises(ValueError):
        recovery.new_codes(n)


def test_normalize_ignores_case_spaces_and_dashes_and_reads_look_alikes() -> None:
    assert recovery.normalize("abcd-ef01-2345") == "abcdef012345"
    assert recovery.normalize(" ABCD EF01 2345 ") == "abcdef012345"
    assert recovery.normalize("abcd--ef01-\t2345") == "abcdef012345"
    assert recovery.normalize("abcd-efOI-2345") == "abcdef012345"  # O -> 0, I -> 1
    assert recovery.normalize("abcd-ef0l-2345") == "abcdef012345"  # l -> 1


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abcd-ef01-234",  # too short
        "abcd-ef01-23456",  # too long
        "abcd-ef01-234u",  # u is not in the alphabet
        "abcd-ef01-234!",
        "abcd-ef01-2345" + " " * 100,  # over the input limit
        "ａbcd-ef01-2345",  # full-width letter
        "x" * 1_000_000,
    ],
)
def test_normalize_gives_empty_for_what_cannot_be_a_code(typed: str) -> None:
    assert recovery.normalize(typed) == ""


def test_code_hash_is_keyed_and_stable_under_normalisation() -> None:
    code = recovery.new_codes(1)[0]
    stored = recovery.code_hash(KEY, code)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", stored)
    assert recovery.code_hash(KEY, code.upper().replace("-", " ")) == stored
    assert recovery.code_hash(b"another key" * 3, code) != stored
    others = recovery.new_codes(10)
    assert stored not in {recovery.code_hash(KEY, other) for other in others if other != code}


def test_code_hash_refuses_what_is_not_a_code_and_an_empty_key() -> None:
    with pytest.raises(ValueError):
        recovery.code_hash(KEY, "123456")
    with pytest.raises(ValueError):
        recovery.code_hash(b"", recovery.new_codes(1)[0])
