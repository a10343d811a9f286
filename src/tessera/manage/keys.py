"""Signing-key rotation as an administrator asks for it (audited)."""

from __future__ import annotations

from tessera.domain.model import SigningKey
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput
from tessera.oauth.keyring import SUPPORTED_ALGS, KeyRing

__all__ = ["rotate_keys"]


def rotate_keys(keys: KeyRing, alg: str, actor: Actor) -> list[tuple[SigningKey, SigningKey]]:
    """Promote the published next key of `alg` (or of every algorithm for "all"), retire the
    active one and publish a new next key; return (active, next) per algorithm."""
    if alg != "all" and alg not in SUPPORTED_ALGS:
        raise InvalidInput(f"unknown algorithm {alg!r}: use {', '.join(SUPPORTED_ALGS)} or all")
    keys.ensure()
    algs = list(SUPPORTED_ALGS) if alg == "all" else [alg]
    rotated = [keys.rotate(a) for a in algs]
    actor.audit("admin.keys_rotated", algs=algs)
    return rotated
