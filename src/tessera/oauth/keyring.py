"""Signing keys: generation, encryption at rest, rotation, the JWKS (RFC 7517), and signing.

Each algorithm (ES256, RS256) has one ACTIVE key that signs, one NEXT key that is published
before it signs, and RETIRED keys that stay published until every token they signed has expired.
Rotation promotes NEXT to ACTIVE, retires the old ACTIVE and creates a new NEXT, so a resource
server that fetched the JWKS since the last rotation already knows the new signing key.
Private keys are stored AES-256-GCM encrypted under a key derived from TESSERA_SECRET_KEY, with
the kid as associated data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, KeySet, RSAKey

from tessera.domain.model import KeyState, SigningKey
from tessera.oauth.jws import Signer
from tessera.shared.sealing import Sealer
from tessera.store.protocols import KeyStore

__all__ = [
    "MAX_TOKEN_LIFETIME",
    "SUPPORTED_ALGS",
    "KeyRing",
    "KeyRingError",
    "first_keys",
    "new_signing_key",
]

SUPPORTED_ALGS = ("ES256", "RS256")
# A retired key stays published this long: longer than any token it can have signed.
MAX_TOKEN_LIFETIME = timedelta(seconds=86400 + 300)
_RELOAD_SECONDS = 15.0

_PrivateKey = ECKey | RSAKey


class KeyRingError(RuntimeError):
    """A key cannot be used (wrong key-encryption key, no active key)."""


def _generate(alg: str) -> _PrivateKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, auto_kid=True)
    raise KeyRingError(f"unsupported signing algorithm {alg}")


def new_signing_key(sealer: Sealer, alg: str, state: KeyState, now: datetime) -> SigningKey:
    """A new key pair of `alg`, its private half sealed with the kid as associated data."""
    private = _generate(alg)
    kid = private.kid
    assert kid is not None
    pem = private.as_pem(private=True)
    public = private.as_dict(private=False)
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    return SigningKey(
        kid=kid,
        alg=alg,
        private_key_enc=sealer.seal(pem, kid.encode("ascii")),
        public_jwk=dict(public),
        state=state,
        created_at=now,
        activated_at=now if state is KeyState.ACTIVE else None,
    )


def first_keys(encryption_key: bytes, now: datetime) -> list[SigningKey]:
    """A new domain's keys: an ACTIVE and a NEXT key of each supported algorithm."""
    sealer = Sealer(encryption_key)
    return [
        new_signing_key(sealer, alg, state, now)
        for alg in SUPPORTED_ALGS
        for state in (KeyState.ACTIVE, KeyState.NEXT)
    ]


class KeyRing:
    """The signing keys of one identity domain, cached in process and reloaded periodically."""

    def __init__(
        self, store: KeyStore, encryption_key: bytes, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._sealer = Sealer(encryption_key)
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._keys: list[SigningKey] = []
        self._private: dict[str, _PrivateKey] = {}
        self._signers: dict[str, Signer] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._keyset = KeySet([])

    # --- lifecycle --------------------------------------------------------------------------

    def ensure(self) -> list[SigningKey]:
        """Create an ACTIVE and a NEXT key for each algorithm that lacks them; return new keys."""
        now = self._clock()
        created: list[SigningKey] = []
        keys = self._store.list()
        for alg in SUPPORTED_ALGS:
            states = {k.state for k in keys if k.alg == alg}
            if KeyState.ACTIVE not in states:
                created.append(self._create(alg, KeyState.ACTIVE, now))
            if KeyState.NEXT not in states:
                created.append(self._create(alg, KeyState.NEXT, now))
        if created:
            self.reload()
        return created

    def rotate(self, alg: str) -> tuple[SigningKey, SigningKey]:
        """Promote NEXT to ACTIVE and retire the ACTIVE key; return (new active, new next)."""
        if alg not in SUPPORTED_ALGS:
            raise KeyRingError(f"unsupported signing algorithm {alg}; use one of {SUPPORTED_ALGS}")
        now = self._clock()
        keys = [k for k in self._store.list() if k.alg == alg]
        active = [k for k in keys if k.state is KeyState.ACTIVE]
        upcoming = [k for k in keys if k.state is KeyState.NEXT]
        changes: list[SigningKey] = [
            replace(k, state=KeyState.RETIRED, retire_after=now + MAX_TOKEN_LIFETIME)
            for k in active
        ]
        if upcoming:
            promoted = replace(upcoming[0], state=KeyState.ACTIVE, activated_at=now)
            changes.append(promoted)
            self._store.replace_states(changes)
        else:  # nothing was published in advance: the best we can do is start now
            self._store.replace_states(changes)
            promoted = self._create(alg, KeyState.ACTIVE, now)
        new_next = self._create(alg, KeyState.NEXT, now)
        self.purge()
        self.reload()
        return promoted, new_next

    def purge(self) -> int:
        """Delete retired keys whose tokens have all expired."""
        now = self._clock()
        gone = [
            k
            for k in self._store.list()
            if k.state is KeyState.RETIRED and k.retire_after is not None and k.retire_after <= now
        ]
        for key in gone:
            self._store.delete(key.kid)
        if gone:
            self.reload()
        return len(gone)

    def _create(self, alg: str, state: KeyState, now: datetime) -> SigningKey:
        key = new_signing_key(self._sealer, alg, state, now)
        self._store.add(key)
        return key

    # --- reading ----------------------------------------------------------------------------

    def reload(self) -> None:
        now = self._clock()
        keys = [
            k
            for k in self._store.list()
            if not (k.state is KeyState.RETIRED and k.retire_after and k.retire_after <= now)
        ]
        # A kid names one sealed key for good: a key already opened is not opened again.
        private: dict[str, _PrivateKey] = {
            key.kid: self._private.get(key.kid) or self._decrypt(key)
            for key in keys
            if key.state is KeyState.ACTIVE
        }
        with self._lock:
            self._keys = keys
            self._private = private
            self._jwks = {"keys": [k.public_jwk for k in keys]}
            self._keyset = KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
            self._loaded_at = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > _RELOAD_SECONDS:
            self.reload()

    def _decrypt(self, key: SigningKey) -> _PrivateKey:
        try:
            pem = self._sealer.open(key.private_key_enc, key.kid.encode("ascii"))
        except Exception:
            raise KeyRingError(
                f"cannot decrypt signing key {key.kid}: TESSERA_SECRET_KEY is not the key it "
                "was created with"
            ) from None
        # The key is authenticated by the seal (AES-GCM, with the kid as associated data), so
        # the slow consistency check of an RSA key (tens of ms) would only repeat ours.
        native = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
        loader = ECKey if key.alg == "ES256" else RSAKey
        return loader.import_key(native, {"kid": key.kid, "alg": key.alg})  # type: ignore[arg-type]

    def keys(self) -> list[SigningKey]:
        self._fresh()
        return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: NEXT, ACTIVE and unexpired RETIRED keys."""
        self._fresh()
        return self._jwks

    def verification_keys(self) -> KeySet:
        """The published public keys, for verifying our own tokens."""
        self._fresh()
        return self._keyset

    def public_keys(self) -> list[dict[str, Any]]:
        return list(self.jwks()["keys"])

    def sign(self, alg: str, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Sign `claims` as a JWS compact JWT with the ACTIVE key of `alg`."""
        self._fresh()
        with self._lock:
            found = next(
                (
                    (k.kid, self._private[k.kid])
                    for k in self._keys
                    if k.alg == alg and k.state is KeyState.ACTIVE and k.kid in self._private
                ),
                None,
            )
        if found is None:
            raise KeyRingError(f"no active {alg} signing key; run `tessera admin keys rotate`")
        kid, private = found
        signer = self._signers.get(kid)
        if signer is None:
            raw = private.private_key
            assert isinstance(raw, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
            signer = self._signers[kid] = Signer(kid, alg, raw)
        return signer.sign(claims, typ)
