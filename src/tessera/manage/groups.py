"""Groups of an identity domain: create, rename, describe, add and remove members, delete
(docs/groups-and-roles.md). Members are users; groups do not nest.

Every change is audited through the caller's `Actor`. A change of members reaches the next
token of each member (roles granted to the group, the `groups` claim); `revoke=True` on a
removal or a deletion also revokes what the removed members hold for the resources the group
has roles on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from tessera.domain.model import Group, PrincipalKind, User
from tessera.manage.audit import Actor
from tessera.manage.errors import (
    Conflicting,
    NotFoundError,
    checked_description,
    checked_external_id,
    checked_name,
)
from tessera.manage.revocation import revoke_for_resources
from tessera.manage.users import find_user
from tessera.store.protocols import Conflict, NotFound, StaleVersion, Store

__all__ = [
    "add_members",
    "create_group",
    "delete_group",
    "find_group",
    "group_members",
    "list_groups",
    "remove_members",
    "update_group",
]

MAX_DESCRIPTION = 500


def find_group(store: Store, ref: str) -> Group:
    """By id or by name (case-insensitively)."""
    group = store.groups.get(ref) or store.groups.get_by_name(ref)
    if group is None:
        raise NotFoundError(f"no group {ref!r}")
    return group


def _user_ids(store: Store, refs: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(find_user(store, ref).id for ref in refs))


def create_group(
    store: Store,
    *,
    name: str,
    now: datetime,
    actor: Actor,
    description: str = "",
    members: Sequence[str] = (),
    external_id: str | None = None,
) -> Group:
    """`members`: user ids or usernames."""
    group = Group(
        id=uuid.uuid4().hex,
        name=checked_name(name, "the group name"),
        created_at=now,
        updated_at=now,
        description=checked_description(description, MAX_DESCRIPTION, lines=True),
        external_id=checked_external_id(external_id),
    )
    if store.groups.get_by_name(group.name) is not None:
        raise Conflicting(f"a group named {group.name!r} already exists")
    ids = _user_ids(store, members)
    try:
        store.groups.add(group, ids)
    except Conflict:
        raise Conflicting(f"a group named {group.name!r} already exists") from None
    except NotFound:
        raise NotFoundError("a member was deleted meanwhile; try again") from None
    actor.audit("admin.group_created", group=group.id, name=group.name, members=len(ids))
    return group


def update_group(
    store: Store,
    ref: str,
    *,
    now: datetime,
    actor: Actor,
    name: str | None = None,
    description: str | None = None,
    external_id: str | None = None,
    members: Sequence[str] | None = None,
    expected_version: int | None = None,
    clear_external_id: bool = False,
) -> Group:
    """Rename, describe or replace the members (user ids or usernames) in one write;
    `clear_external_id` removes the external id (SCIM's `remove`)."""
    group = find_group(store, ref)
    changes: dict[str, object] = {"updated_at": now}
    if name is not None:
        changes["name"] = checked_name(name, "the group name")
    if description is not None:
        changes["description"] = checked_description(description, MAX_DESCRIPTION, lines=True)
    if external_id is not None or clear_external_id:
        changes["external_id"] = checked_external_id(external_id)
    ids = None if members is None else _user_ids(store, members)
    updated = replace(group, **changes)  # type: ignore[arg-type]
    try:
        store.groups.update(updated, ids, expected_version=expected_version)
    except Conflict:
        raise Conflicting(f"a group named {updated.name!r} already exists") from None
    except NotFound:
        raise NotFoundError(f"the group {group.name!r} or a member was deleted meanwhile") from None
    except StaleVersion:
        raise Conflicting(f"the group {group.name!r} changed meanwhile; read it again") from None
    actor.audit("admin.group_updated", group=group.id, changed=sorted(changes))
    return find_group(store, group.id)


def _resources_of(store: Store, group: Group) -> set[str]:
    """The resources the group has roles on."""
    return {g.resource_id for g in store.roles.list(principal=(PrincipalKind.GROUP, group.id))}


def list_groups(store: Store) -> list[tuple[Group, int]]:
    """The groups by name, each with its number of members (one query for all of them)."""
    counts: dict[str, int] = {}
    for group_id, _ in store.groups.memberships():
        counts[group_id] = counts.get(group_id, 0) + 1
    groups = sorted(store.groups.list(), key=lambda g: g.name.lower())
    return [(g, counts.get(g.id, 0)) for g in groups]


def group_members(store: Store, ref: str) -> list[User]:
    group = find_group(store, ref)
    users = (store.users.get(user_id) for user_id in store.groups.members(group.id))
    return sorted((u for u in users if u is not None), key=lambda u: u.username.lower())


def add_members(store: Store, ref: str, users: Sequence[str], now: datetime, actor: Actor) -> Group:
    group = find_group(store, ref)
    ids = _user_ids(store, users)
    try:
        changed = store.groups.change_members(group.id, ids, (), now)
    except NotFound:
        raise NotFoundError(f"the group {group.name!r} or a user was deleted meanwhile") from None
    actor.audit("admin.group_members_added", group=group.id, users=ids)
    return changed


def remove_members(
    store: Store,
    ref: str,
    users: Sequence[str],
    now: datetime,
    actor: Actor,
    *,
    revoke: bool = False,
) -> Group:
    """Remove members; with `revoke`, also revoke each removed member's tokens for the
    resources the group has roles on (their roles there may have changed)."""
    group = find_group(store, ref)
    ids = _user_ids(store, users)
    try:
        changed = store.groups.change_members(group.id, (), ids, now)
    except NotFound:
        raise NotFoundError(f"the group {group.name!r} was deleted meanwhile") from None
    if revoke:
        revoke_for_resources(store, ids, _resources_of(store, group), now)
    actor.audit("admin.group_members_removed", group=group.id, users=ids, revoked=revoke)
    return changed


def delete_group(
    store: Store,
    ref: str,
    now: datetime,
    actor: Actor,
    *,
    revoke: bool = False,
    expected_version: int | None = None,
) -> Group:
    """Delete the group, its memberships and the roles granted to it; with `revoke`, also
    revoke its members' tokens for the resources it had roles on."""
    group = find_group(store, ref)
    members = store.groups.members(group.id)
    resources = _resources_of(store, group)
    try:
        store.groups.delete(group.id, expected_version=expected_version)
    except NotFound:
        raise NotFoundError(f"no group {ref!r}") from None
    except StaleVersion:
        raise Conflicting(f"the group {group.name!r} changed meanwhile; read it again") from None
    if revoke:
        revoke_for_resources(store, members, resources, now)
    actor.audit("admin.group_deleted", group=group.id, name=group.name, revoked=revoke)
    return group
