"""Engines for SQLite and PostgreSQL, and the transaction helpers every SQL store method uses.

SQLite runs in WAL mode with a busy timeout; write transactions start with `BEGIN IMMEDIATE` so
two writers never both read and then fail to upgrade their lock. Driver errors become the
store's `Conflict` and `StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.pool import QueuePool

from tessera.shared.database_url import normalize_url
from tessera.store.protocols import Conflict, StoreUnavailable
from tessera.store.sql import fast

__all__ = ["make_engine", "normalize_url", "read", "translated", "write"]

_WRITE = "tessera_write"


def make_engine(url: str, *, pool_size: int = 10, idle_ping_seconds: float = 10.0) -> Engine:
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # A pool of open connections: opening one (and its PRAGMAs) per transaction costs more
        # than the transaction. SQLite serialises writers itself (BEGIN IMMEDIATE, WAL).
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
        )
        _configure_sqlite(engine)
        fast.ping_when_idle(engine, float("inf"))  # a local file does not drop connections
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_timeout=5,
        connect_args={"connect_timeout": 5},
    )
    _ping_when_idle(engine, idle_ping_seconds)
    fast.ping_when_idle(engine, idle_ping_seconds)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    `pool_pre_ping` pings on every checkout: a round trip per transaction. A connection in
    steady use is known good; one that idled may have been cut (database restart, failover,
    idle timeouts), so it is pinged and silently replaced when dead. A connection that dies
    while busy fails its transaction with `StoreUnavailable`, and the pool is renewed.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("idle connection lost") from exc
        if not alive:
            raise DisconnectionError("idle connection lost")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(str(exc.orig).splitlines()[0]) from None
    except (OperationalError, SAInterfaceError) as exc:
        raise StoreUnavailable(type(exc.orig).__name__ if exc.orig else "database error") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("database connection lost") from exc
        raise


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction (SQLite: `BEGIN IMMEDIATE`), committed on success."""
    with translated(), engine.connect() as conn:
        conn = conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read transaction."""
    with translated(), engine.connect() as conn, conn.begin():
        yield conn
