"""Identity domains as tenants (docs/domains.md).

`domains` gains what a tenant needs: a display name, an optional host name of its own, a
disabled time, its settings and a version; names and hosts are unique. The existing domain
(the default, id `default`) becomes name `default` with its former name as display name, so an
existing deployment's data, tokens and clients stay where they are. Three indexes lead with
`domain_id` for the queries that list one domain's rows: signing keys, the revocation feed after
a sequence number, and the audit log newest first. Housekeeping deletes the expired rows of
every domain at once, in batches: the expiry columns it selects by get indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column) of each index housekeeping's deletes select by.
_EXPIRY = (
    ("refresh_tokens", "expires_at"),
    ("grants", "absolute_expiry"),
    ("grants", "revoked_at"),
    ("browser_sessions", "expires_at"),
    ("browser_sessions", "ended_at"),
    ("login_failures", "at"),
    ("signing_keys", "retire_after"),
)


def upgrade() -> None:
    # Plain ADD COLUMNs with defaults, not a batch copy: on SQLite a copy would drop the
    # `domains` table that every other table references.
    moment = tessera.store.sql.types.UTCDateTime(timezone=True)
    op.add_column(
        "domains", sa.Column("display_name", sa.String(200), nullable=False, server_default="")
    )
    op.add_column("domains", sa.Column("host", sa.String(253), nullable=True))
    op.add_column("domains", sa.Column("disabled_at", moment, nullable=True))
    op.add_column("domains", sa.Column("settings", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column("domains", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE domains SET display_name = name")
    op.execute("UPDATE domains SET name = 'default' WHERE id = 'default'")
    op.create_index("uq_domains_name", "domains", ["name"], unique=True)
    op.create_index("uq_domains_host", "domains", ["host"], unique=True)
    op.create_index("ix_signing_keys_domain", "signing_keys", ["domain_id"])
    op.create_index("ix_revocation_events_domain_seq", "revocation_events", ["domain_id", "seq"])
    op.create_index("ix_audit_events_domain_id", "audit_events", ["domain_id", "id"])
    for table, column in _EXPIRY:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in _EXPIRY:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
    op.drop_index("ix_audit_events_domain_id", table_name="audit_events")
    op.drop_index("ix_revocation_events_domain_seq", table_name="revocation_events")
    op.drop_index("ix_signing_keys_domain", table_name="signing_keys")
    op.drop_index("uq_domains_host", table_name="domains")
    op.drop_index("uq_domains_name", table_name="domains")
    with op.batch_alter_table("domains") as batch:
        for column in ("version", "settings", "disabled_at", "host", "display_name"):
            batch.drop_column(column)
