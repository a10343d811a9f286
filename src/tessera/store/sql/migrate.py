"""Alembic migrations run from code: `upgrade`, `current`, `head`, and the check that a database
is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from tessera.store.sql.engine import make_engine

__all__ = ["SchemaNotCurrent", "current", "ensure_current", "head", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNotCurrent(RuntimeError):
    """The database is not migrated to this version of Tessera."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str]:
    """Apply every pending migration; return (revision before, revision after). Idempotent.

    A database at a revision this version does not know (a newer Tessera migrated it) is refused:
    we never downgrade implicitly.
    """
    engine = make_engine(url)
    try:
        before = current(engine)
        script = ScriptDirectory.from_config(_config())
        if before is not None and script.get_revision(before) is None:
            raise SchemaNotCurrent(
                f"the database is at revision {before}, which this version of Tessera does not "
                "know; refusing to downgrade. Run a newer Tessera."
            )
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return before, head()
    finally:
        engine.dispose()


def ensure_current(engine: Engine) -> None:
    """Raise `SchemaNotCurrent` with what to do when the schema is not at head."""
    at = current(engine)
    if at != head():
        raise SchemaNotCurrent(
            f"the database schema is at {at or 'nothing (empty database)'}, not {head()}: "
            "run `tessera migrate`"
        )
