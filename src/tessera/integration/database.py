"""The integration service's database: engines for SQLite and PostgreSQL, and its migrations.

SQLite (the default, one file) runs in WAL mode with a busy timeout so runs recorded by
concurrent requests wait for each other instead of failing. `postgresql://` URLs use psycopg 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tessera.shared.alembic_runner import AlembicRunner
from tessera.shared.database_url import normalize_url
from tessera.shared.sealing import Sealer

__all__ = ["VERSION_TABLE", "SchemaTooNew", "head", "make_engine", "normalize_url", "upgrade"]

VERSION_TABLE = "alembic_version_integration"
_MIGRATIONS = AlembicRunner(Path(__file__).parent / "migrations", version_table=VERSION_TABLE)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the service."""


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_timeout=5,
            connect_args={"connect_timeout": 5},
        )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=NullPool if ":memory:" not in url else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Freed space is zeroed: a replaced document leaves no old (or pre-i0002 plain) secret.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def head() -> str:
    return _MIGRATIONS.head()


def upgrade(engine: Engine, sealer: Sealer | None = None) -> tuple[str | None, str]:
    """Apply pending migrations; return (revision before, after). Never downgrades.

    `sealer` seals the connection secrets of documents stored before i0002.
    """
    return _MIGRATIONS.upgrade(engine, too_new=_too_new, attributes={"sealer": sealer})


def _too_new(revision: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"the integration database is at revision {revision}, which this version does not "
        "know; refusing to downgrade"
    )
