"""Resources: resource servers with their primary audience and scopes."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from tessera.domain.model import Resource
from tessera.domain.scopes import OIDC_SCOPES, colliding_scopes, normalize_audience
from tessera.manage.errors import InvalidInput, NotFoundError, checked_name
from tessera.oauth.keyring import SUPPORTED_ALGS
from tessera.store.protocols import Conflict, Store

__all__ = ["MAX_ACCESS_TTL", "check_ttl", "create_resource", "delete_resource", "find_resource"]

MAX_ACCESS_TTL = 86400
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")
_AUDIENCE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:[\x21-\x7e]+$")


def check_ttl(value: int | None, what: str, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low} and {high} seconds")
    return value


def create_resource(
    store: Store,
    *,
    name: str,
    audience: str,
    scopes: list[str],
    now: datetime,
    access_ttl: int | None = None,
    signing_alg: str = "ES256",
) -> Resource:
    name = checked_name(name)
    if len(audience) > 2000 or not _AUDIENCE.match(audience) or "#" in audience:
        raise InvalidInput(
            f"the audience {audience!r} must be an absolute URI without a fragment, "
            "such as https://integration.example.test"
        )
    if not scopes:
        raise InvalidInput("give at least one --scope")
    for scope in scopes:
        if not _SCOPE.match(scope) or scope in OIDC_SCOPES:
            raise InvalidInput(f"{scope!r} is not a valid resource scope")
    if signing_alg not in SUPPORTED_ALGS:
        raise InvalidInput(f"the signing algorithm must be one of {', '.join(SUPPORTED_ALGS)}")
    check_ttl(access_ttl, "the access-token lifetime", 30, MAX_ACCESS_TTL)
    wanted = normalize_audience(audience)
    existing = store.resources.list()
    for other in existing:
        if normalize_audience(other.audience) == wanted:
            raise InvalidInput(f"a resource with the audience {audience!r} already exists")
        if other.name == name:
            raise InvalidInput(f"a resource named {name!r} already exists")
    resource = Resource(
        id=uuid.uuid4().hex,
        name=name,
        audience=audience,
        scopes=tuple(dict.fromkeys(scopes)),
        created_at=now,
        access_ttl=access_ttl,
        signing_alg=signing_alg,
    )
    # Scopes are written <audience><scope>: refuse a resource whose scopes could be read as
    # another resource's, or the other way round (a token must never go to the wrong audience).
    collisions = colliding_scopes([*existing, resource])
    if collisions:
        raise InvalidInput(
            f"the scope {collisions[0]!r} would name scopes of two resources; "
            "choose another audience or scope name"
        )
    try:
        store.resources.add(resource)
    except Conflict:
        raise InvalidInput(f"a resource named {name!r} or with that audience exists") from None
    return resource


def find_resource(store: Store, ref: str) -> Resource:
    """By id, audience or name."""
    found = store.resources.get(ref) or store.resources.get_by_audience(ref)
    if found is None:
        found = next((r for r in store.resources.list() if r.name == ref), None)
    if found is None:
        raise NotFoundError(f"no resource {ref!r}")
    return found


def delete_resource(store: Store, ref: str) -> Resource:
    """Refuse while an app may still ask for its scopes: remove them from those apps first."""
    resource = find_resource(store, ref)
    users = [
        c.name
        for c in store.clients.list()
        if any(s.startswith(resource.audience) and s not in OIDC_SCOPES for s in c.allowed_scopes)
    ]
    if users:
        raise InvalidInput(
            f"apps still allow scopes of {resource.name!r}: {', '.join(users)}; "
            "delete those apps or their scopes first"
        )
    store.resources.delete(resource.id)
    return resource
