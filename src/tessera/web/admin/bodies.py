"""The admin API's request bodies: a misspelt field is refused (400), not ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "AppCreate",
    "AppUpdate",
    "DomainAdminCreate",
    "DomainCreate",
    "DomainUpdate",
    "KeyRotate",
    "PasswordSet",
    "ResourceCreate",
    "ResourceServerFor",
    "ResourceUpdate",
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


class ResourceCreate(_Body):
    name: str
    audience: str
    scopes: list[str]
    access_token_ttl: int | None = None
    signing_alg: str = "ES256"


class ResourceUpdate(_Body):
    """Fields left out are kept; `access_token_ttl: null` removes the cap."""

    name: str | None = None
    scopes: list[str] | None = None
    access_token_ttl: int | None = None


class AppCreate(_Body):
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


class AppUpdate(_Body):
    """Fields left out are kept; a lifetime of `null` goes back to the default, an
    `mfa_policy` of `null` to the domain's."""

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
