"""The administration rules of groups and roles the CLI and the admin API call
(`tessera.manage.groups`, `tessera.manage.roles`, resources' roles), on the memory store: the
refusals name what is wrong and write nothing (an unknown user, a taken group name, a role the
resource does not declare, a role not held, a declared role still granted), and the views the
CLI's `--json` and the API show (docs/groups-and-roles.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.model import Client, ClientKind, PrincipalKind, Resource, ResourceRole, User
from tessera.manage import groups, roles
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.manage.resources import update_resource
from tessera.manage.views import group_view, resource_view
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEDGER = "https://ledger.test"


def _user(store: MemoryStore, name: str) -> User:
    user = User(f"id-{name}", name, "x", name.title(), None, False, T0, T0)
    store.users.add(user)
    return user


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    for name in ("ann", "bob", "cy"):
        _user(s, name)
    roles_ = (ResourceRole("Clerk", "Posts entries"), ResourceRole("Reader"))
    s.resources.add(Resource("r1", "Ledger", LEDGER, ("read",), T0, roles=roles_))
    s.clients.add(Client("app-1", "Robot", ClientKind.CONFIDENTIAL, (), ("client_credentials",), (), T0))
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


def test_list_groups_counts_members_and_sorts_by_name(store: MemoryStore, actor: Actor) -> None:
    groups.create_group(store, name="zeta", members=["ann", "bob"], now=T0, actor=actor)
    groups.create_group(store, name="Alpha", now=T0, actor=actor)
    assert [(g.name, n) for g, n in groups.list_groups(store)] == [("Alpha", 0), ("zeta", 2)]


def test_group_view_shows_members_only_when_given(store: MemoryStore, actor: Actor) -> None:
    group = groups.create_group(store, name="ops", members=["bob"], now=T0, actor=actor)
    assert "members" not in group_view(group)
    view = group_view(group, groups.group_members(store, "ops"))
    assert view["members"] == [{"id": "id-bob", "username": "bob", "display_name": "Bob"}]
    assert view["created_at"] == T0.isoformat() and view["version"] == 1


def test_an_unknown_member_is_refused_and_nothing_written(store: MemoryStore, actor: Actor) -> None:
    with pytest.raises(NotFoundError, match="no user 'dee'"):
        groups.create_group(store, name="ops", members=["ann", "dee"], now=T0, actor=actor)
    assert store.groups.list() == []
    group = groups.create_group(store, name="ops", members=["ann"], now=T0, actor=actor)
    with pytest.raises(NotFoundError, match="no user 'dee'"):
        groups.add_members(store, "ops", ["bob", "dee"], T0, actor)
    assert store.groups.members(group.id) == ["id-ann"]


def test_a_taken_group_name_is_refused_in_any_case(store: MemoryStore, actor: Actor) -> None:
    groups.create_group(store, name="Ops", now=T0, actor=actor)
    other = groups.create_group(store, name="Dev", now=T0, actor=actor)
    with pytest.raises(Conflicting, match="already exists"):
        groups.create_group(store, name="OPS", now=T0, actor=actor)
    with pytest.raises(Conflicting, match="already exists"):
        groups.update_group(store, other.id, name="ops", now=T0, actor=actor)
    assert sorted(g.name for g in store.groups.list()) == ["Dev", "Ops"]


def test_a_role_the_resource_does_not_declare_is_refused(store: MemoryStore, actor: Actor) -> None:
    ann = roles.find_principal(store, "user", "ann")
    with pytest.raises(NotFoundError, match=r"declares no role 'Janitor' \(its roles: Clerk, Reader\)"):
        roles.grant_role(store, resource="Ledger", role="Janitor", principal=ann, now=T0, actor=actor)
    assert store.roles.list() == []


def test_a_grant_twice_conflicts(store: MemoryStore, actor: Actor) -> None:
    app = roles.find_principal(store, PrincipalKind.APP, "Robot")
    roles.grant_role(store, resource=LEDGER, role="Clerk", principal=app, now=T0, actor=actor)
    with pytest.raises(Conflicting, match="already has the role"):
        roles.grant_role(store, resource="r1", role="Clerk", principal=app, now=T0, actor=actor)


def test_revoking_a_role_not_held_is_refused(store: MemoryStore, actor: Actor) -> None:
    bob = roles.find_principal(store, "user", "bob")
    with pytest.raises(NotFoundError, match="'bob' does not have the role 'Reader' on 'Ledger'"):
        roles.revoke_role(store, resource="Ledger", role="Reader", principal=bob, now=T0, actor=actor)
    assert store.audit.query(type="admin.role_revoked") == []


def test_removing_a_declared_role_still_granted_conflicts(store: MemoryStore, actor: Actor) -> None:
    group = groups.create_group(store, name="clerks", members=["cy"], now=T0, actor=actor)
    who = roles.find_principal(store, "group", group.id)
    roles.grant_role(store, resource="Ledger", role="Clerk", principal=who, now=T0, actor=actor)
    with pytest.raises(Conflicting, match="still granted: Clerk; revoke them first"):
        update_resource(store, "Ledger", actor=actor, roles=[ResourceRole("Reader")])
    assert [r.name for r in store.resources.get("r1").roles] == ["Clerk", "Reader"]  # type: ignore[union-attr]
    # The role not granted can go.
    kept = update_resource(store, "Ledger", actor=actor, roles=[ResourceRole("Clerk")])
    assert resource_view(kept)["roles"] == [{"name": "Clerk", "description": ""}]


def test_an_invalid_role_name_is_refused(store: MemoryStore, actor: Actor) -> None:
    with pytest.raises(InvalidInput, match="not a role name"):
        update_resource(store, "Ledger", actor=actor, roles=[ResourceRole("Service Admin")])


def test_grant_views_name_resources_and_principals(store: MemoryStore, actor: Actor) -> None:
    group = groups.create_group(store, name="clerks", members=["ann"], now=T0, actor=actor)
    for kind, ref in (("user", "bob"), ("group", "clerks"), ("app", "app-1")):
        who = roles.find_principal(store, kind, ref)
        roles.grant_role(store, resource="Ledger", role="Reader", principal=who, now=T0, actor=actor)
    views = roles.grant_views(store, roles.list_role_grants(store, resource="Ledger"))
    assert {(v["principal_kind"], v["principal_id"], v["principal_name"]) for v in views} == {
        ("user", "id-bob", "bob"), ("group", group.id, "clerks"), ("app", "app-1", "Robot")}
    assert {v["resource"] for v in views} == {LEDGER}
    assert {v["granted_by"] for v in views} == {"admin-sub"}
    # A user's effective roles come through the group too.
    ann = roles.find_principal(store, "user", "ann")
    assert roles.effective_roles(store, "Ledger", ann) == ("Reader",)


def test_user_access_lists_groups_and_effective_roles(store: MemoryStore, actor: Actor) -> None:
    group = groups.create_group(store, name="clerks", members=["ann"], now=T0, actor=actor)
    roles.grant_role(store, resource="Ledger", role="Clerk", principal=roles.find_principal(store, "group", "clerks"), now=T0, actor=actor)
    roles.grant_role(store, resource="Ledger", role="Reader", principal=roles.find_principal(store, "user", "ann"), now=T0, actor=actor)
    access = roles.user_access(store, "ann")
    assert access["groups"] == [{"id": group.id, "name": "clerks"}]
    assert access["roles"] == [{"resource_id": "r1", "resource": LEDGER, "resource_name": "Ledger", "roles": ["Clerk", "Reader"]}]
    assert roles.user_access(store, "bob")["roles"] == []  # none: the resource is left out
    with pytest.raises(NotFoundError, match="no user 'zed'"):
        roles.user_access(store, "zed")
