"""Client authentication, pushed requests and registration (issue 16).

Apps gain their RFC 7591 §2 metadata: the token endpoint authentication method and its signing
algorithm, their public keys (`jwks`, `jwks_uri`), `require_pushed_authorization_requests`
(RFC 9126 §6), `dpop_bound_access_tokens` (RFC 9449 §5.2), `id_token_signed_response_alg`,
the FAPI 2.0 `profile`, the hash of the RFC 7592 registration access token and informational
`details`. Existing apps keep working: every new column is empty or takes its default (no
method: the one their kind implies; ID tokens RS256). New tables hold pushed authorization
requests (RFC 9126) and initial access tokens (RFC 7591 §3, with the scopes they may grant),
with indexes on their expiry for housekeeping.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_CLIENT_COLUMNS = (
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "id_token_signed_response_alg",
    "profile",
    "registration_token_hash",
    "details",
)


def _domain() -> sa.Column[str]:
    return sa.Column(
        "domain_id", sa.String(64), sa.ForeignKey("domains.id"), nullable=False, primary_key=True
    )


def upgrade() -> None:
    # Plain ADD COLUMNs with defaults, not batch copies (see 0003).
    for column in (
        sa.Column("token_endpoint_auth_method", sa.String(32), nullable=True),
        sa.Column("token_endpoint_auth_signing_alg", sa.String(16), nullable=True),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.String(2048), nullable=True),
        sa.Column(
            "require_pushed_authorization_requests",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
        ),
        sa.Column(
            "dpop_bound_access_tokens", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
        sa.Column(
            "id_token_signed_response_alg", sa.String(16), nullable=False, server_default="RS256"
        ),
        sa.Column("profile", sa.String(16), nullable=True),
        sa.Column("registration_token_hash", sa.String(64), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
    ):
        op.add_column("clients", column)

    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    op.create_table(
        "pushed_requests",
        _domain(),
        sa.Column("uri_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("expires_at", moment, nullable=False),
        sa.Column("used_at", moment, nullable=True),
    )
    op.create_index("ix_pushed_requests_expires_at", "pushed_requests", ["expires_at"])
    op.create_table(
        "registration_tokens",
        _domain(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("expires_at", moment, nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("revoked_at", moment, nullable=True),
        sa.Column("allowed_scopes", sa.JSON(), nullable=False),
        sa.UniqueConstraint("domain_id", "token_hash", name="uq_registration_tokens_hash"),
    )
    op.create_index("ix_registration_tokens_expires_at", "registration_tokens", ["expires_at"])
    op.create_index("ix_registration_tokens_revoked_at", "registration_tokens", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_registration_tokens_revoked_at", table_name="registration_tokens")
    op.drop_index("ix_registration_tokens_expires_at", table_name="registration_tokens")
    op.drop_table("registration_tokens")
    op.drop_index("ix_pushed_requests_expires_at", table_name="pushed_requests")
    op.drop_table("pushed_requests")
    # A batch copy (SQLite has no DROP COLUMN before 3.35): no table references `clients`.
    with op.batch_alter_table("clients") as batch:
        for name in reversed(_CLIENT_COLUMNS):
            batch.drop_column(name)
