"""Resource-server apps, the issue time of authorization codes, and an index for subject
cut-offs.

`clients.resource_server_for` lists the audiences an app serves as a resource server (it may
introspect their tokens and follow the revocation feed, RFC 7662 §2.1, §4); existing apps serve
none. `authorization_codes.issued_at` is compared with the user's revocation cut-off when the
code is redeemed; codes in flight (they live a minute) take their `auth_time`, which is never
later than their issue time, so a cut-off refuses them rather than missing them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("resource_server_for", sa.JSON(), nullable=True))
    op.execute("UPDATE clients SET resource_server_for = '[]'")
    with op.batch_alter_table("clients") as batch:
        batch.alter_column("resource_server_for", existing_type=sa.JSON(), nullable=False)

    issued_at = tessera.store.sql.types.UTCDateTime(timezone=True)
    with op.batch_alter_table("authorization_codes") as batch:
        batch.add_column(sa.Column("issued_at", issued_at, nullable=True))
    op.execute("UPDATE authorization_codes SET issued_at = auth_time")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.alter_column("issued_at", existing_type=issued_at, nullable=False)

    op.create_index(
        "ix_revocation_events_kind_key",
        "revocation_events",
        ["domain_id", "kind", "key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_revocation_events_kind_key", table_name="revocation_events")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("issued_at")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("resource_server_for")
