"""The hot path's SQL: prebuilt Core statements run on the driver's cursor.

A token, a code or a session costs a handful of statements; through `Connection.execute` each
one pays ~30-60 µs of SQLAlchemy bookkeeping (events, execution context, result wrapping) on
top of the driver's ~5 µs. Here a statement is compiled once per dialect, parameters and rows
go through SQLAlchemy's own type processors (so values read and written are the same as on the
`Connection` path), and transactions run on driver connections of the hot path's own small
pools. Used by the store methods a request calls; the rest keeps `Connection.execute`.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from tessera.store.protocols import Conflict, StoreUnavailable

__all__ = [
    "FastTx",
    "Prepared",
    "dispose",
    "fast_statement",
    "fast_transaction",
    "ping_when_idle",
]

_Processor = Callable[[Any], Any] | None


class Prepared:
    """One statement compiled for one dialect, with its bind and result processors."""

    __slots__ = ("binds", "columns", "positional", "sql")

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str] | None
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names = list(compiled.positiontup or []) if self.positional else list(by_name)
        # (name, processor, default): the default is a literal the statement itself carries.
        self.binds: list[tuple[str, _Processor, Any]] = [
            (
                name,
                by_name[name].type.dialect_impl(dialect).bind_processor(dialect),
                by_name[name].effective_value,
            )
            for name in names
        ]
        # A SELECT's columns, or what an INSERT/UPDATE … RETURNING gives back.
        columns = list(getattr(statement, "exported_columns", None) or [])
        self.columns: list[tuple[str, _Processor]] = [
            (c.key, c.type.dialect_impl(dialect).result_processor(dialect, None)) for c in columns
        ]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        out = []
        for name, process, default in self.binds:
            value = values.get(name, default)
            out.append(process(value) if process is not None else value)
        if self.positional:
            return tuple(out)
        return {name: value for (name, _, _), value in zip(self.binds, out, strict=True)}

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {
            key: process(value) if process is not None else value
            for (key, process), value in zip(self.columns, raw, strict=True)
        }


class _Statements:
    """The prepared forms of an engine's statements (hot-path statements are module-level
    objects built once, so identity is the key)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[tuple[int, tuple[str, ...] | None], tuple[ClauseElement, Prepared]] = {}

    def get(self, statement: ClauseElement, keys: tuple[str, ...] | None) -> Prepared:
        key = (id(statement), keys)
        found = self._cache.get(key)
        if found is None:
            found = (statement, Prepared(statement, self._dialect, keys))
            self._cache[key] = found
        return found[1]


class FastTx:
    """Statements inside one transaction on a driver cursor."""

    __slots__ = ("_cursor", "_left", "_statements", "dialect_name")

    def __init__(
        self, cursor: Any, statements: _Statements, dialect_name: str, single: bool
    ) -> None:
        self._cursor = cursor
        self._statements = statements
        self.dialect_name = dialect_name
        # `fast_statement` autocommits: a second statement would not share a transaction.
        self._left = 1 if single else -1

    def _execute(self, sql: str, parameters: Any) -> None:
        if self._left == 0:
            raise RuntimeError("fast_statement runs one statement; use fast_transaction")
        self._left -= 1
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)

    def run(
        self,
        statement: ClauseElement,
        values: Mapping[str, Any],
        keys: tuple[str, ...] | None = None,
    ) -> int:
        """Execute; the row count."""
        prepared = self._statements.get(statement, keys)
        self._execute(prepared.sql, prepared.parameters(values))
        return int(self._cursor.rowcount)

    def run_many(
        self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]], keys: tuple[str, ...]
    ) -> None:
        prepared = self._statements.get(statement, keys)
        if self._left >= 0:
            raise RuntimeError("a batch needs fast_transaction")
        self._cursor.executemany(prepared.sql, [prepared.parameters(r) for r in rows])

    def first(
        self,
        statement: ClauseElement,
        values: Mapping[str, Any],
        keys: tuple[str, ...] | None = None,
    ) -> dict[str, Any] | None:
        prepared = self._statements.get(statement, keys)
        self._execute(prepared.sql, prepared.parameters(values))
        raw = self._cursor.fetchone()
        return prepared.row(raw) if raw is not None else None

    def all(self, statement: ClauseElement, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        prepared = self._statements.get(statement, None)
        self._execute(prepared.sql, prepared.parameters(values))
        return [prepared.row(raw) for raw in self._cursor.fetchall()]

    def sql(self, text: str) -> None:
        """A statement without parameters or rows (locks)."""
        self._execute(text, None)


class _Pool:
    """Driver connections (each with its cursor) of one kind, kept apart from SQLAlchemy's
    pool: a checkout here is a `deque.pop()`, not events, a reset and a queue (~15 µs a
    statement). A connection that sat idle is pinged before use and replaced when dead."""

    def __init__(self, engine: Engine, *, autocommit: bool, size: int, idle: float) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._size = size
        self._idle_seconds = idle
        self._idle: deque[tuple[Any, Any, float]] = deque()

    def acquire(self) -> tuple[Any, Any]:
        while True:
            if not self._idle:
                return self._open()
            try:
                connection, cursor, since = self._idle.pop()
            except IndexError:  # another thread took the last one
                return self._open()
            if time.monotonic() - since < self._idle_seconds or self._alive(connection, cursor):
                return connection, cursor
            _close(connection)

    def release(self, connection: Any, cursor: Any) -> None:
        if len(self._idle) < self._size:
            self._idle.append((connection, cursor, time.monotonic()))
        else:
            _close(connection)

    def clear(self) -> None:
        while self._idle:
            _close(self._idle.pop()[0])

    def _open(self) -> tuple[Any, Any]:
        fairy = self._engine.raw_connection()  # connected and set up by the engine's events
        connection: Any = fairy.driver_connection
        fairy.detach()  # ours from now on
        if self._autocommit and self._engine.dialect.name == "postgresql":
            connection.autocommit = True  # (SQLite connections are in autocommit mode)
        return connection, connection.cursor()

    def _alive(self, connection: Any, cursor: Any) -> bool:
        try:
            if not self._autocommit and self._engine.dialect.name == "postgresql":
                connection.rollback()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            if not self._autocommit and self._engine.dialect.name == "postgresql":
                connection.rollback()
        except Exception:
            return False
        return True


class _Engine:
    """What the hot path keeps per engine: prepared statements and its two pools."""

    def __init__(self, engine: Engine) -> None:
        size = engine.pool.size() if hasattr(engine.pool, "size") else 10
        idle = _IDLE_PING.get(engine, 10.0)
        self.statements = _Statements(engine.dialect)
        self.single = _Pool(engine, autocommit=True, size=size, idle=idle)
        self.transactions = _Pool(engine, autocommit=False, size=size, idle=idle)


# Per engine object (not per id(): a new engine may reuse the id of one that is gone).
_ENGINES: weakref.WeakKeyDictionary[Engine, _Engine] = weakref.WeakKeyDictionary()
_IDLE_PING: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def ping_when_idle(engine: Engine, seconds: float) -> None:
    """Ping the hot path's connections of `engine` that sat idle longer than `seconds`."""
    _IDLE_PING[engine] = seconds


def dispose(engine: Engine) -> None:
    """Close the hot path's idle connections of `engine` (with `engine.dispose()`)."""
    state = _ENGINES.pop(engine, None)
    if state is not None:
        state.single.clear()
        state.transactions.clear()


@contextmanager
def fast_transaction(engine: Engine) -> Iterator[FastTx]:
    """One write transaction on a pooled driver connection (SQLite: `BEGIN IMMEDIATE`).

    Errors become the store's: a constraint violation `Conflict`, a lost or locked database
    `StoreUnavailable` (the connection is discarded and the pool renewed, as SQLAlchemy does).
    """
    with _driver(engine, single=False) as tx:
        yield tx


@contextmanager
def fast_statement(engine: Engine) -> Iterator[FastTx]:
    """For ONE statement, autocommitted (a single statement is atomic on its own): no BEGIN
    and COMMIT round trips around it on PostgreSQL."""
    with _driver(engine, single=True) as tx:
        yield tx


@contextmanager
def _driver(engine: Engine, *, single: bool) -> Iterator[FastTx]:
    state = _ENGINES.get(engine)
    if state is None:
        state = _ENGINES.setdefault(engine, _Engine(engine))
    dialect = engine.dialect
    dbapi: Any = dialect.loaded_dbapi
    pool = state.single if single else state.transactions
    try:
        connection, cursor = pool.acquire()
    except DBAPIError as exc:
        raise StoreUnavailable(type(exc.orig).__name__ if exc.orig else "database error") from exc
    except (dbapi.OperationalError, dbapi.InterfaceError) as exc:  # connecting raises them raw
        raise StoreUnavailable(type(exc).__name__) from exc
    sqlite = dialect.name == "sqlite"
    try:
        if sqlite and not single:
            cursor.execute("BEGIN IMMEDIATE")
        yield FastTx(cursor, state.statements, dialect.name, single)
        if not single:
            connection.commit()
    except dbapi.IntegrityError as exc:
        _rollback(connection)
        pool.release(connection, cursor)
        raise Conflict(str(exc).splitlines()[0] if str(exc) else "conflict") from None
    except (dbapi.OperationalError, dbapi.InterfaceError) as exc:
        # The connection may be dead: never use it again; on a lost database, renew the pools
        # (their other connections are as dead), as SQLAlchemy does on its own path.
        lost = dialect.is_disconnect(exc, connection, cursor)
        _close(connection)
        if lost:
            dispose(engine)
            engine.dispose(close=False)
        raise StoreUnavailable(type(exc).__name__) from exc
    except BaseException:
        _rollback(connection)
        pool.release(connection, cursor)
        raise
    else:
        pool.release(connection, cursor)


def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


def _rollback(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.rollback()
