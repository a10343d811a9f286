"""Connection secrets at rest: the stored form of a document seals each `invoke` step's Basic
password and OAuth client secret (AES-256-GCM, `tessera.shared.sealing`), bound to the
integration's code and version and the secret's place, so a sealed value copied into another
integration or step does not open. Views redact them anyway; only the runner sees them open.

    "password": "sealed:v1:<base64url(nonce || ciphertext || tag)>"
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from tessera.shared.sealing import Sealer, SealError

__all__ = ["PREFIX", "SealError", "open_document", "seal_document"]

PREFIX = "sealed:v1:"
_SECRET_FIELD = {
    "basic": "password",
    "oauth_client_credentials": "client_secret",
    "oauth_token_exchange": "client_secret",
}


def _associated(code: str, version: str, index: int, name: str) -> bytes:
    return f"{code}|{version} steps[{index}].auth.{name}".encode()


def _each_secret(data: dict[str, Any], change: Callable[[str, bytes], str]) -> dict[str, Any]:
    """A copy of the stored document with `change(value, associated data)` applied to each
    connection secret."""
    out = copy.deepcopy(data)
    code, version = str(out.get("code")), str(out.get("version"))
    for index, step in enumerate(out.get("steps") or []):
        auth = step.get("auth") if isinstance(step, dict) else None
        name = _SECRET_FIELD.get(str(auth.get("type"))) if isinstance(auth, dict) else None
        if auth is not None and name is not None and isinstance(auth.get(name), str):
            auth[name] = change(auth[name], _associated(code, version, index, name))
    return out


def seal_document(data: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """The stored form: every connection secret not yet sealed, sealed."""

    def seal(value: str, associated: bytes) -> str:
        if value.startswith(PREFIX):
            return value
        sealed = sealer.seal(value.encode("utf-8"), associated)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    return _each_secret(data, seal)


def open_document(data: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """The document with its secrets open; `SealError` when one does not open with this key."""

    def unseal(value: str, associated: bytes) -> str:
        if not value.startswith(PREFIX):
            return value  # written before secrets were sealed, and not migrated yet
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode("ascii"))
        except ValueError:
            raise SealError("a sealed connection secret is not base64url") from None
        return sealer.open(raw, associated).decode("utf-8")

    return _each_secret(data, unseal)
