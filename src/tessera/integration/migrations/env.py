"""Alembic environment of the integration service: its own version table, run against the
connection handed in by `tessera.integration.database.upgrade`."""

from __future__ import annotations

from alembic import context

from tessera.integration.database import VERSION_TABLE
from tessera.integration.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations always run through database.upgrade()
    raise RuntimeError("the integration service applies its migrations at startup")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
