"""The administration rules' fixtures: a memory store with its default domain, and an
administrator acting at `T0`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.manage.audit import Actor, store_actor
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)
