"""PKCE, RFC 7636: S256 only, verifiers of 43 to 128 unreserved characters."""

from __future__ import annotations

import re

import pytest

from tessera.client.pkce import Pkce, new_verifier, s256_challenge


def test_s256_matches_the_rfc_7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_new_pair_is_s256_with_a_43_character_unreserved_verifier() -> None:
    pkce = Pkce.new()
    assert pkce.method == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", pkce.verifier)
    assert pkce.challenge == s256_challenge(pkce.verifier)
    assert "=" not in pkce.challenge


def test_verifiers_are_unique() -> None:
    assert len({new_verifier() for _ in range(200)}) == 200


@pytest.mark.parametrize("bad", ["short", "x" * 129, "a" * 42, "é" * 50, "a b" * 20])
def test_a_verifier_outside_the_grammar_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        s256_challenge(bad)


def test_longest_verifier_is_accepted() -> None:
    assert len(new_verifier(96)) == 128
    s256_challenge(new_verifier(96))
