"""Trusted assertion issuers for the JWT bearer grant (issue 18, RFC 7523 §2.1).

A new table holds, per identity domain, the partner systems whose signed JWTs stand for the
domain's users: the issuer (unique per domain), its public keys (an inline JWK Set or a
`jwks_uri`), the apps that may present its assertions and the scopes their tokens may carry.
Assertions' `jti`s go to the existing `used_nonces` table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    op.create_table(
        "trusted_issuers",
        sa.Column(
            "domain_id",
            sa.String(64),
            sa.ForeignKey("domains.id"),
            nullable=False,
            primary_key=True,
        ),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.String(2048), nullable=True),
        sa.Column("allowed_apps", sa.JSON(), nullable=False),
        sa.Column("allowed_scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.UniqueConstraint("domain_id", "issuer", name="uq_trusted_issuers_issuer"),
    )


def downgrade() -> None:
    op.drop_table("trusted_issuers")
