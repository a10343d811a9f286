"""Migration 0012 (who made a group membership; providers whose groups claim is the whole
truth) on a database with data, on SQLite and PostgreSQL: existing providers read back without
group sync and existing memberships as an administrator's, every row stays as it was, and a
provider's memberships work. Its downgrade removes exactly what it added, keeping the rows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect

from tessera.domain.model import Group
from tessera.store.sql import SqlStore, head, upgrade
from tessera.store.sql.engine import make_engine
from tests.unit.store.test_federation_store_contract import a_provider
from tests.unit.store.test_migration_0004 import downgrade_to
from tests.unit.store.test_migration_0005 import schema_is_current
from tests.unit.store.test_migrations import older_database_with
from tests.unit.store.test_store_contract import a_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write_rows(store: SqlStore) -> None:
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob"))
    store.upstream_providers.add(a_provider(groups_claim="groups"))
    store.groups.add(Group("g1", "Engineers", T0, T0), ["u1"])
    store.groups.add(Group("g2", "Ops", T0, T0))


def check_rows(store: SqlStore) -> None:
    assert store.upstream_providers.get("p1") == a_provider(groups_claim="groups")
    assert store.groups.memberships() == [("g1", "u1")]
    assert store.groups.made_by_provider("u1", "p1") == []  # an administrator's
    # The provider ends only what it made.
    assert store.groups.provider_memberships("u1", "p1", ["g2"], ["g1"], T0) == (["g2"], [])
    assert store.groups.made_by_provider("u1", "p1") == ["g2"]


def test_migration_0012_keeps_providers_and_memberships(url: str) -> None:
    older_database_with(url, "0011", write_rows, T0)

    assert upgrade(url) == ("0011", head())

    store = SqlStore.open(url)
    try:
        check_rows(store)
    finally:
        store.close()


def test_migration_0012_downgrades_to_0011_keeping_the_rows(url: str) -> None:
    upgrade(url)
    store = SqlStore.open(url)
    try:
        store.ensure_domain("Default", T0)
        write_rows(store)
        store.groups.provider_memberships("u2", "p1", ["g2"], [], T0)
    finally:
        store.close()

    downgrade_to(url, "0011")

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            assert "provider_id" not in {c["name"] for c in schema.get_columns("group_members")}
            columns = {c["name"] for c in schema.get_columns("upstream_providers")}
            assert "sync_groups" not in columns and "groups_claim" in columns
            assert sorted(conn.exec_driver_sql("SELECT group_id, user_id FROM group_members")) == [
                ("g1", "u1"),
                ("g2", "u2"),
            ]
    finally:
        engine.dispose()

    assert upgrade(url) == ("0011", head())  # and up again: exactly the schema
    schema_is_current(url)
