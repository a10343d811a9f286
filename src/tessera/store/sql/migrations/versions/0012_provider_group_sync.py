"""Upstream providers whose groups claim is the whole truth (docs/federation.md, "Groups").

`upstream_providers` gain `sync_groups` (existing rows: false, as before: the claim only adds
memberships); `group_members` gain `provider_id`, the provider whose sign-in made the
membership (existing rows: none, an administrator's), so a provider's sign-in ends only the
memberships it made.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, or with a default), not batch copies (see 0003).
    op.add_column(
        "upstream_providers",
        sa.Column("sync_groups", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("group_members", sa.Column("provider_id", sa.String(64), nullable=True))


def downgrade() -> None:
    # Batch copies (SQLite has no DROP COLUMN before 3.35).
    with op.batch_alter_table("group_members") as batch:
        batch.drop_column("provider_id")
    with op.batch_alter_table("upstream_providers") as batch:
        batch.drop_column("sync_groups")
