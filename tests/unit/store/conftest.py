"""Fixtures of the store tests: `store`, every `Store` implementation with the default domain's
row ensured (the contract suites); `url`, an empty SQLite or PostgreSQL database (migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tessera.store.protocols import Store
from tests.support.stores import STORE_KINDS, opened_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_store_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the module, emptied before each test."""
    from tessera.store.sql import upgrade
    from tests.support.pg import fresh_database

    with fresh_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request, tmp_path, T0) as opened:
        yield opened


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        from tests.support.pg import fresh_database

        with fresh_database() as database:
            yield database
