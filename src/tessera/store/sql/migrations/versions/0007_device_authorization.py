"""Device authorization requests (issue 18, RFC 8628).

One new table, `device_authorizations`: the keyed hashes of the device code (the key) and of
the normalised user code (unique per domain), the app, its scopes and audience, expiry, the
polling interval and the compare-and-set counter of polls (§3.5 `slow_down`), the user's
decision (who, from which session, how they signed in) and the redemption time (once). An index
on the expiry serves housekeeping.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    op.create_table(
        "device_authorizations",
        sa.Column(
            "domain_id",
            sa.String(64),
            sa.ForeignKey("domains.id"),
            nullable=False,
            primary_key=True,
        ),
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(2000), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("expires_at", moment, nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", moment, nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("auth_time", moment, nullable=True),
        sa.Column("amr", sa.String(200), nullable=False, server_default=""),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("decided_at", moment, nullable=True),
        sa.Column("redeemed_at", moment, nullable=True),
        sa.UniqueConstraint(
            "domain_id", "user_code_hash", name="uq_device_authorizations_user_code"
        ),
    )
    op.create_index("ix_device_authorizations_expires_at", "device_authorizations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_device_authorizations_expires_at", table_name="device_authorizations")
    op.drop_table("device_authorizations")
