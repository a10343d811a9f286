"""Alembic migrations run from code, against an engine: `head`, `current`, `upgrade`.

The identity domain and the integration service each keep their own migrations folder and
version table (so both may live in one PostgreSQL database); their env.py takes the connection
from `config.attributes["connection"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

__all__ = ["AlembicRunner"]


class AlembicRunner:
    """One migrations folder and the table that records its revision."""

    def __init__(self, folder: Path, *, version_table: str = "alembic_version") -> None:
        self.folder = folder
        self.version_table = version_table

    def head(self) -> str:
        revision = self._scripts().get_current_head()
        assert revision is not None
        return revision

    def knows(self, revision: str) -> bool:
        """Whether the revision is one of this folder's (not one of a newer version's)."""
        try:
            return self._scripts().get_revision(revision) is not None
        except CommandError:
            return False

    def current(self, engine: Engine) -> str | None:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return context.get_current_revision()

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
        before = self.current(engine)
        if before is not None and not self.knows(before):
            raise too_new(before)
        with engine.begin() as conn:
            config = self._config()
            config.attributes.update(attributes or {})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return before, self.head()

    def _config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.folder))
        return config

    def _scripts(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self._config())
