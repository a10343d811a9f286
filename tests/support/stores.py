"""Every `Store` implementation for the tests that must hold on each: the memory store, and the
SQL store on a migrated SQLite file or PostgreSQL database (the `pg_store_url` fixture of
tests/unit/store/conftest.py, emptied first)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from tessera.store.memory import MemoryStore
from tessera.store.protocols import Store

__all__ = ["STORE_KINDS", "opened_store"]

STORE_KINDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@contextmanager
def opened_store(
    request: pytest.FixtureRequest, tmp_path: Path, created_at: datetime
) -> Iterator[Store]:
    """The store of the fixture's `request.param` (one of `STORE_KINDS`), its default domain's
    row ensured at `created_at`; closed on leaving."""
    store: Store
    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "postgresql":
        from tessera.store.sql import SqlStore
        from tests.support.pg import truncate_all

        url = request.getfixturevalue("pg_store_url")
        truncate_all(url)
        store = SqlStore.open(url)
    else:
        from tessera.store.sql import SqlStore, upgrade

        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        store = SqlStore.open(url)
    store.ensure_domain("Default", created_at)
    try:
        yield store
    finally:
        store.close()
