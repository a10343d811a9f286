"""Application roles: a resource declares them, administrators grant them to users, groups
and apps (docs/groups-and-roles.md).

A grant reaches the next token for the resource (`roles` claim, RFC 9068 §2.2.3.1), a refresh
included; tokens already issued keep what they say until they expire. Taking a role away with
`revoke=True` also revokes, through the revocation events every resource server follows, what
the principal holds for that resource: a user's grants for it (each member's, for a group),
or every client-credentials token of an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tessera.domain.model import PrincipalKind, Resource, RevocationKind, RoleGrant
from tessera.manage.apps import find_app
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, NotFoundError
from tessera.manage.groups import find_group, group_members
from tessera.manage.resources import find_resource
from tessera.manage.revocation import revoke_for_resources
from tessera.manage.users import find_user
from tessera.manage.views import group_view, iso
from tessera.oauth.memberships import APP_ROLES_TTL
from tessera.oauth.retention import kept_until
from tessera.store.protocols import Store

__all__ = [
    "Principal",
    "RoleRevoked",
    "effective_roles",
    "find_principal",
    "grant_role",
    "grant_views",
    "group_detail",
    "list_role_grants",
    "revoke_role",
    "revoked_view",
    "user_access",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a role is granted to, resolved: its kind, id and a name for people."""

    kind: PrincipalKind
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RoleRevoked:
    grant: RoleGrant
    revoked_grants: int  # users' grants (refresh families) revoked
    app_tokens_revoked: bool  # an app's client-credentials tokens cut off


def find_principal(store: Store, kind: PrincipalKind | str, ref: str) -> Principal:
    """A user (id or username), a group (id or name) or an app (client id or name)."""
    kind = PrincipalKind(kind)
    if kind is PrincipalKind.USER:
        user = find_user(store, ref)
        return Principal(kind, user.id, user.username)
    if kind is PrincipalKind.GROUP:
        group = find_group(store, ref)
        return Principal(kind, group.id, group.name)
    app = find_app(store, ref)
    return Principal(kind, app.client_id, app.name)


def _declared(resource: Resource, role: str) -> None:
    if not resource.declares(role):
        names = ", ".join(r.name for r in resource.roles) or "none"
        raise NotFoundError(
            f"the resource {resource.name!r} declares no role {role!r} (its roles: {names})"
        )


def grant_role(
    store: Store,
    *,
    resource: str,
    role: str,
    principal: Principal,
    now: datetime,
    actor: Actor,
) -> RoleGrant:
    """Grant a declared role of a resource (id, audience or name)."""
    found = find_resource(store, resource)
    _declared(found, role)
    grant = RoleGrant(found.id, role, principal.kind, principal.id, now, actor.name)
    if not store.roles.grant(grant):
        raise Conflicting(f"{principal.name!r} already has the role {role!r} on {found.name!r}")
    actor.audit(
        "admin.role_granted",
        resource=found.audience,
        role=role,
        principal_kind=principal.kind.value,
        principal=principal.id,
    )
    return grant


def revoke_role(
    store: Store,
    *,
    resource: str,
    role: str,
    principal: Principal,
    now: datetime,
    actor: Actor,
    revoke: bool = False,
) -> RoleRevoked:
    """Take a role away; with `revoke`, also revoke what the principal holds for the
    resource (the module's docstring)."""
    found = find_resource(store, resource)
    held = store.roles.list(found.id, (principal.kind, principal.id))
    grant = next((g for g in held if g.role == role), None)
    if not store.roles.revoke(found.id, role, principal.kind, principal.id):
        raise NotFoundError(f"{principal.name!r} does not have the role {role!r} on {found.name!r}")
    revoked, app_tokens = 0, False
    if revoke and principal.kind is PrincipalKind.APP:
        # Nodes keep an app's roles up to APP_ROLES_TTL: the cut-off also covers the tokens
        # they issue meanwhile with the role still cached.
        cut_off = now + timedelta(seconds=APP_ROLES_TTL)
        expires = kept_until(RevocationKind.SUBJECT, cut_off)
        store.revocations.append(RevocationKind.SUBJECT, principal.id, cut_off, expires, now)
        app_tokens = True
    elif revoke:
        users = (
            store.groups.members(principal.id)
            if principal.kind is PrincipalKind.GROUP
            else [principal.id]
        )
        revoked = revoke_for_resources(store, users, [found.id], now)
    actor.audit(
        "admin.role_revoked",
        resource=found.audience,
        role=role,
        principal_kind=principal.kind.value,
        principal=principal.id,
        grants_revoked=revoked,
        app_tokens_revoked=app_tokens,
    )
    taken = grant or RoleGrant(found.id, role, principal.kind, principal.id, now)
    return RoleRevoked(taken, revoked, app_tokens)


def list_role_grants(
    store: Store, *, resource: str | None = None, principal: Principal | None = None
) -> list[RoleGrant]:
    found = find_resource(store, resource).id if resource is not None else None
    who = (principal.kind, principal.id) if principal is not None else None
    return store.roles.list(found, who)


def effective_roles(store: Store, resource: str, principal: Principal) -> tuple[str, ...]:
    """The roles a token for the resource would carry now (a user's through groups too)."""
    found = find_resource(store, resource)
    if principal.kind is PrincipalKind.USER:
        roles = store.roles.roles_of_user(principal.id, found.id)
    elif principal.kind is PrincipalKind.APP:
        roles = store.roles.roles_of_app(principal.id, found.id)
    else:
        held = store.roles.list(found.id, (principal.kind, principal.id))
        roles = tuple(sorted({g.role for g in held}))
    return tuple(r for r in roles if found.declares(r))


def _principal_name(store: Store, kind: PrincipalKind, principal_id: str) -> str | None:
    if kind is PrincipalKind.USER:
        user = store.users.get(principal_id)
        return user.username if user else None
    if kind is PrincipalKind.GROUP:
        group = store.groups.get(principal_id)
        return group.name if group else None
    app = store.clients.get(principal_id)
    return app.name if app else None


def grant_views(store: Store, grants: list[RoleGrant]) -> list[dict[str, Any]]:
    """Grants as the CLI's `--json` and the admin API show them: with the resource's audience
    and name and the principal's name (null when it is gone)."""
    resources = {r.id: r for r in store.resources.list()}
    names: dict[tuple[PrincipalKind, str], str | None] = {}
    views = []
    for g in grants:
        key = (g.principal_kind, g.principal_id)
        if key not in names:
            names[key] = _principal_name(store, *key)
        resource = resources.get(g.resource_id)
        views.append(
            {
                "resource_id": g.resource_id,
                "resource": resource.audience if resource else None,
                "resource_name": resource.name if resource else None,
                "role": g.role,
                "principal_kind": g.principal_kind.value,
                "principal_id": g.principal_id,
                "principal_name": names[key],
                "granted_at": iso(g.granted_at),
                "granted_by": g.granted_by,
            }
        )
    return views


def user_access(store: Store, user: str) -> dict[str, Any]:
    """A user's groups and, for each resource that declares roles, the roles the user's next
    token for it carries (own grants and their groups'; resources where they have none are
    left out)."""
    found = find_user(store, user)
    principal = Principal(PrincipalKind.USER, found.id, found.username)
    roles = []
    for resource in store.resources.list():
        held = effective_roles(store, resource.id, principal) if resource.roles else ()
        if held:
            roles.append(
                {
                    "resource_id": resource.id,
                    "resource": resource.audience,
                    "resource_name": resource.name,
                    "roles": list(held),
                }
            )
    return {
        "user_id": found.id,
        "username": found.username,
        "groups": [{"id": g.id, "name": g.name} for g in store.groups.groups_of(found.id)],
        "roles": roles,
    }


def revoked_view(store: Store, done: RoleRevoked) -> dict[str, Any]:
    """A taken-away role as the CLI's `--json` and the admin API show it."""
    (view,) = grant_views(store, [done.grant])
    return {
        **view,
        "revoked_grants": done.revoked_grants,
        "app_tokens_revoked": done.app_tokens_revoked,
    }


def group_detail(store: Store, ref: str) -> dict[str, Any]:
    """A group with its members and the roles granted to it (the CLI's `groups show` and the
    admin API's group)."""
    group = find_group(store, ref)
    view = group_view(group, group_members(store, group.id))
    principal = Principal(PrincipalKind.GROUP, group.id, group.name)
    view["roles"] = grant_views(store, list_role_grants(store, principal=principal))
    return view
