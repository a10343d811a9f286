"""The entities of an identity domain (docs/architecture.md, "Data model").

Plain frozen dataclasses: the store persists them, the protocol core reads them. Secrets, codes
and tokens appear here only as hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_DOMAIN",
    "AuditEvent",
    "AuthorizationCode",
    "BrowserSession",
    "Client",
    "ClientKind",
    "Consent",
    "DeviceAuthorization",
    "FederatedIdentity",
    "Grant",
    "Group",
    "KeyState",
    "Passkey",
    "PrincipalKind",
    "PushedRequest",
    "RecoveryCode",
    "RefreshToken",
    "RegistrationToken",
    "Resource",
    "ResourceRole",
    "RevocationEvent",
    "RevocationKind",
    "RoleGrant",
    "SecretHash",
    "SigningKey",
    "TotpFactor",
    "TrustedIssuer",
    "UpstreamProvider",
    "User",
]

DEFAULT_DOMAIN = "default"


@dataclass(frozen=True, slots=True)
class User:
    id: str  # the `sub` of the user's tokens
    username: str
    password_hash: str
    display_name: str
    email: str | None
    is_admin: bool
    created_at: datetime
    password_changed_at: datetime
    disabled_at: datetime | None = None
    # SCIM (RFC 7643 §4.1): what provisioning systems keep here. `name` parts and `externalId`
    # have columns (searched often); the rest (nickName, title, phoneNumbers, the enterprise
    # extension, ...) is `attributes`, a JSON object as text, never holding a password.
    external_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    attributes: str | None = None
    updated_at: datetime | None = None  # None: never changed since `created_at`
    version: int = 1  # every change adds one: SCIM's ETag (RFC 7644 §3.14)
    # Whether `email` is known to reach this user (docs/federation.md, "Accounts"): set by an
    # administrator or provisioning, proven by a password reset, or verified upstream; a
    # user's own change leaves it False. Only a verified address is linked by e-mail.
    email_verified: bool = False

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def last_modified(self) -> datetime:
        return self.updated_at or self.created_at


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of users (docs/groups-and-roles.md): members are users only, groups do not
    nest. `name` is unique in the domain, compared case-insensitively (SCIM `displayName`)."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    external_id: str | None = None
    version: int = 1  # every change, members included, adds one (SCIM's ETag)


class PrincipalKind(StrEnum):
    """Who an application role is granted to."""

    USER = "user"
    GROUP = "group"  # every member of the group
    APP = "app"  # a trusted application itself: its client-credentials tokens


@dataclass(frozen=True, slots=True)
class ResourceRole:
    """An application role a resource declares (its `roles` claim's values, RFC 9068
    §2.2.3.1), and what it allows, for administrators to read."""

    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """One of a resource's roles granted to a user, a group or an app."""

    resource_id: str
    role: str
    principal_kind: PrincipalKind
    principal_id: str
    granted_at: datetime
    granted_by: str | None = None


class ClientKind(StrEnum):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class SecretHash:
    """A keyed hash of a client secret; `expires_at` is set on the previous one during rotation.

    `sealed` (AES-GCM under the domain's client-secret sealing key, bound to the client id) is
    kept only for `client_secret_jwt` apps, whose assertions are HMACs keyed with the secret
    itself (OIDC Core §9): every other app's secret is never recoverable."""

    hash: str
    created_at: datetime
    expires_at: datetime | None = None
    sealed: bytes | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """A trusted application."""

    client_id: str
    name: str
    kind: ClientKind
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    allowed_scopes: tuple[str, ...]
    created_at: datetime
    secret_hashes: tuple[SecretHash, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    access_ttl: int | None = None  # None: the default (3600 s)
    refresh_ttl: int | None = None  # None: the default
    first_party: bool = False  # skips consent (the admin console)
    # "off", "optional" or "required"; None: the domain's (the stricter of the two applies).
    mfa_policy: str | None = None
    version: int = 1
    # The audiences of the resources this app serves: it may introspect their tokens and read
    # the revocation feed (RFC 7662 §2.1, §4).
    resource_server_for: tuple[str, ...] = ()
    # RFC 7591 §2 metadata (docs/client-authentication.md). None: `client_secret_basic` for a
    # confidential app (which may send its secret either way), `none` for a public one.
    token_endpoint_auth_method: str | None = None
    token_endpoint_auth_signing_alg: str | None = None  # None: any the method allows
    jwks: str | None = None  # the app's public JWK Set (RFC 7517 §5), JSON text
    jwks_uri: str | None = None
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2
    id_token_signed_response_alg: str = "RS256"  # OIDC Registration §2: RS256 by default
    profile: str | None = None  # "fapi2": the FAPI 2.0 Security Profile's rules apply
    # RFC 7592 §3: the keyed hash of the registration access token of a registered app.
    registration_token_hash: str | None = None
    # Informational RFC 7591 §2 metadata (client_uri, logo_uri, contacts, ...), JSON text.
    details: str | None = None
    # RFC 8693 token exchange, as administrators decide it: the audiences of the resources the
    # app may exchange a user's token for, and whether it may impersonate (no `act`, §4.1).
    token_exchange_audiences: tuple[str, ...] = ()
    token_exchange_impersonation: bool = False

    @property
    def is_public(self) -> bool:
        return self.kind is ClientKind.PUBLIC

    @property
    def auth_method(self) -> str:
        """The `token_endpoint_auth_method` in force (RFC 7591 §2)."""
        if self.token_endpoint_auth_method is not None:
            return self.token_endpoint_auth_method
        return "none" if self.is_public else "client_secret_basic"

    @property
    def requires_par(self) -> bool:
        return self.require_pushed_authorization_requests or self.profile == "fapi2"

    @property
    def requires_dpop(self) -> bool:
        """RFC 9449 §5.2; FAPI 2.0 Security Profile §5.3.2.1: sender-constrained tokens."""
        return self.dpop_bound_access_tokens or self.profile == "fapi2"

    @property
    def is_resource_server(self) -> bool:
        return bool(self.resource_server_for)


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """An authorization request pushed by its client (RFC 9126 §2), redeemable once at the
    authorization endpoint before `expires_at` by the same client (§4)."""

    uri_hash: str  # SHA-256 of the request_uri's random part
    client_id: str
    params: tuple[tuple[str, str], ...]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """A device authorization request (RFC 8628 §3.1-§3.2): the app's request, waiting for a
    user to enter its user code and decide (§3.3), then redeemed once at the token endpoint
    (§3.4-§3.5). Both codes are kept as keyed hashes only."""

    device_code_hash: str
    user_code_hash: str  # of the normalised user code: unique in the domain
    client_id: str
    scopes: tuple[str, ...]  # canonical, as at the authorization endpoint
    audience: str | None
    created_at: datetime
    expires_at: datetime
    interval: int  # seconds between polls; raised by `slow_down` (§3.5)
    status: str = "pending"  # "pending", "approved" or "denied"
    polls: int = 0  # counts polls: the compare-and-set version of `last_polled_at`
    last_polled_at: datetime | None = None
    user_id: str | None = None  # the user who decided
    auth_time: datetime | None = None  # of the session that approved
    amr: tuple[str, ...] = ()
    session_id: str | None = None
    decided_at: datetime | None = None
    redeemed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    """An initial access token (RFC 7591 §3): lets its holder register apps, `max_uses` times
    at most (None: without limit) until `expires_at` (None: until revoked), with scopes among
    `allowed_scopes` (canonical; empty: any scope a registered app may have)."""

    id: str
    token_hash: str  # keyed hash; the token is shown once
    created_at: datetime
    expires_at: datetime | None = None
    max_uses: int | None = None
    uses: int = 0
    created_by: str | None = None
    description: str = ""
    revoked_at: datetime | None = None
    allowed_scopes: tuple[str, ...] = ()

    def usable(self, now: datetime) -> bool:
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and (self.max_uses is None or self.uses < self.max_uses)
        )


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """A partner system whose signed JWTs stand for users of the domain (RFC 7523 §2.1, the
    JWT bearer grant): its `issuer` (the assertions' `iss`, unique per domain), its public
    keys (`jwks`, a JWK Set as JSON text, or `jwks_uri`: exactly one), the apps that may
    present its assertions and the scopes those tokens may carry at most (canonical; empty:
    what the app may ask for)."""

    id: str
    issuer: str
    created_at: datetime
    updated_at: datetime
    jwks: str | None = None
    jwks_uri: str | None = None
    allowed_apps: tuple[str, ...] = ()
    allowed_scopes: tuple[str, ...] = ()
    created_by: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamProvider:
    """An OpenID Connect provider the domain's users may sign in with (docs/federation.md):
    discovered from its exact `issuer`; we are its client `client_id`, authenticating with
    `client_secret_basic`, `client_secret_post` or `private_key_jwt`. The client secret
    (`secret_sealed`) and our private key for `private_key_jwt` (`private_key_sealed`, a PEM)
    are sealed like signing keys, bound to the provider's id. `name` is the slug in its URLs
    (unique in the domain); `email_domains` send users with those e-mail domains straight to
    it (home-realm discovery, unique across the domain's providers)."""

    id: str
    name: str
    display_name: str
    issuer: str
    client_id: str
    auth_method: str  # client_secret_basic, client_secret_post or private_key_jwt
    created_at: datetime
    updated_at: datetime
    secret_sealed: bytes | None = None
    private_key_sealed: bytes | None = None
    key_id: str | None = None  # the `kid` of our key for private_key_jwt
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    # Claim mapping: which upstream claims give the username, e-mail, display name, groups.
    username_claim: str = "preferred_username"
    email_claim: str = "email"
    name_claim: str = "name"
    groups_claim: str | None = None  # None: no group mapping
    jit: bool = True  # create an account on a first sign-in
    link_existing: bool = False  # link to an account with the same verified e-mail
    # The groups claim is the whole truth: a membership this provider made ends when a
    # sign-in's groups claim no longer names the group (docs/federation.md, "Groups").
    sync_groups: bool = False
    email_domains: tuple[str, ...] = ()
    enabled: bool = True
    created_by: str | None = None
    description: str = ""
    version: int = 1


@dataclass(frozen=True, slots=True)
class FederatedIdentity:
    """A user's account at an upstream provider: (`provider_id`, `subject`) is unique in the
    domain and names one local user."""

    provider_id: str
    subject: str  # the upstream `sub`
    user_id: str
    created_at: datetime
    email: str | None = None  # the upstream e-mail when linked or last seen
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource server: its primary audience and the scopes it defines."""

    id: str
    name: str
    audience: str
    scopes: tuple[str, ...]
    created_at: datetime
    access_ttl: int | None = None
    signing_alg: str = "ES256"
    roles: tuple[ResourceRole, ...] = ()  # its application roles
    # Whether its access tokens carry the user's `groups` (RFC 9068 §2.2.3.1); `roles` they
    # carry whenever the resource declares roles.
    include_groups: bool = False

    def declares(self, role: str) -> bool:
        return any(r.name == role for r in self.roles)


@dataclass(frozen=True, slots=True)
class Passkey:
    """A WebAuthn credential (W3C WebAuthn Level 3 §6.1) registered by a user."""

    credential_id: str  # base64url, unique in the domain
    user_id: str
    name: str
    public_key: bytes  # COSE_Key
    sign_count: int
    created_at: datetime
    aaguid: str = ""
    transports: tuple[str, ...] = ()
    backed_up: bool = False  # a synced passkey: amr `swk` rather than `hwk`
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TotpFactor:
    """A user's RFC 6238 authenticator app; usable once `confirmed_at` is set."""

    user_id: str
    secret_sealed: bytes  # AES-GCM under the domain's factor key, bound to the user id
    created_at: datetime
    confirmed_at: datetime | None = None
    last_step: int = 0  # the last time step accepted: a code is accepted once


@dataclass(frozen=True, slots=True)
class RecoveryCode:
    user_id: str
    code_hash: str  # keyed hash; the code is shown once
    created_at: datetime
    used_at: datetime | None = None


class KeyState(StrEnum):
    NEXT = "next"  # published, not yet signing
    ACTIVE = "active"  # signing
    RETIRED = "retired"  # published until the tokens it signed expire


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_key_enc: bytes  # AES-GCM under the key-encryption key
    public_jwk: dict[str, Any]
    state: KeyState
    created_at: datetime
    activated_at: datetime | None = None
    retire_after: datetime | None = None  # for RETIRED keys: drop from the JWKS after this


@dataclass(frozen=True, slots=True)
class Consent:
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    granted_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BrowserSession:
    id_hash: str
    user_id: str
    auth_time: datetime
    expires_at: datetime
    csrf_secret: str
    ended_at: datetime | None = None
    # RFC 8176 methods of the sign-in, in the order they were used; `auth_time` is the last
    # one's time (a second factor or a step-up moves it).
    amr: tuple[str, ...] = ("pwd",)
    # The id of the upstream provider the user signed in with (None: signed in here).
    upstream_provider: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    audience: str | None
    auth_time: datetime
    expires_at: datetime
    grant_id: str
    issued_at: datetime  # compared with the user's revocation cut-off at redemption
    code_challenge: str | None = None
    nonce: str | None = None
    session_id: str | None = None
    consumed_at: datetime | None = None
    amr: tuple[str, ...] = ("pwd",)
    # RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (`dpop_jkt`, or the
    # key of a DPoP proof sent to the PAR endpoint, §10.1).
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A refresh family: what one code redemption started."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    audience: str | None
    auth_time: datetime
    created_at: datetime
    absolute_expiry: datetime
    session_id: str | None = None
    revoked_at: datetime | None = None
    amr: tuple[str, ...] = ("pwd",)
    # RFC 9449 §5: a public app's refresh tokens are bound to the DPoP key of the proof that
    # redeemed the code; every refresh of the family needs a proof with that key.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    grant_id: str
    issued_at: datetime
    expires_at: datetime  # inactivity expiry of this member
    parent_hash: str | None = None
    used_at: datetime | None = None
    successor_hash: str | None = None


class RevocationKind(StrEnum):
    JTI = "jti"  # one access token
    GRANT = "grant"  # a grant / refresh family (the token's `sid`)
    SUBJECT = "subject"  # every token of a subject issued before `not_before`


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    seq: int
    kind: RevocationKind
    key: str
    not_before: datetime  # for SUBJECT: tokens with iat before this are revoked
    expires_at: datetime  # kept until what it covers has expired
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    type: str
    at: datetime
    actor: str | None = None
    user_id: str | None = None
    client_id: str | None = None
    ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
