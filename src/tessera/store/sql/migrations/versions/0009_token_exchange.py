"""Token exchange policy of apps (issue 18, RFC 8693).

`clients` gain `token_exchange_audiences` (JSON list: the audiences of the resources an
administrator lets the app exchange a user's access token for) and
`token_exchange_impersonation` (the app may ask for a token without `act`, RFC 8693 §4.1).
Existing apps may exchange for nothing: the list is empty (NULL), impersonation off. Exchanged
tokens are recorded in the existing `grants` table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, or with a default), not batch copies (see 0003).
    op.add_column("clients", sa.Column("token_exchange_audiences", sa.JSON(), nullable=True))
    op.add_column(
        "clients",
        sa.Column(
            "token_exchange_impersonation",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
        ),
    )


def downgrade() -> None:
    # A batch copy (SQLite has no DROP COLUMN before 3.35).
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("token_exchange_impersonation")
        batch.drop_column("token_exchange_audiences")
