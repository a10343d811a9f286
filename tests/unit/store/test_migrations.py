"""The migrations create exactly `tessera.store.sql.schema`, run idempotently, never downgrade,
and a store refuses a database that is not migrated — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tessera.store.sql import SchemaNotCurrent, SqlStore, head, upgrade
from tessera.store.sql.engine import make_engine
from tessera.store.sql.schema import metadata
from tests.support.pg import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        with fresh_database() as database:
            yield database


def test_migrations_create_exactly_the_schema(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_migrate_is_idempotent(url: str) -> None:
    assert upgrade(url) == (None, head())
    assert upgrade(url) == (head(), head())


def test_migrate_refuses_a_database_of_a_newer_version(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaNotCurrent, match="refusing to downgrade"):
        upgrade(url)


def test_a_store_refuses_an_unmigrated_database_and_says_what_to_run(url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="run `tessera migrate`"):
        SqlStore.open(url)
