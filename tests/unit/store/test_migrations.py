"""The migrations create exactly `tessera.store.sql.schema`, run idempotently, never downgrade,
and a store refuses a database that is not migrated — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text

from tessera.store.sql import SchemaNotCurrent, SqlStore, head, migrate, upgrade
from tessera.store.sql.engine import make_engine
from tessera.store.sql.schema import metadata


def migrate_to(url: str, revision: str) -> None:
    """Migrate an empty database to `revision` (older than head: a database to migrate)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            config = migrate._MIGRATIONS.config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


@contextmanager
def source_database(url: str) -> Iterator[str]:
    """Another database of the kind of `url`, migrated to head: an older node's data is written
    there through today's store, then `copy_rows` moves it into the database to migrate."""
    if url.startswith("sqlite:"):
        source = url.rsplit("/", 1)[0] + "/source.db"
        upgrade(source)
        yield source
        return
    from tests.support.pg import fresh_database

    with fresh_database() as source:
        upgrade(source)
        yield source


def older_database_with(
    url: str, revision: str, write: Callable[[SqlStore], object], created_at: datetime
) -> None:
    """Migrate the empty database `url` to `revision` and give it a node's rows: `write`
    writes them through today's store into another database (its default domain made at
    `created_at`), and `copy_rows` moves what `revision` has columns for."""
    migrate_to(url, revision)
    with source_database(url) as source:
        node = SqlStore.open(source)
        try:
            node.ensure_domain("Default", created_at)
            write(node)
        finally:
            node.close()
        copy_rows(source, url)


def copy_rows(source: str, target: str, *, skip: tuple[str, ...] = ()) -> None:
    """Copy the rows of every table of `source` (at head) into `target` (an older revision),
    with only the columns `target` has; autoincremented ids are left to `target`, which assigns
    the same ones (the rows go in key order into empty tables)."""
    from_engine, to_engine = make_engine(source), make_engine(target)
    try:
        with from_engine.connect() as reader, to_engine.begin() as writer:
            old = inspect(writer)
            present = {
                name: {c["name"] for c in old.get_columns(name)} for name in old.get_table_names()
            }
            for table in metadata.sorted_tables:
                if table.name in skip or table.name not in present:
                    continue
                columns = [
                    c
                    for c in table.c
                    if c.name in present[table.name] and c is not table.autoincrement_column
                ]
                query = select(*columns).order_by(*table.primary_key.columns)
                rows = [dict(row._mapping) for row in reader.execute(query)]
                if rows:
                    writer.execute(insert(table), rows)
    finally:
        from_engine.dispose()
        to_engine.dispose()


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


def test_migration_0002_keeps_existing_apps_and_codes_in_flight(url: str) -> None:
    """Apps registered before 0002 serve no resource; codes in flight take their auth_time
    as issue time (never later than the real one, so a cut-off refuses rather than misses)."""
    from datetime import UTC, datetime

    migrate_to(url, "0001")
    engine = make_engine(url)
    try:
        at = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO domains (id, name, created_at) VALUES ('default', 'D', :at)"),
                {"at": at},
            )
            conn.execute(
                text(
                    "INSERT INTO clients (client_id, domain_id, name, kind, secret_hashes, "
                    "redirect_uris, post_logout_redirect_uris, grant_types, allowed_scopes, "
                    "first_party, created_at, version) VALUES ('c1', 'default', 'Old app', "
                    "'confidential', '[]', '[]', '[]', '[]', '[]', false, :at, 1)"
                ),
                {"at": at},
            )
            conn.execute(
                text(
                    "INSERT INTO authorization_codes (code_hash, domain_id, client_id, user_id, "
                    "redirect_uri, scopes, auth_time, expires_at, grant_id) VALUES ('h1', "
                    "'default', 'c1', 'u1', 'https://a.test/cb', '[]', :at, :at, 'g1')"
                ),
                {"at": at},
            )
    finally:
        engine.dispose()
    assert upgrade(url) == ("0001", head())
    store = SqlStore.open(url)
    try:
        client = store.clients.get("c1")
        assert client is not None and client.resource_server_for == ()
        code, _ = store.codes.consume("h1", datetime(2025, 1, 1, tzinfo=UTC))
        assert code is not None and code.issued_at == code.auth_time
    finally:
        store.close()
