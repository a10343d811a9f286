"""Deleting a domain (`tessera.manage.domains.delete_domain`) on SQLite and PostgreSQL, when a
node that has not yet seen the domain disabled (its domain cache lives a couple of seconds,
`tessera.web.domains`) writes one more row of it while its data is being purged: the deletion
still removes everything, row and data (docs/domains.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.audit import AuditSink
from tessera.domain.model import AuditEvent
from tessera.manage.audit import store_actor
from tessera.manage.domains import NewAdmin, create_domain, delete_domain
from tessera.store.sql import SqlStore, upgrade
from tests.unit.store.test_domain_store_contract import count_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    """The default domain's store on a migrated SQLite or PostgreSQL database."""
    upgrade(url)
    s = SqlStore.open(url)
    s.ensure_domain("Default", T0)
    yield s
    s.close()


class LateWriter:
    """The deployment's `DomainStore`, where another node writes an audit event of the domain
    just after the purge found nothing left (the first time only)."""

    def __init__(self, store: SqlStore, domain_id: str) -> None:
        self._store = store
        self._inner = store.domains
        self._domain_id = domain_id
        self.wrote = False

    def purge_data(self, domain_id: str, batch: int) -> int:
        deleted = self._inner.purge_data(domain_id, batch)
        if deleted == 0 and not self.wrote:
            late = AuditEvent(type="token.error", at=T0, details={"error": "invalid_client"})
            self._store.for_domain(self._domain_id).audit.append([late])
            self.wrote = True
        return deleted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_row_written_during_the_purge_does_not_stop_the_deletion(store: SqlStore) -> None:
    actor = store_actor("cli:test", store, lambda: T0)
    created = create_domain(
        store,
        name="zeta",
        base_issuer=BASE,
        signing_key_for=lambda _: b"k" * 32,
        now=T0,
        actor=actor,
        admin=NewAdmin("alice", "Violet-Harbor-Lantern-58"),
    )
    domain_id = created.domain.id
    late = LateWriter(store, domain_id)
    store.domains = late  # type: ignore[misc]

    gone = delete_domain(store, "zeta", T0, actor)

    assert late.wrote
    assert gone.rows > 0
    assert store.domains.get(domain_id) is None
    assert count_of(store, domain_id) == 0


def test_audit_events_of_a_deleted_domain_are_dropped_not_retried_forever(
    store: SqlStore,
) -> None:
    """A node queued audit events of a domain just before it was deleted: they can never be
    written (the domain's row is gone), so they are dropped, and the node is not marked down."""
    actor = store_actor("cli:test", store, lambda: T0)
    created = create_domain(
        store,
        name="eta",
        base_issuer=BASE,
        signing_key_for=lambda _: b"k" * 32,
        now=T0,
        actor=actor,
    )
    errors: list[int] = []
    sink = AuditSink(
        store.audit,
        lambda: T0,
        interval=3600,  # flushed by the test only
        on_error=lambda: errors.append(1),
        store_for=lambda domain_id: store.for_domain(domain_id).audit,
        domain_id=store.domain_id,
    )
    try:
        delete_domain(store, "eta", T0, actor)
        sink.for_domain(created.domain.id).record("token.error", error="invalid_client")
        sink.for_domain(store.domain_id).record("login.success")  # written as usual
        for _ in range(3):
            sink.flush()
        assert [e.type for e in store.audit.query(type="login.success")] == ["login.success"]
        assert sink.dropped == 1
        assert errors == []
    finally:
        sink.close()
