"""The admin API's response bodies, for its OpenAPI description.

The views of `tessera.manage.views` (shared with the CLI's `--json`) are the bodies; these
models describe them field for field, and FastAPI checks every answer against them. Times are
ISO 8601 strings as the views write them. Errors are RFC 9457 problems (`Problem`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

__all__ = [
    "AppOut",
    "AppTokensRevoked",
    "AppWithSecretOut",
    "AuditPage",
    "AuthenticatorAppOut",
    "ConsentOut",
    "ConsentRevoked",
    "Deleted",
    "DomainAdminOut",
    "DomainCreatedOut",
    "DomainDeleted",
    "DomainOut",
    "DomainPage",
    "EventOut",
    "FactorsOut",
    "FactorsRemoved",
    "FactorsResetOut",
    "GrantOut",
    "GrantRevoked",
    "GroupDeleted",
    "GroupListItem",
    "GroupOut",
    "KeyOut",
    "KeyRotated",
    "PasskeyOut",
    "Problem",
    "RecoveryCodesOut",
    "ResourceOut",
    "RoleGrantOut",
    "RoleRevokedOut",
    "SessionOut",
    "SessionsEnded",
    "SignInPolicyOut",
    "UserAccessOut",
    "UserDeleted",
    "UserOut",
    "UserTokensRevoked",
    "problems",
]

Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class UserOut(BaseModel):
    id: str = Field(description="The `sub` of the user's tokens")
    username: str
    display_name: str
    email: str | None
    email_verified: bool = Field(
        description="Whether the address is known to reach the user: set by an administrator "
        "or provisioning, proven by a password reset, or verified upstream (docs/federation.md)"
    )
    is_admin: bool
    disabled: bool
    created_at: Time | None
    password_changed_at: Time | None


class ResourceRoleOut(BaseModel):
    name: str
    description: str


class ResourceOut(BaseModel):
    id: str
    name: str
    audience: str
    scopes: list[str]
    oracle_scopes: list[str] = Field(description="The scopes in Oracle's form `<audience><scope>`")
    access_token_ttl: int | None = Field(description="The access-token lifetime cap, seconds")
    signing_alg: str
    created_at: Time | None
    roles: list[ResourceRoleOut] = Field(description="The application roles it declares")
    include_groups: bool = Field(
        description="Its access tokens carry the user's group names (`groups` claim)"
    )


class SecretOut(BaseModel):
    created_at: Time | None
    expires_at: Time | None = Field(description="Set on the previous secret during a rotation")


class AppOut(BaseModel):
    client_id: str
    name: str
    type: str = Field(description="`confidential` or `public`")
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: list[str]
    access_token_ttl: int | None
    refresh_token_ttl: int | None
    first_party: bool
    resource_server_for: list[str] = Field(description="Audiences this app is the server of")
    token_exchange_audiences: list[str] = Field(
        [], description="Audiences it may exchange users' access tokens for (RFC 8693)"
    )
    token_exchange_impersonation: bool = Field(
        False, description="Its exchanged tokens carry no `act` (RFC 8693 §4.1)"
    )
    mfa_policy: str | None = Field(
        description="`off`, `optional` or `required`; `null`: the domain's (the stricter applies)"
    )
    created_at: Time | None
    version: int
    secrets: list[SecretOut] = Field(description="When each valid secret was made; never one")
    # RFC 7591 §2 client metadata (docs/client-authentication.md).
    token_endpoint_auth_method: str = Field(
        description="`client_secret_basic`, `client_secret_post`, `client_secret_jwt`, "
        "`private_key_jwt` or `none`: the one the token endpoint accepts"
    )
    token_endpoint_auth_signing_alg: str | None = Field(
        description="The one algorithm of its assertions; `null`: any of its method's"
    )
    jwks: dict[str, Any] | None = Field(description="Its public JWK Set, when given inline")
    jwks_uri: str | None
    require_pushed_authorization_requests: bool = Field(
        description="It must push its authorization requests (RFC 9126); always under FAPI 2.0"
    )
    dpop_bound_access_tokens: bool = Field(
        description="Its token requests must carry a DPoP proof (RFC 9449 §5.2); always under "
        "FAPI 2.0"
    )
    id_token_signed_response_alg: str = Field(description="`RS256` or `ES256`")
    profile: str | None = Field(description="`fapi2`: the FAPI 2.0 Security Profile applies")
    dynamically_registered: bool = Field(
        description="Registered through the registration endpoint (RFC 7591)"
    )
    client_uri: str | None
    logo_uri: str | None
    tos_uri: str | None
    policy_uri: str | None
    contacts: list[str]
    software_id: str | None
    software_version: str | None


class AppWithSecretOut(AppOut):
    # Answered with `response_model_exclude_unset`: a public app's answer has no secret.
    client_secret: str | None = Field(
        None,
        description="Shown this once; absent: an app without a secret (public, private_key_jwt)",
    )


class GrantOut(BaseModel):
    grant_id: str
    client_id: str
    user_id: str
    scopes: list[str]
    audience: str | None
    auth_time: Time | None
    created_at: Time | None
    absolute_expiry: Time | None


class ConsentOut(BaseModel):
    user_id: str
    client_id: str
    scopes: list[str]
    granted_at: Time | None


class SessionOut(BaseModel):
    id: str = Field(description="A hash of the session id, never the cookie's value")
    user_id: str
    auth_time: Time | None
    expires_at: Time | None
    amr: list[str] = Field(description="How the user signed in (RFC 8176 methods; fed: upstream)")
    upstream_provider: str | None = Field(
        None, description="The upstream provider (its name) of a federated sign-in"
    )


class EventOut(BaseModel):
    id: int | None
    type: str
    at: Time | None
    actor: str | None
    user_id: str | None
    client_id: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    events: list[EventOut]
    next_before_id: int | None = Field(description="`before_id` of the next page; `null`: last")


class KeyOut(BaseModel):
    kid: str
    alg: str
    state: str = Field(description="`next`, `active` or `retired`")
    created_at: Time | None
    activated_at: Time | None
    retire_after: Time | None


class KeyRotated(BaseModel):
    alg: str
    active: str = Field(description="The kid now signing")
    next: str = Field(description="The kid published for the next rotation")


class UserDeleted(BaseModel):
    deleted: str = Field(description="The deleted user's id")
    username: str


class Deleted(BaseModel):
    deleted: str = Field(description="The id of what was deleted")


class ConsentRevoked(BaseModel):
    revoked: bool


class GrantRevoked(BaseModel):
    revoked: str = Field(description="The revoked grant's id")


class SessionsEnded(BaseModel):
    ended: int


class UserTokensRevoked(BaseModel):
    user_id: str
    sessions: int
    grants: int
    event_seq: int = Field(description="The revocation feed's event that covers the tokens")


class AppTokensRevoked(BaseModel):
    client_id: str
    grants: int


class DomainOut(BaseModel):
    """An identity domain (`tessera.manage.domains.domain_view`)."""

    id: str
    name: str = Field(description="Its path segment: `<base>/domains/<name>`")
    display_name: str = Field(description="What its sign-in pages and errors show")
    issuer: str
    host: str | None = Field(description="A host name of its own: issuer `https://<host>`")
    enabled: bool
    default: bool = Field(description="The default domain, where the operators are")
    created_at: Time
    disabled_at: Time | None
    settings: dict[str, bool | int | str] = Field(
        description="The settings it sets (seconds, characters; `mfa_policy` a word, "
        "`admin_mfa_required` a boolean); the others: the node's or the default"
    )
    discovery: str = Field(description="Its OpenID Provider configuration")
    console: str = Field(description="Its admin console")
    version: int


class DomainAdminOut(BaseModel):
    id: str = Field(description="The `sub` of the administrator's tokens in the domain")
    username: str


class DomainCreatedOut(DomainOut):
    admin: DomainAdminOut | None = Field(description="Its first administrator, when one was made")


class DomainPage(BaseModel):
    domains: list[DomainOut] = Field(description="In name order")
    next_after: str | None = Field(description="`after` of the next page; `null`: last")


class DomainDeleted(BaseModel):
    deleted: str = Field(description="The deleted domain's name")
    rows: int = Field(description="How many rows of its data were deleted")


class PasskeyOut(BaseModel):
    credential_id: str = Field(description="The WebAuthn credential id (base64url)")
    name: str = Field(description="The name the user gave it")
    created_at: Time | None
    last_used_at: Time | None
    synced: bool = Field(description="A synced (backed-up) passkey rather than a device-bound one")
    aaguid: str | None = Field(description="The authenticator model, when it tells")


class AuthenticatorAppOut(BaseModel):
    status: str = Field(description="`active`, or `pending` (enrollment not confirmed)")
    since: Time | None


class RecoveryCodesOut(BaseModel):
    left: int = Field(description="Unused codes")
    total: int = Field(description="Codes issued in the current set")
    created_at: Time | None


class FactorsOut(BaseModel):
    """A user's second factors; never a key, a secret or a hash."""

    user_id: str
    username: str
    passkeys: list[PasskeyOut] = Field(description="Oldest first")
    authenticator_app: AuthenticatorAppOut | None = Field(description="`null`: none")
    recovery_codes: RecoveryCodesOut
    has_second_factor: bool = Field(description="A passkey or an active authenticator app")


class FactorsRemoved(BaseModel):
    passkeys: int
    authenticator_app: int
    recovery_codes: int


class FactorsResetOut(BaseModel):
    user_id: str
    username: str
    removed: FactorsRemoved
    sessions_ended: int = Field(description="The user's browser sessions ended by the reset")


class SignInPolicyOut(BaseModel):
    domain: str = Field(description="The identity domain's name")
    mfa_policy: str = Field(description="`off`, `optional` (the default) or `required`")
    admin_mfa_required: bool = Field(
        description="Every administrator must sign in with a second factor (an administrator "
        "who has one always must)"
    )


class GroupMemberOut(BaseModel):
    id: str = Field(description="The user's id (`sub`)")
    username: str
    display_name: str


class RoleGrantOut(BaseModel):
    """A role of a resource granted to a user, a group or an app."""

    resource_id: str
    resource: str | None = Field(description="The resource's audience")
    resource_name: str | None
    role: str
    principal_kind: str = Field(description="`user`, `group` or `app`")
    principal_id: str = Field(description="A user's id, a group's id or an app's client id")
    principal_name: str | None = Field(description="Its username or name; `null`: it is gone")
    granted_at: Time
    granted_by: str | None = Field(description="The administrator (or `cli:<user>`)")


class GroupRef(BaseModel):
    id: str
    name: str


class ResourceRolesOut(BaseModel):
    resource_id: str
    resource: str = Field(description="The resource's audience")
    resource_name: str
    roles: list[str] = Field(description="What the user's next token for it carries (`roles`)")


class UserAccessOut(BaseModel):
    """A user's groups and effective roles, own and through groups."""

    user_id: str
    username: str
    groups: list[GroupRef] = Field(description="By name")
    roles: list[ResourceRolesOut] = Field(
        description="Per resource that declares roles, where the user has some"
    )


class GroupListItem(BaseModel):
    id: str
    name: str
    description: str
    external_id: str | None = Field(description="Set by a provisioning system (SCIM)")
    created_at: Time
    updated_at: Time
    version: int = Field(description="One more on every change, members included")
    member_count: int


class GroupOut(BaseModel):
    """A group with its members (by username) and the roles granted to it."""

    id: str
    name: str
    description: str
    external_id: str | None = Field(description="Set by a provisioning system (SCIM)")
    created_at: Time
    updated_at: Time
    version: int = Field(description="One more on every change, members included")
    members: list[GroupMemberOut]
    roles: list[RoleGrantOut] = Field(description="The roles granted to the group")


class GroupDeleted(BaseModel):
    deleted: str = Field(description="The deleted group's id")
    name: str
    tokens_revoked: bool = Field(
        description="Its members' tokens for the resources it had roles on were revoked"
    )


class RoleRevokedOut(RoleGrantOut):
    revoked_grants: int = Field(
        description="With `revoke_tokens`: the users' grants (refresh families) for the "
        "resource revoked"
    )
    app_tokens_revoked: bool = Field(
        description="With `revoke_tokens` for an app: its client-credentials tokens revoked"
    )


# --- errors --------------------------------------------------------------------------------------


class FieldError(BaseModel):
    loc: list[str]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem, as `tessera.web.problems.problem_body` writes it."""

    type: str = Field(description="`about:blank` (RFC 9457 §4.2.1)")
    title: str = Field(description="The HTTP status phrase")
    status: int
    detail: str
    error: str = Field(description="A stable code: `invalid_request`, `not_found`, …")
    errors: list[FieldError] | None = Field(None, description="For invalid input, per field")


_MEANINGS = {
    400: "Invalid input: `errors` lists each field",
    401: "No valid bearer token for this domain's admin API (RFC 6750 §3.1)",
    403: "The token does not carry the admin scope (for `/domains`: the operator scope)",
    404: "No such object",
    409: "The change conflicts with the current state",
    413: "The request body is too large",
    503: "The identity domain's database is unavailable; retry later",
}
_ALWAYS = (401, 403, 503)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses and the auth gate's, as problems
    (`tessera.web.admin.api` gives them the `application/problem+json` media type)."""
    return {
        status: {"model": Problem, "description": _MEANINGS[status]}
        for status in sorted({*statuses, *_ALWAYS})
    }
