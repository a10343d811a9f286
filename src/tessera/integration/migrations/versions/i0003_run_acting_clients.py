"""Runs record who acted for their caller (issue 18): `acting_clients`, the apps whose
`oauth_token_exchange` steps called connections on the caller's behalf (RFC 8693 `act`).
Earlier runs have none (NULL).

Revision ID: i0003
Revises: i0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "i0003"
down_revision = "i0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Once only: a database set back to an earlier version to redo its data migrations (as
    # the sealing tests do) keeps the column.
    if "acting_clients" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        op.add_column("runs", sa.Column("acting_clients", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite before 3.35 has no DROP COLUMN
        batch.drop_column("acting_clients")
