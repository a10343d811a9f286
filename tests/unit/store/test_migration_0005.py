"""Migration 0005 (client authentication, pushed requests, registration) on a database with
data, on SQLite and PostgreSQL: existing apps keep working with the defaults (no method: their
kind's; RS256 ID tokens; no PAR, DPoP, profile or registration), their secrets read back
unsealed, every row stays as it was, and the new tables work. Its downgrade removes exactly what
it added, keeping the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tessera.domain.model import ClientKind
from tessera.store.sql import SqlStore, head, upgrade
from tessera.store.sql.engine import make_engine
from tessera.store.sql.schema import metadata
from tests.unit.store.test_client_auth_store_contract import (
    a_pushed_request,
    a_registered_client,
    a_registration_token,
)
from tests.unit.store.test_migration_0004 import downgrade_to
from tests.unit.store.test_migrations import older_database_with
from tests.unit.store.test_store_contract import a_client, a_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=365)
NEW_TABLES = {"pushed_requests", "registration_tokens"}
NEW_COLUMNS = {
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "id_token_signed_response_alg",
    "profile",
    "registration_token_hash",
    "details",
}
PUBLIC = {"kind": ClientKind.PUBLIC, "secret_hashes": ()}


def write_rows(store: SqlStore) -> None:
    """Apps with the values 0005 adds in its columns (a 0004 node would not have them), and a
    user."""
    store.users.add(a_user("u1", "alice"))
    store.clients.add(a_registered_client(secret_hashes=a_client().secret_hashes))
    store.clients.add(a_client("c2", "CLI", **PUBLIC))


def check_defaults(store: SqlStore) -> None:
    """What a 0004 app reads back as: the defaults of every new field."""
    assert store.users.get("u1") == a_user("u1", "alice")
    old = a_client("c1", "Payroll")  # the registered app, without its new values
    assert store.clients.get("c1") == old
    assert store.clients.get("c2") == a_client("c2", "CLI", **PUBLIC)
    app = store.clients.get("c1")
    assert app is not None and app.auth_method == "client_secret_basic"
    assert app.id_token_signed_response_alg == "RS256" and not app.requires_par
    assert all(s.sealed is None for s in app.secret_hashes)
    cli = store.clients.get("c2")
    assert cli is not None and cli.auth_method == "none"


def check_new_tables(store: SqlStore) -> None:
    store.pushed_requests.add(a_pushed_request(expires_at=LATER))
    assert store.pushed_requests.take("h1", "c1", T0) is not None
    scoped = a_registration_token(max_uses=1, allowed_scopes=("openid", "profile"))
    store.registration_tokens.add(scoped)
    assert store.registration_tokens.find("hash1") == scoped
    assert store.registration_tokens.use("hash1", T0) is not None
    assert store.registration_tokens.use("hash1", T0) is None
    registered = a_registered_client(version=2)
    store.clients.update(registered)
    assert store.clients.get("c1") == registered


def test_migration_0005_gives_existing_apps_the_defaults_and_keeps_the_data(url: str) -> None:
    # A node's rows, copied without the new columns and tables: 0004 has none.
    older_database_with(url, "0004", write_rows, T0)

    assert upgrade(url) == ("0004", head())

    store = SqlStore.open(url)
    try:
        check_defaults(store)
        check_new_tables(store)
    finally:
        store.close()


def schema_is_current(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_migration_0005_downgrades_to_0004_keeping_the_rows(url: str) -> None:
    upgrade(url)
    store = SqlStore.open(url)
    try:
        store.ensure_domain("Default", T0)
        write_rows(store)
        store.pushed_requests.add(a_pushed_request(expires_at=LATER))
        store.registration_tokens.add(a_registration_token())
    finally:
        store.close()

    downgrade_to(url, "0004")

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            assert not set(schema.get_table_names()) & NEW_TABLES
            assert not {c["name"] for c in schema.get_columns("clients")} & NEW_COLUMNS
    finally:
        engine.dispose()

    assert upgrade(url) == ("0004", head())  # and up again: exactly the schema
    schema_is_current(url)
    store = SqlStore.open(url)
    try:
        check_defaults(store)
        assert store.pushed_requests.take("h1", "c1", T0) is None
        assert store.registration_tokens.list() == []
        check_new_tables(store)
    finally:
        store.close()
