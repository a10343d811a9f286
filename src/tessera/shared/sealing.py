"""Secrets at rest: AES-256-GCM (NIST SP 800-38D) under a key derived by HKDF-SHA256 (RFC 5869).

A sealed value is `nonce (12 bytes) || ciphertext || tag`; the associated data binds it to its
place (a key id, an integration's code and version), so a sealed value copied elsewhere does not
open. The identity domain seals its signing keys with it, the integration service its connection
secrets.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SealError", "Sealer", "derive_key"]

_NONCE = 12


class SealError(ValueError):
    """A sealed value that does not open: another key sealed it, or it was altered."""


def derive_key(material: bytes, info: bytes) -> bytes:
    """A 32-byte key for one purpose (`info`), RFC 5869 HKDF-SHA256 without salt."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, data: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE)  # random 96-bit nonces: SP 800-38D §8.2.2
        return nonce + self._aead.encrypt(nonce, data, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], associated)
        except (InvalidTag, ValueError):
            raise SealError("the sealed value does not open with this key") from None
