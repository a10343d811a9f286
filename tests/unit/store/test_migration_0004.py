"""Migration 0004 (strong authentication) on a database with data, on SQLite and PostgreSQL:
existing sessions, codes and grants were password sign-ins (`amr` reads back `("pwd",)`), apps
follow their domain's policy, every row stays as it was, and the new tables work. Its downgrade
removes exactly what it added, keeping the rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tessera.store.sql import SqlStore, head, migrate, upgrade
from tessera.store.sql.engine import make_engine
from tessera.store.sql.schema import metadata
from tests.unit.store.test_factor_store_contract import a_passkey
from tests.unit.store.test_migrations import older_database_with
from tests.unit.store.test_store_contract import (
    a_client,
    a_code,
    a_grant,
    a_refresh_token,
    a_session,
    a_user,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=365)
MFA = ("pwd", "otp", "mfa")


def write_rows(store: SqlStore) -> None:
    """Rows of every table 0004 changes, with values it adds (a 0003 node would not have them)."""
    store.users.add(a_user("u1", "alice"))
    store.clients.add(a_client("c1", "Payroll", mfa_policy="required"))
    store.sessions.add(a_session("s1", "u1", amr=MFA, expires_at=LATER))
    store.codes.add(a_code("code1", amr=MFA, expires_at=LATER))
    with store.transaction() as tx:
        tx.grants.start(a_grant("g1", amr=MFA), a_refresh_token("rt1", "g1"))


def check_rows(store: SqlStore, amr: tuple[str, ...], mfa_policy: str | None) -> None:
    assert store.users.get("u1") == a_user("u1", "alice")
    assert store.clients.get("c1") == a_client("c1", "Payroll", mfa_policy=mfa_policy)
    assert store.sessions.get("s1") == a_session("s1", "u1", amr=amr, expires_at=LATER)
    assert store.grants.get("g1") == a_grant("g1", amr=amr)
    assert store.refresh_tokens.get("rt1") == a_refresh_token("rt1", "g1")
    code, won = store.codes.consume("code1", T0)
    assert won and code == replace(a_code("code1", amr=amr, expires_at=LATER), consumed_at=T0)


def test_migration_0004_makes_existing_sign_ins_password_ones_and_keeps_the_data(
    url: str,
) -> None:
    # A node's rows, copied without `amr` and `mfa_policy`: 0003 has neither.
    older_database_with(url, "0003", write_rows, T0)

    assert upgrade(url) == ("0003", head())

    store = SqlStore.open(url)
    try:
        check_rows(store, amr=("pwd",), mfa_policy=None)
        assert store.sessions.authenticated("s1", MFA, T0, T0)
        assert store.sessions.get("s1") == a_session("s1", "u1", amr=MFA, expires_at=LATER)
        store.factors.add_passkey(a_passkey())
        assert store.factors.passkeys_for("u1") == [a_passkey()]
        assert store.nonces.use_once("webauthn:c", LATER, T0)
        store.users.delete("u1")
        assert store.factors.passkeys_for("u1") == []
    finally:
        store.close()


def downgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            config = migrate._MIGRATIONS.config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def test_migration_0004_downgrades_to_0003_keeping_the_rows(url: str) -> None:
    upgrade(url)
    store = SqlStore.open(url)
    try:
        store.ensure_domain("Default", T0)
        write_rows(store)
        store.factors.add_passkey(a_passkey())
    finally:
        store.close()

    downgrade_to(url, "0003")

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            tables = set(schema.get_table_names())
            assert not tables & {"passkeys", "totp_factors", "recovery_codes", "used_nonces"}
            for table in ("browser_sessions", "authorization_codes", "grants", "clients"):
                columns = {c["name"] for c in schema.get_columns(table)}
                assert not columns & {"amr", "mfa_policy"}, table
    finally:
        engine.dispose()

    assert upgrade(url) == ("0003", head())  # and up again: exactly the schema
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
    store = SqlStore.open(url)
    try:
        check_rows(store, amr=("pwd",), mfa_policy=None)
    finally:
        store.close()
