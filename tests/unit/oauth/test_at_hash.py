"""`at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the access token, the hash of
the ID token's alg — for our own ID tokens and for checking an upstream provider's."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tessera.oauth.client_assertion import ASYMMETRIC_ALGS
from tessera.shared.jwt_parts import at_hash

TOKEN = "jHkWEdUXMU1BwAsC4vtUsZwnNc5BLYRX"


def left_half(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("alg", "hash_name"),
    [("RS256", "sha256"), ("ES256", "sha256"), ("PS384", "sha384"), ("ES512", "sha512"),
     ("EdDSA", "sha512")],
)  # fmt: skip
def test_the_hash_follows_the_alg(alg: str, hash_name: str) -> None:
    expected = left_half(hashlib.new(hash_name, TOKEN.encode()).digest())
    assert at_hash(TOKEN, alg) == expected
    assert len(at_hash(TOKEN, alg)) == {"sha256": 22, "sha384": 32, "sha512": 43}[hash_name]


def test_every_alg_an_upstream_may_sign_with_has_a_hash() -> None:
    for alg in ASYMMETRIC_ALGS:
        assert at_hash(TOKEN, alg)


def test_an_alg_without_a_hash_is_an_error() -> None:
    with pytest.raises(ValueError, match="no at_hash"):
        at_hash(TOKEN, "none")
