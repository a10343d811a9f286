"""Migration 0003 (identity domains) on a database with data, on SQLite and PostgreSQL: the
existing domain becomes the default domain (name `default`, its former name as display name)
and every row of it stays as it was (issue 14: "an existing database migrates into it")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tessera.domain.identity_domains import DomainSettings
from tessera.domain.model import AuditEvent, KeyState, RevocationKind
from tessera.store.protocols import Conflict, DomainContent
from tessera.store.sql import SqlStore, head, upgrade
from tessera.store.sql.engine import make_engine
from tests.unit.store.test_domain_store_contract import a_domain
from tests.unit.store.test_migrations import copy_rows, migrate_to, source_database
from tests.unit.store.test_store_contract import (
    a_client,
    a_code,
    a_consent,
    a_grant,
    a_key,
    a_refresh_token,
    a_resource,
    a_session,
    a_user,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = a_user("u1", "alice", is_admin=True)
CLIENT = a_client("c1", "Payroll")
RESOURCE = a_resource()
KEY = a_key("k1", state=KeyState.ACTIVE, activated_at=T0)
GRANT = a_grant("g1")
TOKEN = a_refresh_token("rt1", "g1")


def test_migration_0003_makes_the_existing_domain_the_default_and_keeps_its_data(
    url: str,
) -> None:
    migrate_to(url, "0002")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # the row as a 0002 node wrote it
            conn.execute(
                text("INSERT INTO domains (id, name, created_at) VALUES ('default', :n, :at)"),
                {"n": "Acme Identity", "at": T0.isoformat()},
            )
    finally:
        engine.dispose()
    # A 0002 node's data, written through the store (0003 changes no table but `domains`), and
    # copied without the columns later revisions added.
    with source_database(url) as source:
        old = SqlStore.open(source)
        old.ensure_domain("Default", T0)
        seq = write_a_nodes_data(old)
        copy_rows(source, url, skip=("domains",))

    assert upgrade(url) == ("0002", head())
    check_the_default_domain_and_its_data(url, seq)


def write_a_nodes_data(old: SqlStore) -> int:
    """Rows of every kind of 0002; the sequence number of the revocation event."""
    try:
        old.users.add(USER)
        old.clients.add(CLIENT)
        old.resources.add(RESOURCE)
        old.keys.add(KEY)
        old.sessions.add(a_session("s1", "u1"))
        old.consents.put(a_consent("u1", "c1"))
        old.codes.add(a_code("code1", expires_at=T0 + timedelta(days=365)))
        with old.transaction() as tx:
            tx.grants.start(GRANT, TOKEN)
        seq = old.revocations.append(
            RevocationKind.SUBJECT, "u1", T0, T0 + timedelta(days=365), T0
        )
        old.audit.append([AuditEvent(type="login.success", at=T0, user_id="u1")])
    finally:
        old.close()
    return seq


def check_the_default_domain_and_its_data(url: str, seq: int) -> None:
    store = SqlStore.open(url)
    try:
        default = store.domains.get("default")
        assert default is not None
        assert default.is_default and default.enabled
        assert (default.name, default.display_name) == ("default", "Acme Identity")
        assert (default.host, default.settings, default.version) == (None, DomainSettings(), 1)
        assert default.created_at == T0
        assert store.domains.get_by_name("default") == default
        assert store.domains.list() == [default]
        assert store.domains.count() == 1

        assert store.users.get("u1") == USER
        assert store.users.get_by_username("ALICE") == USER
        assert store.clients.get("c1") == CLIENT
        assert store.resources.get_by_audience(RESOURCE.audience) == RESOURCE
        assert store.keys.list() == [KEY]
        assert store.sessions.get("s1") is not None
        assert store.consents.get("u1", "c1") is not None
        assert store.grants.get("g1") == GRANT
        assert store.refresh_tokens.get("rt1") == TOKEN
        assert [(e.seq, e.key) for e in store.revocations.since(0)] == [(seq, "u1")]
        assert [e.type for e in store.audit.query()] == ["login.success"]
        assert store.codes.consume("code1", T0)[1] is True
        # New sequence numbers follow the old ones.
        assert store.revocations.append(RevocationKind.GRANT, "g1", T0, T0, T0) > seq

        # Another domain can now be created beside it, and the name `default` stays taken.
        store.domains.create(a_domain("d1", "acme"), DomainContent(users=(a_user("u2"),)))
        assert [d.name for d in store.domains.list()] == ["acme", "default"]
        assert store.for_domain("d1").users.get_by_username("alice") == a_user("u2")
        assert store.users.get("u2") is None
        with pytest.raises(Conflict):
            store.domains.create(a_domain("d2", "default"), DomainContent())
    finally:
        store.close()
