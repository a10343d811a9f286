"""Groups, application roles and SCIM attributes of users (issue 19).

`users` gain what SCIM provisioning keeps (RFC 7643 §4.1): `external_id`, `given_name`,
`family_name`, the other attributes as JSON text (`attributes`), `updated_at` and a `version`
(SCIM's ETag; existing rows start at 1). `resources` gain their application roles (`roles`,
JSON) and `include_groups` (their tokens carry `groups`). New tables: `groups`,
`group_members` (users only: groups do not nest) and `role_grants` (a resource's role granted
to a user, a group or an app).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _domain_key() -> sa.Column[str]:
    return sa.Column(
        "domain_id", sa.String(64), sa.ForeignKey("domains.id"), nullable=False, primary_key=True
    )


def upgrade() -> None:
    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    # Plain ADD COLUMNs (nullable, or with a default), not batch copies (see 0003).
    op.add_column("users", sa.Column("external_id", sa.String(255), nullable=True))
    op.add_column("users", sa.Column("given_name", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("family_name", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("attributes", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("updated_at", moment, nullable=True))
    op.add_column("users", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("resources", sa.Column("roles", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "resources",
        sa.Column("include_groups", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "groups",
        _domain_key(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_lower", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("domain_id", "name_lower", name="uq_groups_name"),
    )
    op.create_table(
        "group_members",
        _domain_key(),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_group_members_user", "group_members", ["domain_id", "user_id"])
    op.create_table(
        "role_grants",
        _domain_key(),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(200), primary_key=True),
        sa.Column("principal_kind", sa.String(16), primary_key=True),
        sa.Column("principal_id", sa.String(200), primary_key=True),
        sa.Column("granted_at", moment, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=True),
    )
    op.create_index(
        "ix_role_grants_principal",
        "role_grants",
        ["domain_id", "principal_kind", "principal_id"],
    )


def downgrade() -> None:
    op.drop_table("role_grants")
    op.drop_table("group_members")
    op.drop_table("groups")
    # Batch copies (SQLite has no DROP COLUMN before 3.35).
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("include_groups")
        batch.drop_column("roles")
    with op.batch_alter_table("users") as batch:
        for column in ("version", "updated_at", "attributes", "family_name", "given_name"):
            batch.drop_column(column)
        batch.drop_column("external_id")
