"""Alembic environment: runs against the connection handed in by `tessera.store.sql.migrate`."""

from __future__ import annotations

from alembic import context

from tessera.store.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations always run through migrate.upgrade()
    raise RuntimeError("run migrations with `tessera migrate`")
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
)
with context.begin_transaction():
    context.run_migrations()
