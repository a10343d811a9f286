"""Seal the connection secrets of stored integration documents (AES-256-GCM at rest).

Data only: each document's Basic passwords and OAuth client secrets are sealed in place with the
key `database.upgrade` hands in (`config.attributes["sealer"]`); downgrading opens them again.

Revision ID: i0002
Revises: i0001
Create Date: 2026-12-05
"""

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from tessera.integration.sealed import open_document, seal_document

revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None

_integrations = sa.table(
    "integrations",
    sa.column("code", sa.String()),
    sa.column("version", sa.String()),
    sa.column("document", sa.JSON()),
)


def _rewrite(change: Any) -> None:
    sealer = context.config.attributes.get("sealer")
    conn = op.get_bind()
    rows = conn.execute(sa.select(_integrations)).mappings().all()
    if rows and sealer is None:
        raise RuntimeError("sealing stored connection secrets needs the service's secret key")
    for row in rows:
        document = change(row["document"], sealer)
        if document != row["document"]:
            conn.execute(
                sa.update(_integrations)
                .where(
                    _integrations.c.code == row["code"], _integrations.c.version == row["version"]
                )
                .values(document=document)
            )


def upgrade() -> None:
    _rewrite(seal_document)


def downgrade() -> None:
    _rewrite(open_document)
