"""The initial schema: domains, users, trusted applications, resources, signing keys, and the
artifacts of the authorization code flow.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

import tessera.store.sql.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In the order autogenerate wrote them: `domains`, which every table names, first.
    _domains()
    _audit_events()
    _authorization_codes()
    _browser_sessions()
    _clients()
    _consents()
    _grants()
    _login_failures()
    _refresh_tokens()
    _resources()
    _revocation_events()
    _signing_keys()
    _users()


def _domains() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(op.f("ix_audit_events_client_id"), "audit_events", ["client_id"], unique=False)
    op.create_index(op.f("ix_audit_events_user_id"), "audit_events", ["user_id"], unique=False)


def _authorization_codes() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=2000), nullable=True),
        sa.Column("auth_time", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("consumed_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index(
        op.f("ix_authorization_codes_expires_at"),
        "authorization_codes",
        ["expires_at"],
        unique=False,
    )


def _browser_sessions() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("auth_time", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("ended_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index(
        op.f("ix_browser_sessions_user_id"), "browser_sessions", ["user_id"], unique=False
    )


def _clients() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("secret_hashes", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("allowed_scopes", sa.JSON(), nullable=False),
        sa.Column("access_ttl", sa.Integer(), nullable=True),
        sa.Column("refresh_ttl", sa.Integer(), nullable=True),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("client_id"),
        sa.UniqueConstraint("domain_id", "name", name="uq_clients_name"),
    )


def _consents() -> None:
    op.create_table(
        "consents",
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("granted_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("user_id", "client_id"),
    )


def _grants() -> None:
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=2000), nullable=True),
        sa.Column("auth_time", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "absolute_expiry", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_index(op.f("ix_grants_client_id"), "grants", ["client_id"], unique=False)
    op.create_index(op.f("ix_grants_user_id"), "grants", ["user_id"], unique=False)


def _login_failures() -> None:
    op.create_table(
        "login_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_login_failures_key_at", "login_failures", ["domain_id", "key", "at"], unique=False
    )


def _refresh_tokens() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("parent_hash", sa.String(length=64), nullable=True),
        sa.Column("issued_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("successor_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_refresh_tokens_grant_id"), "refresh_tokens", ["grant_id"], unique=False
    )


def _resources() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("audience", sa.String(length=2000), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("access_ttl", sa.Integer(), nullable=True),
        sa.Column("signing_alg", sa.String(length=16), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "audience", name="uq_resources_audience"),
        sa.UniqueConstraint("domain_id", "name", name="uq_resources_name"),
    )


def _revocation_events() -> None:
    op.create_table(
        "revocation_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("not_before", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_revocation_events_expires_at"), "revocation_events", ["expires_at"], unique=False
    )


def _signing_keys() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "activated_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "retire_after", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("kid"),
    )


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("username_lower", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "password_changed_at",
            tessera.store.sql.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("disabled_at", tessera.store.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "username_lower", name="uq_users_username"),
    )


def downgrade() -> None:
    for table in (
        "login_failures",
        "revocation_events",
        "refresh_tokens",
        "grants",
        "authorization_codes",
        "consents",
        "browser_sessions",
        "signing_keys",
        "resources",
        "clients",
        "users",
        "audit_events",
        "domains",
    ):
        op.drop_table(table)
