"""Storage: small protocols per artifact (`protocols`), an in-memory reference (`memory`) and
the SQL implementation (`sql`)."""

from tessera.store.protocols import (
    Conflict,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    UnitOfWork,
)

__all__ = [
    "Conflict",
    "NotFound",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UnitOfWork",
]
