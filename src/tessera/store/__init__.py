"""Storage: small protocols per artifact (`protocols`), an in-memory reference (`memory`) and
the SQL implementation (`sql`)."""

from tessera.store.protocols import (
    Conflict,
    NotFound,
    RotateOutcome,
    RotateResult,
    Store,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "Conflict",
    "NotFound",
    "RotateOutcome",
    "RotateResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
]
