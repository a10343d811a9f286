"""The `GroupStore` and `RoleStore` contract, and the user version (SCIM ETags), on every
store: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tessera.domain.model import Group, PrincipalKind, ResourceRole, RoleGrant
from tessera.store.protocols import Conflict, NotFound, StaleVersion, Store
from tests.unit.store.test_store_contract import a_client, a_resource, a_user, at

USER, GROUP, APP = PrincipalKind.USER, PrincipalKind.GROUP, PrincipalKind.APP


def a_group(group_id: str = "g1", name: str = "Engineers", **kw: object) -> Group:
    return Group(group_id, name, at(), at(), **kw)  # type: ignore[arg-type]


@pytest.fixture
def people(store: Store) -> Store:
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob"))
    store.users.add(a_user("u3", "carol"))
    return store


def test_user_update_bumps_the_version_and_checks_the_expected_one(people: Store) -> None:
    alice = people.users.get("u1")
    assert alice is not None and alice.version == 1
    people.users.update(replace(alice, display_name="Alice A"), expected_version=1)
    stored = people.users.get("u1")
    assert stored is not None and stored.version == 2 and stored.display_name == "Alice A"
    with pytest.raises(StaleVersion):
        people.users.update(replace(alice, display_name="Lost"), expected_version=1)
    assert people.users.get("u1").display_name == "Alice A"  # type: ignore[union-attr]
    people.users.update(replace(alice, display_name="Any"))  # no precondition
    assert people.users.get("u1").version == 3  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        people.users.update(a_user("nobody", "nobody"), expected_version=1)


def test_scim_attributes_round_trip(people: Store) -> None:
    user = a_user(
        "u9",
        "dave",
        external_id="hr-42",
        given_name="Dave",
        family_name="Jones",
        attributes='{"title": "Engineer"}',
        updated_at=at(5),
    )
    people.users.add(user)
    assert people.users.get("u9") == user


def test_groups_with_members(people: Store) -> None:
    people.groups.add(a_group(description="Builds things", external_id="x1"), ["u1", "u2"])
    people.groups.add(a_group("g2", "admins"), [])
    assert [g.name for g in people.groups.list()] == ["admins", "Engineers"]
    assert people.groups.get("g1") == a_group(description="Builds things", external_id="x1")
    assert people.groups.get_by_name("ENGINEERS") == people.groups.get("g1")
    assert people.groups.members("g1") == ["u1", "u2"]
    assert [g.id for g in people.groups.groups_of("u1")] == ["g1"]
    assert people.groups.memberships() == [("g1", "u1"), ("g1", "u2")]
    with pytest.raises(Conflict):
        people.groups.add(a_group("g3", "engineers"))
    with pytest.raises(NotFound):
        people.groups.add(a_group("g4", "Ghosts"), ["u1", "nobody"])
    assert people.groups.get("g4") is None  # nothing half-written


def test_group_update_replaces_members_and_checks_the_version(people: Store) -> None:
    people.groups.add(a_group(), ["u1"])
    people.groups.update(replace(a_group(), name="Builders"), ["u2", "u3"], expected_version=1)
    group = people.groups.get("g1")
    assert group is not None and group.name == "Builders" and group.version == 2
    assert people.groups.members("g1") == ["u2", "u3"]
    with pytest.raises(StaleVersion):
        people.groups.update(replace(group, name="Late"), [], expected_version=1)
    with pytest.raises(NotFound):
        people.groups.update(replace(group, name="Ghosts"), ["nobody"])
    assert people.groups.members("g1") == ["u2", "u3"]  # the failed update changed nothing
    assert people.groups.get("g1").name == "Builders"  # type: ignore[union-attr]
    people.groups.add(a_group("g2", "Other"))
    with pytest.raises(Conflict):
        people.groups.update(replace(a_group("g2", "builders")))


def test_change_members_adds_and_removes_once(people: Store) -> None:
    people.groups.add(a_group(), ["u1"])
    changed = people.groups.change_members("g1", ["u2", "u1"], [], at(9))
    assert changed.version == 2 and changed.updated_at == at(9)
    changed = people.groups.change_members("g1", [], ["u1", "u3"], at(10))
    assert changed.version == 3
    assert people.groups.members("g1") == ["u2"]
    with pytest.raises(NotFound):
        people.groups.change_members("g1", ["nobody"], [], at(11))
    with pytest.raises(NotFound):
        people.groups.change_members("g9", ["u1"], [], at(11))
    assert people.groups.members("g1") == ["u2"]


def test_deleting_a_group_user_or_app_drops_their_memberships_and_roles(people: Store) -> None:
    people.resources.add(a_resource(roles=(ResourceRole("Reader"),)))
    people.clients.add(a_client())
    people.groups.add(a_group(), ["u1", "u2"])
    for kind, who in ((GROUP, "g1"), (USER, "u2"), (APP, "c1")):
        assert people.roles.grant(RoleGrant("r1", "Reader", kind, who, at()))
    with pytest.raises(StaleVersion):
        people.groups.delete("g1", expected_version=7)
    people.users.delete("u2")
    assert people.groups.members("g1") == ["u1"]
    people.groups.delete("g1", expected_version=1)
    people.clients.delete("c1")
    assert people.roles.list() == []
    assert people.groups.groups_of("u1") == []
    with pytest.raises(NotFound):
        people.groups.delete("g1")


def test_roles_of_users_through_groups_and_of_apps(people: Store) -> None:
    people.resources.add(a_resource())
    people.resources.add(a_resource("r2", "Other", "https://other.test"))
    people.groups.add(a_group(), ["u1"])
    grants = [
        RoleGrant("r1", "Developer", USER, "u1", at(), "admin"),
        RoleGrant("r1", "Monitor", GROUP, "g1", at()),
        RoleGrant("r1", "Developer", GROUP, "g1", at()),
        RoleGrant("r2", "Elsewhere", USER, "u1", at()),
        RoleGrant("r1", "Invoker", APP, "c1", at()),
    ]
    assert all(people.roles.grant(g) for g in grants)
    assert not people.roles.grant(grants[0])  # granted already
    assert people.roles.roles_of_user("u1", "r1") == ("Developer", "Monitor")
    assert people.roles.roles_of_user("u2", "r1") == ()
    assert people.roles.roles_of_app("c1", "r1") == ("Invoker",)
    assert people.roles.roles_of_app("u1", "r1") == ()  # a user id is not an app
    assert people.roles.list("r1", (USER, "u1")) == [grants[0]]
    assert len(people.roles.list("r1")) == 4
    assert people.roles.revoke("r1", "Monitor", GROUP, "g1")
    assert not people.roles.revoke("r1", "Monitor", GROUP, "g1")
    assert people.roles.roles_of_user("u1", "r1") == ("Developer",)
    people.resources.delete("r1")
    assert [g.resource_id for g in people.roles.list()] == ["r2"]


def test_resource_roles_round_trip(store: Store) -> None:
    roles = (ResourceRole("ServiceDeveloper", "Builds integrations"), ResourceRole("Viewer"))
    store.resources.add(a_resource(roles=roles, include_groups=True))
    stored = store.resources.get("r1")
    assert stored is not None and stored.roles == roles and stored.include_groups
    assert stored.declares("Viewer") and not stored.declares("viewer")
