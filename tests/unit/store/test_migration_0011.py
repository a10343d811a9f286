"""Migration 0011 (federation: upstream providers, linked identities, the upstream provider of
a browser session, whether a user's address is verified) on a database with data, on SQLite and
PostgreSQL: existing sessions read back as signed in here, existing users' addresses as not
verified, every row stays as it was, and the new tables work. Its downgrade removes exactly
what it added, keeping the rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import inspect

from tessera.store.sql import SqlStore, head, upgrade
from tessera.store.sql.engine import make_engine
from tests.unit.store.test_federation_store_contract import a_link, a_provider
from tests.unit.store.test_migration_0004 import downgrade_to
from tests.unit.store.test_migration_0005 import schema_is_current
from tests.unit.store.test_migrations import older_database_with
from tests.unit.store.test_store_contract import a_session, a_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NEW_TABLES = {"upstream_providers", "federated_identities"}


def write_rows(store: SqlStore) -> None:
    store.users.add(a_user("u1", "alice"))
    store.sessions.add(a_session("h1", "u1", amr=("pwd", "otp")))


def check_rows(store: SqlStore) -> None:
    alice = store.users.get("u1")
    assert alice == a_user("u1", "alice")
    assert alice is not None and alice.email is not None and not alice.email_verified
    session = store.sessions.get("h1")
    assert session == a_session("h1", "u1", amr=("pwd", "otp"))
    assert session is not None and session.upstream_provider is None


def check_new_tables(store: SqlStore) -> None:
    store.upstream_providers.add(a_provider())
    store.federated_identities.link(a_link("p1", "s1", "u1"))
    assert store.upstream_providers.get_by_name("CORP") == a_provider()
    assert store.federated_identities.list_for_user("u1") == [a_link("p1", "s1", "u1")]
    federated = replace(a_session("h2", "u1"), amr=("fed",), upstream_provider="p1")
    store.sessions.add(federated)
    assert store.sessions.get("h2") == federated
    store.users.add(a_user("u2", "bob", email_verified=True))
    assert store.users.get("u2") == a_user("u2", "bob", email_verified=True)


def test_migration_0011_keeps_sessions_and_users(url: str) -> None:
    # A node's rows, copied without the new column and tables: 0010 has none.
    older_database_with(url, "0010", write_rows, T0)

    assert upgrade(url) == ("0010", head())

    store = SqlStore.open(url)
    try:
        check_rows(store)
        check_new_tables(store)
    finally:
        store.close()


def test_migration_0011_downgrades_to_0010_keeping_the_rows(url: str) -> None:
    upgrade(url)
    store = SqlStore.open(url)
    try:
        store.ensure_domain("Default", T0)
        write_rows(store)
        check_new_tables(store)
    finally:
        store.close()

    downgrade_to(url, "0010")

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            assert not set(schema.get_table_names()) & NEW_TABLES
            columns = {c["name"] for c in schema.get_columns("browser_sessions")}
            assert "upstream_provider" not in columns
            assert "email_verified" not in {c["name"] for c in schema.get_columns("users")}
    finally:
        engine.dispose()

    assert upgrade(url) == ("0010", head())  # and up again: exactly the schema
    schema_is_current(url)
    store = SqlStore.open(url)
    try:
        check_rows(store)  # Bob's verified address too: dropped with the column, false again
        bob = store.users.get("u2")
        assert bob is not None and bob == a_user("u2", "bob") and not bob.email_verified
        assert store.upstream_providers.list() == []
        fed = store.sessions.get("h2")
        assert fed is not None and fed.upstream_provider is None  # kept, as signed in here
    finally:
        store.close()
