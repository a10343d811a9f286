"""The admin API's request bodies: a misspelt field is refused (400), not ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "AppCreate",
    "AppMetadataIn",
    "AppUpdate",
    "DomainAdminCreate",
    "DomainCreate",
    "DomainUpdate",
    "GroupCreate",
    "GroupMembers",
    "GroupUpdate",
    "KeyRotate",
    "PasswordSet",
    "ResourceCreate",
    "ResourceRoleIn",
    "ResourceServerFor",
    "ResourceUpdate",
    "RoleGrantIn",
    "RotateSecret",
    "SignInPolicyUpdate",
    "UserCreate",
    "UserUpdate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A second-factor policy (docs/mfa.md).
MfaPolicy = Literal["off", "optional", "required"]
_APP_POLICY = (
    "The app's second-factor policy; `null`: its domain's. The stricter of the app's and the "
    "domain's applies: an app can ask for more, never for less."
)


class UserCreate(_Body):
    username: str
    password: str = Field(repr=False)
    email: str | None = None
    display_name: str | None = None
    is_admin: bool = False


class UserUpdate(_Body):
    disabled: bool | None = None


class PasswordSet(_Body):
    password: str = Field(repr=False)


class ResourceRoleIn(_Body):
    """An application role a resource declares (docs/groups-and-roles.md)."""

    name: StrictStr = Field(description="1 to 100 of letters, digits, `_ . : -`")
    description: StrictStr = Field("", description="What the role may do, for administrators")


_ROLES = "Its application roles: the values its tokens' `roles` claim may carry"
_GROUPS = "Its access tokens carry the user's group names (`groups`, RFC 9068 §2.2.3.1)"


class ResourceCreate(_Body):
    name: str
    audience: str
    scopes: list[str]
    access_token_ttl: int | None = None
    signing_alg: str = "ES256"
    roles: list[ResourceRoleIn] = Field([], max_length=200, description=_ROLES)
    include_groups: StrictBool = Field(False, description=_GROUPS)


class ResourceUpdate(_Body):
    """Fields left out are kept; `access_token_ttl: null` removes the cap; `roles` is the
    full new list (a role still granted cannot go: 409)."""

    name: str | None = None
    scopes: list[str] | None = None
    access_token_ttl: int | None = None
    roles: list[ResourceRoleIn] | None = Field(None, max_length=200, description=_ROLES)
    include_groups: StrictBool | None = Field(None, description=_GROUPS)


class GroupCreate(_Body):
    name: StrictStr = Field(description="Unique in the domain, compared case-insensitively")
    description: StrictStr = ""
    members: list[StrictStr] = Field(
        [], max_length=1000, description="Its first members: user ids or usernames"
    )


class GroupUpdate(_Body):
    """Fields left out are kept (members: `/groups/{group}/members`)."""

    name: StrictStr | None = None
    description: StrictStr | None = None


class GroupMembers(_Body):
    users: list[StrictStr] = Field(
        min_length=1, max_length=1000, description="User ids or usernames"
    )


class RoleGrantIn(_Body):
    resource: StrictStr = Field(description="The resource: id, audience or name")
    role: StrictStr = Field(description="A role the resource declares")
    principal_kind: Literal["user", "group", "app"] = Field(
        description="`user`, `group` (each member) or `app` (its client-credentials tokens)"
    )
    principal: StrictStr = Field(
        description="A user's id or username, a group's id or name, an app's client id or name"
    )


class AppMetadataIn(_Body):
    """An app's RFC 7591 §2 client metadata (docs/client-authentication.md)."""

    token_endpoint_auth_method: str | None = Field(
        None,
        description="`client_secret_basic` (the default for a confidential app), "
        "`client_secret_post`, `client_secret_jwt`, `private_key_jwt` (with `jwks` or "
        "`jwks_uri`; no secret) or `none` (public apps)",
    )
    token_endpoint_auth_signing_alg: str | None = Field(
        None, description="The one algorithm of the app's assertions; `null`: any of its method's"
    )
    jwks: dict[str, Any] | None = Field(None, description="The app's public JWK Set")
    jwks_uri: str | None = Field(None, description="Where the app publishes its public keys")
    require_pushed_authorization_requests: StrictBool | None = Field(
        None, description="PAR required (RFC 9126 §6); `null`: only under FAPI 2.0"
    )
    dpop_bound_access_tokens: StrictBool | None = Field(
        None,
        description="Every token request carries a DPoP proof (RFC 9449 §5.2); `null`: only "
        "under FAPI 2.0",
    )
    id_token_signed_response_alg: str | None = Field(
        None, description="`RS256` (the default) or `ES256` (the default under FAPI 2.0)"
    )
    profile: str | None = Field(None, description="`fapi2`: the FAPI 2.0 Security Profile")
    client_uri: str | None = None
    logo_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    contacts: list[str] | None = None
    software_id: str | None = None
    software_version: str | None = None


class AppCreate(AppMetadataIn):
    name: str
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    public: bool = False
    grant_types: list[str] | None = None
    allowed_scopes: list[str] = []
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    resource_server_for: list[str] = []
    mfa_policy: MfaPolicy | None = Field(None, description=_APP_POLICY)


class ResourceServerFor(BaseModel):
    resource_server_for: list[str]


class TokenExchange(BaseModel):
    """RFC 8693: the resources (id, audience or name) the app may exchange users' access
    tokens for (empty: none, the grant type goes), and impersonation (tokens without `act`)."""

    audiences: list[str] = Field(max_length=100)
    impersonation: bool = False


class AppUpdate(AppMetadataIn):
    """Fields left out are kept; a lifetime of `null` goes back to the default, an
    `mfa_policy` of `null` to the domain's, client metadata of `null` to its default (or
    none)."""

    name: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    grant_types: list[str] | None = None
    allowed_scopes: list[str] | None = None
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    mfa_policy: MfaPolicy | None = Field(None, description=_APP_POLICY)


class SignInPolicyUpdate(_Body):
    """Fields left out are kept; `null` goes back to the default (`optional`; not required
    of every administrator)."""

    mfa_policy: MfaPolicy | None = Field(
        None,
        description="`off`: no second factor is asked (administrators who have one still use "
        "it); `optional`: users may add one and then use it; `required`: every user needs one "
        "and is led to enroll after the password",
    )
    admin_mfa_required: StrictBool | None = Field(
        None, description="Every administrator must sign in with a second factor"
    )


class RotateSecret(_Body):
    grace_seconds: int = 3600
    token_endpoint_auth_method: str | None = Field(
        None,
        description="Switch the app to this secret method with the new secret "
        "(`client_secret_basic`, `client_secret_post`, `client_secret_jwt`)",
    )


class KeyRotate(_Body):
    alg: str = "all"


class DomainAdminCreate(_Body):
    """The new domain's first administrator, who signs in to its console."""

    username: str
    password: str = Field(repr=False)
    email: str | None = None
    display_name: str | None = None


# Lifetimes in seconds, lengths in characters, `mfa_policy` a word, `admin_mfa_required` a
# boolean; `null` (in a change) goes back to the node's value or the default.
DomainSettingsIn = dict[str, StrictBool | StrictInt | StrictStr | None]


class DomainCreate(_Body):
    name: str = Field(description="1 to 63 of `a-z`, `0-9`, `-`: the path `/domains/<name>`")
    display_name: str | None = None
    host: str | None = Field(None, description="A host name of its own (issuer https://<host>)")
    settings: DomainSettingsIn | None = None
    admin: DomainAdminCreate | None = None


class DomainUpdate(_Body):
    """Fields left out are kept; `host: ""` releases the host name."""

    display_name: str | None = None
    host: str | None = None
    settings: DomainSettingsIn | None = None
