"""The one recoverable form of a client secret: sealed for `client_secret_jwt` apps.

A `client_secret_jwt` assertion is an HMAC keyed with the secret's octets (OIDC Core §9,
§16.19), so the server needs the secret itself, not only its keyed hash. Only those apps keep
it, sealed with AES-256-GCM under a key derived from the domain's client-secret key and bound
to the client id (docs/client-authentication.md); every other app's secret stays unrecoverable.
"""

from __future__ import annotations

from tessera.shared.sealing import Sealer, SealError, derive_key

__all__ = ["open_secret", "seal_secret"]

_PURPOSE = b"tessera client_secret_jwt secrets"


def _sealer(pepper: bytes) -> Sealer:
    return Sealer(derive_key(pepper, _PURPOSE))


def seal_secret(pepper: bytes, client_id: str, secret: str) -> bytes:
    return _sealer(pepper).seal(secret.encode("utf-8"), client_id.encode("utf-8"))


def open_secret(pepper: bytes, client_id: str, sealed: bytes) -> bytes | None:
    """The secret's octets; None when the sealed value was made for another app or key."""
    try:
        return _sealer(pepper).open(sealed, client_id.encode("utf-8"))
    except SealError:
        return None
