"""The admin API's request bodies: a misspelt field is refused (400), not ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

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
    "UserCreate",
    "UserUpdate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class ResourceServerFor(BaseModel):
    resource_server_for: list[str]


class AppUpdate(_Body):
    """Fields left out are kept; a lifetime of `null` goes back to the default."""

    name: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    grant_types: list[str] | None = None
    allowed_scopes: list[str] | None = None
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None


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


# Each setting in seconds or characters; `null` (in a change) goes back to the node's value.
DomainSettingsIn = dict[str, StrictInt | None]


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
