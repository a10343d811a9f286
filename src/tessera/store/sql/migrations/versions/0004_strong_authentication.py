"""Strong authentication (issue 15): second factors, use-once values, and the methods of a
sign-in.

`browser_sessions`, `authorization_codes` and `grants` gain `amr`, the RFC 8176 methods of the
sign-in (space-separated): existing rows were password sign-ins, so they take `pwd`. Apps gain
`mfa_policy` (none: the domain's). New tables hold a user's passkeys, authenticator app (TOTP)
and recovery codes, and the values accepted once across nodes (WebAuthn challenges, reset
links), with an index on their expiry for housekeeping.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_AMR_TABLES = ("browser_sessions", "authorization_codes", "grants")


def _domain() -> sa.Column[str]:
    return sa.Column(
        "domain_id", sa.String(64), sa.ForeignKey("domains.id"), nullable=False, primary_key=True
    )


def upgrade() -> None:
    # Plain ADD COLUMNs with defaults, not batch copies (see 0003).
    for table in _AMR_TABLES:
        op.add_column(table, sa.Column("amr", sa.String(200), nullable=False, server_default="pwd"))
    op.add_column("clients", sa.Column("mfa_policy", sa.String(16), nullable=True))

    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    op.create_table(
        "passkeys",
        _domain(),
        sa.Column("credential_id", sa.String(1400), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("aaguid", sa.String(64), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("last_used_at", moment, nullable=True),
    )
    op.create_index("ix_passkeys_user", "passkeys", ["domain_id", "user_id"])
    op.create_table(
        "totp_factors",
        _domain(),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("confirmed_at", moment, nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "recovery_codes",
        _domain(),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("code_hash", sa.String(128), primary_key=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("used_at", moment, nullable=True),
    )
    op.create_table(
        "used_nonces",
        _domain(),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("expires_at", moment, nullable=False),
    )
    op.create_index("ix_used_nonces_expires_at", "used_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_nonces_expires_at", table_name="used_nonces")
    op.drop_table("used_nonces")
    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
    op.drop_index("ix_passkeys_user", table_name="passkeys")
    op.drop_table("passkeys")
    # Batch copies (SQLite has no DROP COLUMN before 3.35): no table references these four.
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("mfa_policy")
    for table in _AMR_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("amr")
