"""The SQL schema (SQLAlchemy Core). Alembic migrations in `migrations/` create exactly this;
`tests/unit/store/test_migrations.py` checks that they agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from tessera.store.sql.types import UTCDateTime

__all__ = [
    "NONCE_KEY_LENGTH",
    "audit_events",
    "authorization_codes",
    "browser_sessions",
    "clients",
    "consents",
    "device_authorizations",
    "domains",
    "federated_identities",
    "grants",
    "group_members",
    "groups",
    "login_failures",
    "metadata",
    "passkeys",
    "pushed_requests",
    "recovery_codes",
    "refresh_tokens",
    "registration_tokens",
    "resources",
    "revocation_events",
    "role_grants",
    "signing_keys",
    "totp_factors",
    "trusted_issuers",
    "upstream_providers",
    "used_nonces",
    "users",
]

metadata = MetaData()

_ID = 64
_HASH = 64
_JKT = 64  # an RFC 7638 SHA-256 thumbprint is 43 characters
NONCE_KEY_LENGTH = 200  # `used_nonces.key`: callers hash what could be longer


def _domain(*, primary_key: bool = False) -> Column[str]:
    return Column(
        "domain_id", String(_ID), ForeignKey("domains.id"), nullable=False, primary_key=primary_key
    )


def _amr() -> Column[str]:
    """RFC 8176 methods, space-separated (`BrowserSession.amr`); rows written before they were
    kept are password sign-ins."""
    return Column("amr", String(200), nullable=False, server_default="pwd")


domains = Table(
    "domains",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("host", String(253)),
    Column("disabled_at", UTCDateTime()),
    Column("settings", JSON, nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False, server_default="1"),
    Index("uq_domains_name", "name", unique=True),
    Index("uq_domains_host", "host", unique=True),
)

users = Table(
    "users",
    metadata,
    Column("id", String(_ID), primary_key=True),
    _domain(),
    Column("username", String(200), nullable=False),
    Column("username_lower", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("email", String(320)),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    # SCIM (RFC 7643 §4.1), migration 0010: `User` says what each holds.
    Column("external_id", String(255)),
    Column("given_name", String(200)),
    Column("family_name", String(200)),
    Column("attributes", Text),
    Column("updated_at", UTCDateTime()),
    Column("version", Integer, nullable=False, server_default="1"),
    # Migration 0011 (docs/federation.md, "Accounts").
    Column("email_verified", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("domain_id", "username_lower", name="uq_users_username"),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(_ID), primary_key=True),
    _domain(),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("secret_hashes", JSON, nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("post_logout_redirect_uris", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("allowed_scopes", JSON, nullable=False),
    Column("access_ttl", Integer),
    Column("refresh_ttl", Integer),
    Column("first_party", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("resource_server_for", JSON, nullable=False),
    Column("mfa_policy", String(16)),
    # RFC 7591 §2 metadata (issue 16); rows written before keep the defaults.
    Column("token_endpoint_auth_method", String(32)),
    Column("token_endpoint_auth_signing_alg", String(16)),
    Column("jwks", Text),  # JSON text, kept as the app gave it
    Column("jwks_uri", String(2048)),
    Column(
        "require_pushed_authorization_requests",
        Boolean,
        nullable=False,
        server_default=false(),
    ),
    Column("dpop_bound_access_tokens", Boolean, nullable=False, server_default=false()),
    Column("id_token_signed_response_alg", String(16), nullable=False, server_default="RS256"),
    Column("profile", String(16)),
    Column("registration_token_hash", String(_HASH)),
    Column("details", Text),  # JSON text
    # RFC 8693 token exchange policy (0009); rows written before may exchange for nothing.
    Column("token_exchange_audiences", JSON),
    Column("token_exchange_impersonation", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("domain_id", "name", name="uq_clients_name"),
)

resources = Table(
    "resources",
    metadata,
    Column("id", String(_ID), primary_key=True),
    _domain(),
    Column("name", String(200), nullable=False),
    Column("audience", String(2000), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("access_ttl", Integer),
    Column("signing_alg", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Its application roles, [{"name", "description"}], and whether its tokens carry `groups`
    # (migration 0010).
    Column("roles", JSON, nullable=False, server_default="[]"),
    Column("include_groups", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("domain_id", "audience", name="uq_resources_audience"),
    UniqueConstraint("domain_id", "name", name="uq_resources_name"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(_ID), primary_key=True),
    _domain(),
    Column("alg", String(16), nullable=False),
    Column("private_key_enc", LargeBinary, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime()),
    Column("retire_after", UTCDateTime()),
    Index("ix_signing_keys_domain", "domain_id"),
    # Housekeeping finds the expired rows of every domain at once (`sql.domains`) by these.
    Index("ix_signing_keys_retire_after", "retire_after"),
)

browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("id_hash", String(_HASH), primary_key=True),
    _domain(),
    Column("user_id", String(_ID), nullable=False, index=True),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("csrf_secret", String(_HASH), nullable=False),
    Column("ended_at", UTCDateTime()),
    _amr(),
    # The id of the upstream provider of a federated sign-in (migration 0011).
    Column("upstream_provider", String(_ID)),
    Index("ix_browser_sessions_expires_at", "expires_at"),
    Index("ix_browser_sessions_ended_at", "ended_at"),
)

consents = Table(
    "consents",
    metadata,
    _domain(),
    Column("user_id", String(_ID), primary_key=True),
    Column("client_id", String(_ID), primary_key=True),
    Column("scopes", JSON, nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(_HASH), primary_key=True),
    _domain(),
    Column("client_id", String(_ID), nullable=False),
    Column("user_id", String(_ID), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("audience", String(2000)),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("grant_id", String(_ID), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("code_challenge", String(128)),
    Column("nonce", String(512)),
    Column("session_id", String(_HASH)),
    Column("consumed_at", UTCDateTime()),
    _amr(),
    Column("dpop_jkt", String(_JKT)),  # RFC 9449 §10
)

grants = Table(
    "grants",
    metadata,
    Column("grant_id", String(_ID), primary_key=True),
    _domain(),
    Column("client_id", String(_ID), nullable=False, index=True),
    Column("user_id", String(_ID), nullable=False, index=True),
    Column("scopes", JSON, nullable=False),
    Column("audience", String(2000)),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("absolute_expiry", UTCDateTime(), nullable=False),
    Column("session_id", String(_HASH)),
    Column("revoked_at", UTCDateTime()),
    _amr(),
    Column("dpop_jkt", String(_JKT)),  # RFC 9449 §5: a public app's refresh family
    Index("ix_grants_absolute_expiry", "absolute_expiry"),
    Index("ix_grants_revoked_at", "revoked_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(_HASH), primary_key=True),
    _domain(),
    Column("grant_id", String(_ID), nullable=False, index=True),
    Column("parent_hash", String(_HASH)),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    Column("successor_hash", String(_HASH)),
    Index("ix_refresh_tokens_expires_at", "expires_at"),
)

revocation_events = Table(
    "revocation_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    _domain(),
    Column("kind", String(16), nullable=False),
    Column("key", String(_ID), nullable=False),
    Column("not_before", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # A code's redemption looks up its user's subject cut-offs.
    Index("ix_revocation_events_kind_key", "domain_id", "kind", "key"),
    # The feed reads one domain's events after a sequence number.
    Index("ix_revocation_events_domain_seq", "domain_id", "seq"),
    sqlite_autoincrement=True,  # never reuse a sequence number, even after a purge
)

login_failures = Table(
    "login_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    _domain(),
    Column("key", String(300), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_failures_key_at", "domain_id", "key", "at"),
    Index("ix_login_failures_at", "at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    _domain(),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", String(200)),
    Column("user_id", String(_ID), index=True),
    Column("client_id", String(_ID), index=True),
    Column("ip", String(64)),
    Column("details", JSON, nullable=False),
    # One domain's log, newest first.
    Index("ix_audit_events_domain_id", "domain_id", "id"),
    sqlite_autoincrement=True,
)

# --- second factors and use-once values (issue 15) ---------------------------------------------

passkeys = Table(
    "passkeys",
    metadata,
    _domain(primary_key=True),
    # base64url of at most 1023 bytes (W3C WebAuthn Level 3 §5.1: credential IDs).
    Column("credential_id", String(1400), primary_key=True),
    Column("user_id", String(_ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("aaguid", String(64), nullable=False),
    Column("transports", JSON, nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Index("ix_passkeys_user", "domain_id", "user_id"),
)

totp_factors = Table(
    "totp_factors",
    metadata,
    _domain(primary_key=True),
    Column("user_id", String(_ID), primary_key=True),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime()),
    Column("last_step", BigInteger, nullable=False),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    _domain(primary_key=True),
    Column("user_id", String(_ID), primary_key=True),
    Column("code_hash", String(128), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

used_nonces = Table(
    "used_nonces",
    metadata,
    _domain(primary_key=True),
    Column("key", String(NONCE_KEY_LENGTH), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    # Housekeeping deletes the expired values of every domain at once.
    Index("ix_used_nonces_expires_at", "expires_at"),
)

# --- client authentication and registration (issue 16) -----------------------------------------

pushed_requests = Table(
    "pushed_requests",
    metadata,
    _domain(primary_key=True),
    Column("uri_hash", String(_HASH), primary_key=True),
    Column("client_id", String(_ID), nullable=False),
    Column("params", JSON, nullable=False),  # [[name, value], ...], in the order pushed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    # Housekeeping deletes the expired requests of every domain at once.
    Index("ix_pushed_requests_expires_at", "expires_at"),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    _domain(primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("token_hash", String(_HASH), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False),
    Column("created_by", String(200)),
    Column("description", String(500), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("allowed_scopes", JSON, nullable=False),  # canonical; []: any registrable scope
    UniqueConstraint("domain_id", "token_hash", name="uq_registration_tokens_hash"),
    # Housekeeping deletes the expired or revoked tokens of every domain at once.
    Index("ix_registration_tokens_expires_at", "expires_at"),
    Index("ix_registration_tokens_revoked_at", "revoked_at"),
)

trusted_issuers = Table(
    "trusted_issuers",
    metadata,
    _domain(primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("issuer", String(1024), nullable=False),  # an assertion's `iss`, RFC 7523 §3 item 1
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("jwks", Text),  # a public JWK Set as JSON text; or:
    Column("jwks_uri", String(2048)),
    Column("allowed_apps", JSON, nullable=False),  # client ids
    Column("allowed_scopes", JSON, nullable=False),  # canonical; []: what the app may ask for
    Column("created_by", String(200)),
    Column("description", String(500), nullable=False),
    UniqueConstraint("domain_id", "issuer", name="uq_trusted_issuers_issuer"),
)


# --- device authorization (issue 18, RFC 8628) --------------------------------------------------

device_authorizations = Table(
    "device_authorizations",
    metadata,
    _domain(primary_key=True),
    Column("device_code_hash", String(_HASH), primary_key=True),  # keyed hash
    Column("user_code_hash", String(_HASH), nullable=False),  # keyed hash, normalised code
    Column("client_id", String(_ID), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("audience", String(2000)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("interval", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("polls", Integer, nullable=False),
    Column("last_polled_at", UTCDateTime()),
    Column("user_id", String(_ID)),
    Column("auth_time", UTCDateTime()),
    Column("amr", String(200), nullable=False, server_default=""),
    Column("session_id", String(_HASH)),
    Column("decided_at", UTCDateTime()),
    Column("redeemed_at", UTCDateTime()),
    UniqueConstraint("domain_id", "user_code_hash", name="uq_device_authorizations_user_code"),
    # Housekeeping deletes the expired requests of every domain at once.
    Index("ix_device_authorizations_expires_at", "expires_at"),
)


# --- groups and application roles (migration 0010) ---------------------------------------------

groups = Table(
    "groups",
    metadata,
    _domain(primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_lower", String(200), nullable=False),
    Column("description", String(500), nullable=False),
    Column("external_id", String(255)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("domain_id", "name_lower", name="uq_groups_name"),
)

group_members = Table(
    "group_members",
    metadata,
    _domain(primary_key=True),
    Column("group_id", String(_ID), primary_key=True),
    Column("user_id", String(_ID), primary_key=True),
    # The upstream provider whose sign-in made the membership (None: an administrator or
    # SCIM did); its sign-ins may end it (migration 0012, docs/federation.md "Groups").
    Column("provider_id", String(_ID)),
    Index("ix_group_members_user", "domain_id", "user_id"),
)

role_grants = Table(
    "role_grants",
    metadata,
    _domain(primary_key=True),
    Column("resource_id", String(_ID), primary_key=True),
    Column("role", String(200), primary_key=True),
    Column("principal_kind", String(16), primary_key=True),  # user, group or app
    Column("principal_id", String(200), primary_key=True),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("granted_by", String(200)),
    # A token's roles: the grants of one resource to a user, their groups or an app.
    Index("ix_role_grants_principal", "domain_id", "principal_kind", "principal_id"),
)


# --- federation: upstream OpenID providers (migration 0011, docs/federation.md) ----------------

upstream_providers = Table(
    "upstream_providers",
    metadata,
    _domain(primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("name", String(_ID), nullable=False),  # the slug in its URLs
    Column("name_lower", String(_ID), nullable=False),  # unique case-insensitively
    Column("display_name", String(200), nullable=False),
    Column("issuer", String(1024), nullable=False),  # OIDC Discovery 1.0 §4.3: exact
    Column("client_id", String(255), nullable=False),
    Column("auth_method", String(32), nullable=False),
    Column("secret_sealed", LargeBinary),
    Column("private_key_sealed", LargeBinary),
    Column("key_id", String(_JKT)),
    Column("scopes", JSON, nullable=False),
    Column("username_claim", String(200), nullable=False),
    Column("email_claim", String(200), nullable=False),
    Column("name_claim", String(200), nullable=False),
    Column("groups_claim", String(200)),
    Column("jit", Boolean, nullable=False),
    Column("link_existing", Boolean, nullable=False),
    Column("sync_groups", Boolean, nullable=False, server_default=false()),  # migration 0012
    Column("email_domains", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("created_by", String(200)),
    Column("description", String(500), nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("domain_id", "name_lower", name="uq_upstream_providers_name"),
)

federated_identities = Table(
    "federated_identities",
    metadata,
    _domain(primary_key=True),
    Column("provider_id", String(_ID), primary_key=True),
    Column("subject", String(255), primary_key=True),  # OIDC Core §2: `sub` ≤ 255 ASCII chars
    Column("user_id", String(_ID), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("email", String(320)),
    Column("last_used_at", UTCDateTime()),
    # A user's links (the account page; deleting the user).
    Index("ix_federated_identities_user", "domain_id", "user_id"),
)
