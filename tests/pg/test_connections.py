"""Pooled PostgreSQL connections that the server cut: an idle one is pinged and replaced before
use (no error at all); one cut while in steady use fails one call with `StoreUnavailable`, and
the next call gets a fresh pool (no restart). Nothing half-written either way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tessera.domain.model import BrowserSession
from tessera.store.protocols import Conflict, StoreUnavailable
from tessera.store.sql import upgrade
from tessera.store.sql.engine import make_engine
from tessera.store.sql.store import SqlStore
from tests.support.pg import ADMIN_URL, fresh_database

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        upgrade(url)
        yield url


def _store(url: str, pool_size: int = 10, idle_ping_seconds: float = 10.0) -> SqlStore:
    store = SqlStore(make_engine(url, pool_size=pool_size, idle_ping_seconds=idle_ping_seconds))
    store.ensure_domain("Default", datetime.now(UTC))
    return store


def _cut_connections(url: str) -> int:
    """What a database restart or a failover does to the node's open connections."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchall()
    return len(rows)


def _session(id_hash: str) -> BrowserSession:
    now = datetime.now(UTC)
    return BrowserSession(
        id_hash=id_hash,
        user_id="u1",
        auth_time=now,
        expires_at=now + timedelta(hours=1),
        csrf_secret="c",
    )


def test_an_idle_connection_cut_by_the_server_is_replaced_without_an_error(database: str) -> None:
    store = _store(database, pool_size=1, idle_ping_seconds=0.0)
    store.sessions.add(_session("s1"))
    assert _cut_connections(database) >= 1
    assert store.sessions.get("s1") is not None  # pinged, found dead, replaced: no error
    store.engine.dispose()


def test_a_connection_cut_in_use_fails_one_call_then_the_pool_is_renewed(database: str) -> None:
    store = _store(database, pool_size=2, idle_ping_seconds=3600.0)
    store.sessions.add(_session("s1"))
    store.sessions.get("s1")
    assert _cut_connections(database) >= 1
    with pytest.raises(StoreUnavailable):
        store.sessions.add(_session("s2"))
    assert store.sessions.get("s2") is None  # nothing half-written
    store.sessions.add(_session("s2"))  # a fresh connection, no restart
    assert store.sessions.get("s2") is not None
    store.engine.dispose()


def test_a_conflict_in_a_transaction_writes_nothing(database: str) -> None:
    store = _store(database)
    store.sessions.add(_session("s1"))
    with pytest.raises(Conflict):
        store.sessions.add(_session("s1"))
    assert store.sessions.get("s1") is not None
    store.engine.dispose()
