"""Identity domains: the tenants of one deployment (docs/domains.md).

Each domain has its own issuer, users, apps, resources, keys, sessions, grants, revocation feed,
audit log, settings and administrators. The default domain keeps the deployment's issuer and
URLs; any other is served under `<base>/domains/<name>` or, when it claims one, at its own host
name (`https://<host>`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from tessera.domain.model import DEFAULT_DOMAIN

__all__ = [
    "DEFAULT_DOMAIN",
    "DOMAIN_PATH",
    "DOMAIN_RULES",
    "MFA_POLICIES",
    "DomainSettings",
    "IdentityDomain",
    "InvalidDomain",
    "check_domain_name",
    "check_host",
    "domain_issuer",
    "domain_prefix",
    "new_domain_id",
]

# Where a domain without a host of its own is served: `<base>/domains/<name>/…`.
DOMAIN_PATH = "/domains/"
# A DNS label: a domain's name is one, a host name is made of them.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Names that would read as something else in a URL or a log line.
_RESERVED_NAMES = frozenset({"default", "admin", "api", "console", "static", "oauth2", "domains"})


class InvalidDomain(ValueError):
    """A domain name, host name or setting that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """What an administrator may set per domain. The lifetimes and login throttling are node
    settings a domain may override (`None`: the node's `TESSERA_ACCESS_TOKEN_TTL` and its
    siblings); `DOMAIN_RULES` are the domain's own (the default domain's too)."""

    access_token_ttl: int | None = None
    id_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    refresh_token_absolute_ttl: int | None = None
    session_ttl: int | None = None
    login_max_failures: int | None = None
    login_max_failures_per_address: int | None = None
    login_first_delay: int | None = None
    login_failure_window: int | None = None
    password_min_length: int | None = None
    # Second factors (docs/mfa.md): "off", "optional" (None) or "required".
    mfa_policy: str | None = None
    # Every administrator must sign in with a second factor (they always must once they
    # have one).
    admin_mfa_required: bool | None = None
    # Every app must push its authorization requests first (RFC 9126 §5, §6).
    require_pushed_authorization_requests: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The settings that are set."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DomainSettings:
        """Checked settings; raise `InvalidDomain` for an unknown name or a value out of bounds."""
        unknown = set(values) - set(_BOUNDS) - set(_CHOICES)
        if unknown:
            raise InvalidDomain(f"unknown domain settings: {', '.join(sorted(unknown))}")
        checked: dict[str, Any] = {}
        for name, value in values.items():
            checked[name] = None if value is None else _checked_setting(name, value)
        return cls(**checked)

    def merged(self, values: dict[str, Any]) -> DomainSettings:
        """These settings with `values` applied (a `None` value unsets one)."""
        return DomainSettings.from_dict({**self.as_dict(), **values})


def _checked_setting(name: str, value: Any) -> Any:
    if name in _CHOICES:
        choices = _CHOICES[name]
        if isinstance(value, str) and value.lower() in _BOOLEAN_WORDS and True in choices:
            value = _BOOLEAN_WORDS[value.lower()]
        if value not in choices or isinstance(value, bool) is not isinstance(choices[0], bool):
            allowed = ", ".join(str(c).lower() for c in choices)
            raise InvalidDomain(f"{name} must be one of: {allowed}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDomain(f"{name} must be a whole number of seconds or characters")
    low, high = _BOUNDS[name]
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise InvalidDomain(f"{name} must be at least {low}{upper}")
    return value


# (minimum, maximum) of each setting, as in `tessera.config.Settings`.
_BOUNDS: dict[str, tuple[int, int | None]] = {
    "access_token_ttl": (30, 86400),
    "id_token_ttl": (30, 86400),
    "refresh_token_ttl": (60, None),
    "refresh_token_absolute_ttl": (60, None),
    "session_ttl": (60, None),
    "login_max_failures": (1, None),
    "login_max_failures_per_address": (1, None),
    "login_first_delay": (1, None),
    "login_failure_window": (10, 86400),
    "password_min_length": (8, 128),
}
MFA_POLICIES = ("off", "optional", "required")
_CHOICES: dict[str, tuple[Any, ...]] = {
    "mfa_policy": MFA_POLICIES,
    "admin_mfa_required": (True, False),
    "require_pushed_authorization_requests": (True, False),
}
_BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
# The settings that are rules of the domain rather than node settings it overrides.
DOMAIN_RULES = frozenset(
    {
        "password_min_length",
        "mfa_policy",
        "admin_mfa_required",
        "require_pushed_authorization_requests",
    }
)


@dataclass(frozen=True, slots=True)
class IdentityDomain:
    id: str  # never reused: a deleted domain's name can be taken again by a new id
    name: str  # the path segment, lower case
    display_name: str  # what sign-in pages and errors show
    created_at: datetime
    host: str | None = None  # a host name of its own: issuer https://<host>
    disabled_at: datetime | None = None
    settings: DomainSettings = DomainSettings()
    version: int = 1

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_DOMAIN

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def with_changes(self, **changes: Any) -> IdentityDomain:
        return replace(self, version=self.version + 1, **changes)


def new_domain_id() -> str:
    return "d" + secrets.token_hex(12)


def check_domain_name(name: str) -> str:
    """A domain's name: its path segment (DNS-label rules: `a-z`, `0-9`, `-`, at most 63)."""
    wanted = name.strip().lower()
    if not _LABEL.match(wanted):
        raise InvalidDomain(
            "a domain name has 1 to 63 lower-case letters, digits and hyphens, and starts and "
            "ends with a letter or digit"
        )
    if wanted in _RESERVED_NAMES:
        raise InvalidDomain(f"the domain name {wanted!r} is reserved; choose another")
    return wanted


def check_host(host: str) -> str:
    """A host name a domain claims: a DNS name (not an address, no port, no scheme)."""
    wanted = host.strip().lower().rstrip(".")
    labels = wanted.split(".")
    if (
        len(wanted) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidDomain(
            f"{host!r} is not a host name: give a DNS name such as login.example.com, without "
            "a scheme, port or path"
        )
    return wanted


def domain_prefix(domain: IdentityDomain) -> str:
    """The path the domain's URLs start with on the deployment's base URL ('' when none)."""
    if domain.is_default or domain.host:
        return ""
    return DOMAIN_PATH + domain.name


def domain_issuer(base_issuer: str, domain: IdentityDomain) -> str:
    """The domain's issuer: the base issuer for the default domain, `https://<host>` for a
    domain with its own host name, else `<base>/domains/<name>`."""
    if domain.is_default:
        return base_issuer
    if domain.host:
        return f"https://{domain.host}"
    return base_issuer.rstrip("/") + domain_prefix(domain)
