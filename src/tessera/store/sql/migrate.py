"""Alembic migrations run from code: `upgrade`, `current`, `head`, and the check that a database
is at head."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tessera.shared.alembic_runner import AlembicRunner
from tessera.store.sql.engine import make_engine, translated

__all__ = ["SchemaNotCurrent", "current", "ensure_current", "head", "upgrade"]

_MIGRATIONS = AlembicRunner(Path(__file__).parent / "migrations")


class SchemaNotCurrent(RuntimeError):
    """The database is not migrated to this version of Tessera."""


def head() -> str:
    return _MIGRATIONS.head()


def current(engine: Engine) -> str | None:
    with translated():  # an unreachable database is StoreUnavailable, like everywhere else
        return _MIGRATIONS.current(engine)


def upgrade(url: str) -> tuple[str | None, str]:
    """Apply every pending migration; return (revision before, revision after). Idempotent.

    A database at a revision this version does not know (a newer Tessera migrated it) is refused:
    we never downgrade implicitly.
    """
    engine = make_engine(url)
    try:
        with translated():
            return _MIGRATIONS.upgrade(engine, too_new=_too_new)
    finally:
        engine.dispose()


def _too_new(revision: str) -> SchemaNotCurrent:
    return SchemaNotCurrent(
        f"the database is at revision {revision}, which this version of Tessera does not "
        "know; refusing to downgrade. Run a newer Tessera."
    )


def ensure_current(engine: Engine) -> None:
    """Raise `SchemaNotCurrent` with what to do when the schema is not at head."""
    at = current(engine)
    if at != head():
        raise SchemaNotCurrent(
            f"the database schema is at {at or 'nothing (empty database)'}, not {head()}: "
            "run `tessera migrate`"
        )
