"""DPoP-bound codes and refresh families (issue 17, RFC 9449).

`authorization_codes` gain `dpop_jkt`, the thumbprint of the DPoP key a code is bound to
(RFC 9449 §10: the `dpop_jkt` authorization request parameter, or a proof sent to the PAR
endpoint, §10.1); `grants` gain `dpop_jkt`, the key a public app's refresh family is bound to
(§5). Existing rows are not bound: the columns are empty. FAPI 2.0 apps now require
sender-constrained tokens (Security Profile §5.3.2.1): their `dpop_bound_access_tokens` (which
came in 0005) is turned on. Proofs' `jti`s go to the existing `used_nonces` table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("authorization_codes", "grants")


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, no default), not batch copies (see 0003).
    for table in _TABLES:
        op.add_column(table, sa.Column("dpop_jkt", sa.String(64), nullable=True))
    clients = sa.table("clients", sa.column("profile"), sa.column("dpop_bound_access_tokens"))
    op.execute(
        clients.update()
        .where(clients.c.profile == "fapi2")
        .values(dpop_bound_access_tokens=sa.true())
    )


def downgrade() -> None:
    # The FAPI 2.0 apps keep `dpop_bound_access_tokens` on (an app may have asked for it).
    # Batch copies (SQLite has no DROP COLUMN before 3.35).
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("dpop_jkt")
