"""Scope strings: plain OpenID scopes and resource scopes.

RFC 6749 §3.3 (scope syntax). A resource scope is written in Oracle's concatenated form
`<audience><scope>` (`https://integration.tessera.test:443urn:opc:resource:consumer::all`),
with or without the default port; or as a plain scope with `resource=<audience>` (RFC 8707).
Internally a resource scope is always `<registered audience><scope>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tessera.domain.model import Resource

__all__ = [
    "OIDC_SCOPES",
    "AmbiguousScope",
    "ResolvedScope",
    "UnknownScope",
    "colliding_scopes",
    "format_scope",
    "normalize_audience",
    "parse_scope_param",
    "resolve_scope",
]

# The scopes of the OpenID Connect layer (OIDC Core §5.4, §11) and `groups`, which releases the
# user's group names in ID tokens and userinfo (docs/groups-and-roles.md).
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access", "groups"})
# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )  (RFC 6749 §3.3)
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UnknownScope(ValueError):
    """A scope that names no registered resource scope and is not an OpenID scope."""


class AmbiguousScope(UnknownScope):
    """A concatenated scope that two resources could both have formed: e.g. `https://a.test`
    with `xscope` and `https://a.testx` with `scope`. Registration refuses such resources;
    resolution never guesses between them."""


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    """One scope as granted: `audience` is None for OpenID scopes."""

    audience: str | None
    scope: str

    @property
    def canonical(self) -> str:
        return format_scope(self.audience, self.scope)


def format_scope(audience: str | None, scope: str) -> str:
    return scope if audience is None else f"{audience}{scope}"


def normalize_audience(audience: str) -> str:
    """Lower-case scheme and host, no default port, no trailing slash: for comparison only."""
    try:
        parts = urlsplit(audience)
        port = parts.port
    except ValueError:
        return audience
    if not parts.scheme or not parts.hostname:
        return audience.rstrip("/")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def parse_scope_param(value: str | None) -> list[str]:
    """Split a space-delimited scope parameter; raise ValueError on an invalid token."""
    if not value:
        return []
    tokens = [t for t in value.split(" ") if t]
    for token in tokens:
        if not _SCOPE_TOKEN.match(token):
            raise ValueError("scope contains a character RFC 6749 §3.3 does not allow")
    # Keep the order, drop repeats.
    return list(dict.fromkeys(tokens))


def resolve_scope(
    token: str, resources: Iterable[Resource], resource_param: str | None = None
) -> ResolvedScope:
    """Resolve one requested scope token against the registered resources."""
    if token in OIDC_SCOPES:
        return ResolvedScope(None, token)
    candidates = list(resources)
    if resource_param is not None:
        wanted = normalize_audience(resource_param)
        for resource in candidates:
            if normalize_audience(resource.audience) == wanted and token in resource.scopes:
                return ResolvedScope(resource.audience, token)
    matches = _concatenated_matches(token, candidates)
    if len(matches) > 1:
        raise AmbiguousScope(f"the scope {token!r} names more than one resource scope")
    if not matches:
        raise UnknownScope(f"unknown scope {token!r}")
    return matches[0]


def _concatenated_matches(token: str, resources: Iterable[Resource]) -> list[ResolvedScope]:
    """Every (audience, scope) pair that `<audience><scope>` = `token` can mean."""
    found: list[ResolvedScope] = []
    for resource in resources:
        for scope in resource.scopes:
            if token.endswith(scope) and len(token) > len(scope):
                prefix = token[: -len(scope)]
                if normalize_audience(prefix) == normalize_audience(resource.audience):
                    found.append(ResolvedScope(resource.audience, scope))
    return list(dict.fromkeys(found))


def _written_forms(audience: str, scope: str) -> set[str]:
    """The ways a client may write one resource scope: as registered, normalised, and with
    the scheme's default port."""
    forms = {f"{audience}{scope}", f"{normalize_audience(audience)}{scope}"}
    try:
        parts = urlsplit(audience)
        port = _DEFAULT_PORTS.get(parts.scheme.lower())
        if port is not None and parts.port is None and parts.hostname:
            host = parts.netloc
            forms.add(f"{parts.scheme}://{host}:{port}{parts.path}{scope}")
    except ValueError:
        pass
    return forms


def colliding_scopes(resources: Iterable[Resource]) -> list[str]:
    """The written resource scopes that would name more than one (resource, scope) pair among
    `resources`: a new resource that causes any must be refused, so that a token is never
    issued for another audience than the one asked for."""
    candidates = list(resources)
    out: list[str] = []
    for resource in candidates:
        for scope in resource.scopes:
            for token in sorted(_written_forms(resource.audience, scope)):
                if len(_concatenated_matches(token, candidates)) > 1:
                    out.append(token)
    return list(dict.fromkeys(out))
