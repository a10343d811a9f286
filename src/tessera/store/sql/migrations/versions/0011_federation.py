"""Sign-in through upstream OpenID Connect providers (issue 20, docs/federation.md).

New tables: `upstream_providers`, per identity domain the providers its users may sign in with
(name unique case-insensitively through `name_lower`, like groups; the client secret and our
`private_key_jwt` key sealed), and `federated_identities`, the links from an upstream account
(provider, `sub`) to a local user, with an index on the user. `browser_sessions` gain
`upstream_provider`, the provider of a federated sign-in (existing rows: signed in here).
`users` gain `email_verified`, whether the address is known to reach the user (existing rows:
false; only a verified address is linked by e-mail, docs/federation.md "Accounts").

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _domain_key() -> sa.Column[str]:
    return sa.Column(
        "domain_id", sa.String(64), sa.ForeignKey("domains.id"), nullable=False, primary_key=True
    )


def upgrade() -> None:
    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    # Plain ADD COLUMNs (nullable, or with a default), not batch copies (see 0003).
    op.add_column("browser_sessions", sa.Column("upstream_provider", sa.String(64), nullable=True))
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "upstream_providers",
        _domain_key(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_lower", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("private_key_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("username_claim", sa.String(200), nullable=False),
        sa.Column("email_claim", sa.String(200), nullable=False),
        sa.Column("name_claim", sa.String(200), nullable=False),
        sa.Column("groups_claim", sa.String(200), nullable=True),
        sa.Column("jit", sa.Boolean(), nullable=False),
        sa.Column("link_existing", sa.Boolean(), nullable=False),
        sa.Column("email_domains", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("domain_id", "name_lower", name="uq_upstream_providers_name"),
    )
    op.create_table(
        "federated_identities",
        _domain_key(),
        sa.Column("provider_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("last_used_at", moment, nullable=True),
    )
    op.create_index(
        "ix_federated_identities_user", "federated_identities", ["domain_id", "user_id"]
    )


def downgrade() -> None:
    op.drop_table("federated_identities")
    op.drop_table("upstream_providers")
    # Batch copies (SQLite has no DROP COLUMN before 3.35).
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified")
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_column("upstream_provider")
