"""Alembic migrations run from code, against an engine: `head`, `current`, `upgrade`.

The identity domain and the integration service each keep their own migrations folder and
version table (so both may live in one PostgreSQL database); their env.py takes the connection
from `config.attributes["connection"]`.

Every CLI command and node start asks whether the database is at head. Answering that needs
neither Alembic nor its script directory (importing them is a fifth of a command's start-up):
revisions are named after their files (`0011_federation.py` is revision `0011`, one linear
chain; tests/unit/store/test_alembic_runner.py holds Alembic to it), so the head is the newest
file's prefix and the current revision is one row of the version table. Alembic is loaded only
when there is something to migrate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, column, inspect, select, table

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["AlembicRunner"]


class AlembicRunner:
    """One migrations folder and the table that records its revision."""

    def __init__(self, folder: Path, *, version_table: str = "alembic_version") -> None:
        self.folder = folder
        self.version_table = version_table

    def revisions(self) -> list[str]:
        """The folder's revisions, oldest first (the prefixes of its version files)."""
        return sorted(
            p.name.split("_", 1)[0] for p in (self.folder / "versions").glob("[!_]*_*.py")
        )

    def head(self) -> str:
        return self.revisions()[-1]

    def knows(self, revision: str) -> bool:
        """Whether the revision is one of this folder's (not one of a newer version's)."""
        return revision in self.revisions()

    def current(self, engine: Engine) -> str | None:
        """The database's revision; None when it has none (empty, or never migrated)."""
        with engine.connect() as conn:
            if not inspect(conn).has_table(self.version_table):
                return None
            versions = table(self.version_table, column("version_num"))
            found = list(conn.execute(select(versions.c.version_num)).scalars())
        if len(found) > 1:  # branches, which a linear chain never makes: Alembic refuses too
            raise RuntimeError(f"{self.version_table} holds several revisions: {sorted(found)}")
        return found[0] if found else None

    def upgrade(
        self,
        engine: Engine,
        too_new: Callable[[str], Exception],
        attributes: Mapping[str, Any] | None = None,
    ) -> tuple[str | None, str]:
        """Apply pending migrations; return (revision before, after). Never downgrades.

        `attributes` reach the migrations as `config.attributes` (keys a data migration needs).

        A database at a revision this folder does not know (a newer version migrated it) raises
        `too_new(revision)`.
        """
        before, head = self.current(engine), self.head()
        if before == head:
            return before, head
        if before is not None and not self.knows(before):
            raise too_new(before)
        from alembic import command

        with engine.begin() as conn:
            config = self.config()
            config.attributes.update(attributes or {})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return before, head

    def config(self) -> Config:
        """The folder's Alembic configuration (for tests and tools that drive Alembic)."""
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.folder))
        return config
