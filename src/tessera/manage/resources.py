"""Resources: resource servers with their primary audience and scopes.

Every change is audited through the caller's `Actor`. Nodes cache the resource list for about
two seconds (`tessera.caching`), so an edit reaches every node within that time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from tessera.domain.model import Resource, ResourceRole
from tessera.domain.scopes import OIDC_SCOPES, colliding_scopes, normalize_audience
from tessera.manage.audit import Actor
from tessera.manage.errors import (
    Conflicting,
    InvalidInput,
    NotFoundError,
    checked_description,
    checked_name,
)
from tessera.oauth.keyring import SUPPORTED_ALGS
from tessera.store.protocols import Conflict, Store

__all__ = [
    "MAX_ACCESS_TTL",
    "check_roles",
    "check_ttl",
    "create_resource",
    "delete_resource",
    "find_resource",
    "update_resource",
]

MAX_ACCESS_TTL = 86400
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")
_ROLE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,99}$")
_AUDIENCE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:[\x21-\x7e]+$")


def check_ttl(value: int | None, what: str, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low} and {high} seconds")
    return value


def _check_scopes(scopes: list[str]) -> tuple[str, ...]:
    if not scopes:
        raise InvalidInput("give at least one --scope")
    for scope in scopes:
        if not _SCOPE.match(scope) or scope in OIDC_SCOPES:
            raise InvalidInput(f"{scope!r} is not a valid resource scope")
    return tuple(dict.fromkeys(scopes))


def _apps_allowing(store: Store, resource: Resource, scopes: tuple[str, ...]) -> list[str]:
    """Names of the apps that allow one of `scopes` of the resource (Oracle's form)."""
    wanted = {f"{resource.audience}{s}" for s in scopes}
    return [c.name for c in store.clients.list() if wanted & set(c.allowed_scopes)]


def create_resource(
    store: Store,
    *,
    name: str,
    audience: str,
    scopes: list[str],
    now: datetime,
    actor: Actor,
    access_ttl: int | None = None,
    signing_alg: str = "ES256",
    roles: Sequence[ResourceRole] = (),
    include_groups: bool = False,
) -> Resource:
    """A resource server's audience, scopes and, optionally, its application roles and
    whether its tokens carry the user's `groups` (docs/groups-and-roles.md)."""
    name = checked_name(name)
    if len(audience) > 2000 or not _AUDIENCE.match(audience) or "#" in audience:
        raise InvalidInput(
            f"the audience {audience!r} must be an absolute URI without a fragment, "
            "such as https://integration.example.test"
        )
    checked_scopes = _check_scopes(scopes)
    if signing_alg not in SUPPORTED_ALGS:
        raise InvalidInput(f"the signing algorithm must be one of {', '.join(SUPPORTED_ALGS)}")
    check_ttl(access_ttl, "the access-token lifetime", 30, MAX_ACCESS_TTL)
    wanted = normalize_audience(audience)
    existing = store.resources.list()
    for other in existing:
        if normalize_audience(other.audience) == wanted:
            raise Conflicting(f"a resource with the audience {audience!r} already exists")
        if other.name == name:
            raise Conflicting(f"a resource named {name!r} already exists")
    resource = Resource(
        id=uuid.uuid4().hex,
        name=name,
        audience=audience,
        scopes=checked_scopes,
        created_at=now,
        access_ttl=access_ttl,
        signing_alg=signing_alg,
        roles=check_roles(roles),
        include_groups=include_groups,
    )
    _refuse_colliding_scopes([*existing, resource])
    try:
        store.resources.add(resource)
    except Conflict:
        raise Conflicting(f"a resource named {name!r} or with that audience exists") from None
    actor.audit("admin.resource_created", resource=resource.audience)
    return resource


def _refuse_colliding_scopes(resources: list[Resource]) -> None:
    """Scopes are written <audience><scope>: refuse resources whose scopes could be read as
    another resource's (a token must never go to the wrong audience)."""
    collisions = colliding_scopes(resources)
    if collisions:
        raise InvalidInput(
            f"the scope {collisions[0]!r} would name scopes of two resources; "
            "choose another audience or scope name"
        )


def find_resource(store: Store, ref: str) -> Resource:
    """By id, audience or name."""
    found = store.resources.get(ref) or store.resources.get_by_audience(ref)
    if found is None:
        found = next((r for r in store.resources.list() if r.name == ref), None)
    if found is None:
        raise NotFoundError(f"no resource {ref!r}")
    return found


def update_resource(
    store: Store,
    ref: str,
    *,
    actor: Actor,
    name: str | None = None,
    scopes: list[str] | None = None,
    access_ttl: int | None = None,
    clear_access_ttl: bool = False,
    roles: Sequence[ResourceRole] | None = None,
    include_groups: bool | None = None,
) -> Resource:
    """Change the name, scopes, access-token lifetime cap, roles or `groups` claim (the
    audience is the identity of a resource and never changes). A scope that an app still
    allows cannot be removed, nor a role still granted."""
    resource = find_resource(store, ref)
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = checked_name(name)
        if any(r.name == changes["name"] and r.id != resource.id for r in store.resources.list()):
            raise Conflicting(f"a resource named {changes['name']!r} already exists")
    if scopes is not None:
        checked = _check_scopes(scopes)
        removed = tuple(s for s in resource.scopes if s not in checked)
        users = _apps_allowing(store, resource, removed)
        if users:
            raise Conflicting(
                f"apps still allow the scopes being removed: {', '.join(users)}; "
                "remove those scopes from the apps first"
            )
        changes["scopes"] = checked
    if roles is not None:
        changes["roles"] = _changed_roles(store, resource, roles)
    if include_groups is not None:
        changes["include_groups"] = include_groups
    if clear_access_ttl:
        changes["access_ttl"] = None
    elif access_ttl is not None:
        changes["access_ttl"] = check_ttl(
            access_ttl, "the access-token lifetime", 30, MAX_ACCESS_TTL
        )
    if not changes:
        raise InvalidInput(
            "nothing to change: give a name, scopes, an access-token lifetime, roles or "
            "the groups claim"
        )
    updated = replace(resource, **changes)  # type: ignore[arg-type]
    if scopes is not None:
        _refuse_colliding_scopes(
            [*(r for r in store.resources.list() if r.id != resource.id), updated]
        )
    try:
        store.resources.update(updated)
    except Conflict:
        raise Conflicting(f"a resource named {updated.name!r} already exists") from None
    actor.audit("admin.resource_updated", resource=resource.audience, changed=sorted(changes))
    return updated


def check_roles(roles: Sequence[ResourceRole]) -> tuple[ResourceRole, ...]:
    """A resource's declared roles: names of letters, digits and `_ . : -`, each once."""
    seen: set[str] = set()
    for role in roles:
        if not _ROLE.match(role.name):
            raise InvalidInput(
                f"{role.name!r} is not a role name: 1 to 100 letters, digits and _ . : -, "
                "starting with a letter"
            )
        if role.name in seen:
            raise InvalidInput(f"the role {role.name!r} is declared twice")
        checked_description(role.description, 500)
        seen.add(role.name)
    return tuple(roles)


def _changed_roles(
    store: Store, resource: Resource, roles: Sequence[ResourceRole]
) -> tuple[ResourceRole, ...]:
    checked = check_roles(roles)
    kept = {r.name for r in checked}
    granted = sorted({g.role for g in store.roles.list(resource.id) if g.role not in kept})
    if granted:
        raise Conflicting(
            f"roles being removed are still granted: {', '.join(granted)}; "
            "revoke them first (tessera admin roles revoke)"
        )
    return checked


def delete_resource(store: Store, ref: str, actor: Actor) -> Resource:
    """Refuse while an app may still ask for its scopes: remove them from those apps first."""
    resource = find_resource(store, ref)
    users = _apps_allowing(store, resource, resource.scopes)
    if users:
        raise Conflicting(
            f"apps still allow scopes of {resource.name!r}: {', '.join(users)}; "
            "delete those apps or their scopes first"
        )
    store.resources.delete(resource.id)
    actor.audit("admin.resource_deleted", resource=resource.audience)
    return resource
