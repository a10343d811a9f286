"""Signing keys: ACTIVE signs, NEXT is published before it signs, RETIRED stays published.

Issue 2, item 5; docs/architecture.md ("Decisions"). RFC 7517 (JWK Set), RFC 9068 (`typ: at+jwt`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

from tessera.domain.model import KeyState, SigningKey
from tessera.oauth.keyring import MAX_TOKEN_LIFETIME, SUPPORTED_ALGS, KeyRing, KeyRingError
from tessera.store.memory import MemoryStore
from tessera.store.protocols import KeyStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLAIMS = {"iss": "https://id.example.test", "sub": "u1", "aud": "https://api.example.test"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def keys() -> KeyStore:
    return MemoryStore().keys


@pytest.fixture
def ring(keys: KeyStore, kek: bytes, clock: Clock) -> KeyRing:
    ring = KeyRing(keys, kek, clock)
    ring.ensure()
    return ring


def states(store: KeyStore, alg: str) -> dict[KeyState, list[str]]:
    found: dict[KeyState, list[str]] = {state: [] for state in KeyState}
    for key in store.list():
        if key.alg == alg:
            found[key.state].append(key.kid)
    return found


def the(store: KeyStore, alg: str, state: KeyState) -> SigningKey:
    (key,) = [k for k in store.list() if k.alg == alg and k.state is state]
    return key


def published(ring: KeyRing) -> set[str]:
    return {k["kid"] for k in ring.jwks()["keys"]}


def verify(token: str, jwks: dict[str, Any], alg: str = "ES256") -> jwt.Token:
    return jwt.decode(
        token, KeySet.import_key_set(cast(KeySetSerialization, jwks)), algorithms=[alg]
    )


# --- ensure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_ensure_creates_an_active_and_a_next_key_per_algorithm(
    keys: KeyStore, kek: bytes, clock: Clock, alg: str
) -> None:
    created = KeyRing(keys, kek, clock).ensure()
    assert len(created) == 2 * len(SUPPORTED_ALGS)
    found = states(keys, alg)
    assert (len(found[KeyState.ACTIVE]), len(found[KeyState.NEXT])) == (1, 1)
    assert found[KeyState.RETIRED] == []


def test_ensure_creates_es256_and_rs256() -> None:
    assert SUPPORTED_ALGS == ("ES256", "RS256")


def test_ensure_is_idempotent(ring: KeyRing, keys: KeyStore) -> None:
    before = {k.kid for k in keys.list()}
    assert ring.ensure() == []
    assert {k.kid for k in keys.list()} == before


def test_ensure_on_a_second_ring_over_the_same_store_creates_nothing(
    ring: KeyRing, keys: KeyStore, kek: bytes, clock: Clock
) -> None:
    assert KeyRing(keys, kek, clock).ensure() == []
    assert len(keys.list()) == 4


def test_an_active_key_records_when_it_started_signing(ring: KeyRing, keys: KeyStore) -> None:
    assert the(keys, "ES256", KeyState.ACTIVE).activated_at == T0
    assert the(keys, "ES256", KeyState.NEXT).activated_at is None


# --- the JWKS ----------------------------------------------------------------------------------


def test_jwks_publishes_active_and_next_keys_of_both_algorithms(
    ring: KeyRing, keys: KeyStore
) -> None:
    assert published(ring) == {k.kid for k in keys.list()}
    assert sorted(k["alg"] for k in ring.jwks()["keys"]) == ["ES256", "ES256", "RS256", "RS256"]


def test_jwks_has_no_private_members(ring: KeyRing) -> None:
    for key in ring.jwks()["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"
        assert key["kid"] and key["alg"] in SUPPORTED_ALGS


def test_stored_public_jwks_have_no_private_members(ring: KeyRing, keys: KeyStore) -> None:
    for key in keys.list():
        assert not PRIVATE_MEMBERS & set(key.public_jwk)


def test_jwks_is_a_valid_key_set(ring: KeyRing) -> None:
    assert len(KeySet.import_key_set(cast(KeySetSerialization, ring.jwks())).keys) == 4


# --- signing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_a_signed_token_verifies_with_the_public_jwks(
    ring: KeyRing, keys: KeyStore, alg: str
) -> None:
    token = ring.sign(alg, CLAIMS, typ="at+jwt")
    decoded = verify(token, ring.jwks(), alg)
    assert decoded.claims == CLAIMS
    assert decoded.header["alg"] == alg
    assert decoded.header["kid"] == the(keys, alg, KeyState.ACTIVE).kid
    assert decoded.header["typ"] == "at+jwt"


def test_the_default_typ_is_jwt(ring: KeyRing) -> None:
    assert verify(ring.sign("ES256", CLAIMS), ring.jwks()).header["typ"] == "JWT"


def test_signing_with_an_unsupported_algorithm_fails(ring: KeyRing) -> None:
    with pytest.raises(KeyRingError, match="no active HS256"):
        ring.sign("HS256", CLAIMS)


def test_the_next_key_does_not_sign(ring: KeyRing, keys: KeyStore) -> None:
    next_kid = the(keys, "ES256", KeyState.NEXT).kid
    for _ in range(3):
        assert verify(ring.sign("ES256", CLAIMS), ring.jwks()).header["kid"] != next_kid


# --- rotation ----------------------------------------------------------------------------------


def test_rotation_promotes_the_previously_published_next_key(ring: KeyRing, keys: KeyStore) -> None:
    next_kid = the(keys, "ES256", KeyState.NEXT).kid
    assert next_kid in published(ring)  # published before it signs
    active, _ = ring.rotate("ES256")
    assert active.kid == next_kid
    assert the(keys, "ES256", KeyState.ACTIVE).kid == next_kid
    assert verify(ring.sign("ES256", CLAIMS), ring.jwks()).header["kid"] == next_kid


def test_a_resource_server_with_the_pre_rotation_jwks_verifies_new_tokens(ring: KeyRing) -> None:
    jwks_before = ring.jwks()
    ring.rotate("ES256")
    verify(ring.sign("ES256", CLAIMS), jwks_before)


def test_rotation_retires_the_old_active_key_but_keeps_it_published(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    old_kid = the(keys, "ES256", KeyState.ACTIVE).kid
    old_token = ring.sign("ES256", CLAIMS)
    clock.advance(timedelta(minutes=5))
    ring.rotate("ES256")
    retired = the(keys, "ES256", KeyState.RETIRED)
    assert retired.kid == old_kid
    assert retired.retire_after == clock.now + MAX_TOKEN_LIFETIME
    assert old_kid in published(ring)
    verify(old_token, ring.jwks())  # tokens it signed still verify


def test_rotation_publishes_a_new_next_key(ring: KeyRing, keys: KeyStore) -> None:
    before = {k.kid for k in keys.list()}
    _, new_next = ring.rotate("ES256")
    assert new_next.kid not in before
    assert new_next.state is KeyState.NEXT
    assert the(keys, "ES256", KeyState.NEXT).kid == new_next.kid
    assert new_next.kid in published(ring)


def test_rotation_leaves_one_active_key(ring: KeyRing, keys: KeyStore) -> None:
    ring.rotate("ES256")
    ring.rotate("ES256")
    found = states(keys, "ES256")
    assert (len(found[KeyState.ACTIVE]), len(found[KeyState.NEXT])) == (1, 1)
    assert len(found[KeyState.RETIRED]) == 2


def test_rotating_one_algorithm_leaves_the_other_alone(ring: KeyRing, keys: KeyStore) -> None:
    before = states(keys, "RS256")
    ring.rotate("ES256")
    assert states(keys, "RS256") == before


def test_rotating_an_unsupported_algorithm_fails_and_writes_nothing(
    ring: KeyRing, keys: KeyStore
) -> None:
    before = keys.list()
    with pytest.raises(KeyRingError, match="unsupported signing algorithm"):
        ring.rotate("HS256")
    assert keys.list() == before


def test_rotation_without_a_published_next_key_still_leaves_a_signing_key(
    keys: KeyStore, kek: bytes, clock: Clock
) -> None:
    ring = KeyRing(keys, kek, clock)
    ring.ensure()
    keys.delete(the(keys, "ES256", KeyState.NEXT).kid)
    active, new_next = ring.rotate("ES256")
    assert the(keys, "ES256", KeyState.ACTIVE).kid == active.kid
    assert the(keys, "ES256", KeyState.NEXT).kid == new_next.kid
    verify(ring.sign("ES256", CLAIMS), ring.jwks())


# --- purging retired keys ----------------------------------------------------------------------


def test_a_retired_key_stays_until_retire_after(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    old_kid = the(keys, "ES256", KeyState.ACTIVE).kid
    ring.rotate("ES256")
    clock.advance(MAX_TOKEN_LIFETIME - timedelta(seconds=1))
    assert ring.purge() == 0
    ring.reload()
    assert old_kid in {k.kid for k in keys.list()}
    assert old_kid in published(ring)


def test_purge_after_retire_after_drops_the_retired_key_from_store_and_jwks(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    old_kid = the(keys, "ES256", KeyState.ACTIVE).kid
    ring.rotate("ES256")
    clock.advance(MAX_TOKEN_LIFETIME)
    assert ring.purge() == 1
    assert old_kid not in {k.kid for k in keys.list()}
    ring.reload()  # purge() does not refresh the ring's cache; the periodic reload does
    assert old_kid not in published(ring)
    assert len(ring.jwks()["keys"]) == 4  # active and next of both algorithms remain


def test_an_expired_retired_key_leaves_the_jwks_even_before_purge(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    old_kid = the(keys, "ES256", KeyState.ACTIVE).kid
    ring.rotate("ES256")
    clock.advance(MAX_TOKEN_LIFETIME)
    ring.reload()
    assert old_kid not in published(ring)


def test_rotation_purges_keys_past_retire_after(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    first_kid = the(keys, "ES256", KeyState.ACTIVE).kid
    ring.rotate("ES256")
    clock.advance(MAX_TOKEN_LIFETIME + timedelta(seconds=1))
    ring.rotate("ES256")
    assert first_kid not in {k.kid for k in keys.list()}
    assert len(states(keys, "ES256")[KeyState.RETIRED]) == 1


# --- encryption at rest ------------------------------------------------------------------------


def test_a_ring_with_another_encryption_key_cannot_sign(
    ring: KeyRing, keys: KeyStore, clock: Clock
) -> None:
    stranger = KeyRing(keys, os.urandom(32), clock)
    with pytest.raises(KeyRingError, match="TESSERA_SECRET_KEY"):
        stranger.sign("ES256", CLAIMS)


def test_the_stored_private_key_is_not_the_pem(ring: KeyRing, keys: KeyStore) -> None:
    for key in keys.list():
        sealed = key.private_key_enc
        assert b"PRIVATE KEY" not in sealed
        assert b"-----BEGIN" not in sealed
        assert len(sealed) > 12 + 16  # nonce, ciphertext, tag


def test_the_sealed_key_is_bound_to_its_kid(ring: KeyRing, keys: KeyStore, kek: bytes) -> None:
    # Swapping the sealed private keys of two rows must not let one key pose as the other.
    active = the(keys, "ES256", KeyState.ACTIVE)
    upcoming = the(keys, "ES256", KeyState.NEXT)
    swapped = MemoryStore().keys
    swapped.add(
        SigningKey(
            kid=active.kid,
            alg="ES256",
            private_key_enc=upcoming.private_key_enc,
            public_jwk=active.public_jwk,
            state=KeyState.ACTIVE,
            created_at=T0,
            activated_at=T0,
        )
    )
    with pytest.raises(KeyRingError, match="cannot decrypt"):
        KeyRing(swapped, kek, lambda: T0).sign("ES256", CLAIMS)
