"""The rules of `tessera.manage.groups`, `tessera.manage.roles` and the roles of
`tessera.manage.resources` on the memory store: names checked, members are users, only declared
roles are granted, a declared role still granted cannot be removed, taking a role away with
`revoke` revokes the principal's grants for that resource only (an app: its own tokens), and
every refusal writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tessera.domain.model import (
    Client,
    ClientKind,
    Grant,
    PrincipalKind,
    Resource,
    ResourceRole,
    RevocationKind,
)
from tessera.manage import groups as group_rules
from tessera.manage import roles as role_rules
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.manage.resources import update_resource
from tessera.manage.users import create_user
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ORDERS, REPORTS = "https://orders.test", "https://reports.test"
USER, GROUP, APP = PrincipalKind.USER, PrincipalKind.GROUP, PrincipalKind.APP


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    roles = (ResourceRole("Reader", "reads"), ResourceRole("Writer"))
    s.resources.add(Resource("r1", "orders", ORDERS, ("read",), T0, roles=roles))
    s.resources.add(Resource("r2", "reports", REPORTS, ("view",), T0, roles=roles))
    s.clients.add(Client("app-1", "Sync", ClientKind.CONFIDENTIAL, (), ("client_credentials",), (), T0))
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


@pytest.fixture
def people(store: MemoryStore, actor: Actor) -> list[str]:
    return [
        create_user(store, username=name, password="a long enough passphrase", now=T0, actor=actor).id
        for name in ("alice", "bob")
    ]


def a_grant(store: MemoryStore, grant_id: str, user_id: str, audience: str) -> None:
    grant = Grant(grant_id, "app-1", user_id, ("read",), audience, T0, T0, T0 + timedelta(days=1))
    with store.transaction() as tx:
        tx.grants.start(grant, None)


def test_groups_are_created_with_members_renamed_and_deleted(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    group = group_rules.create_group(
        store, name="Ops", now=T0, actor=actor, description="On call", members=["alice"]
    )
    assert [u.username for u in group_rules.group_members(store, "ops")] == ["alice"]
    group_rules.add_members(store, "Ops", ["bob", "alice"], T0, actor)
    assert store.groups.members(group.id) == sorted(people)
    renamed = group_rules.update_group(store, group.id, now=T0, actor=actor, name="Operations")
    assert renamed.name == "Operations" and renamed.version == 3
    group_rules.remove_members(store, "Operations", ["alice"], T0, actor)
    assert [u.username for u in group_rules.group_members(store, group.id)] == ["bob"]
    group_rules.delete_group(store, "Operations", T0, actor)
    assert store.groups.list() == []
    types = [e.type for e in store.audit.query(limit=20)]
    assert "admin.group_created" in types and "admin.group_deleted" in types


def test_group_refusals_write_nothing(store: MemoryStore, actor: Actor, people: list[str]) -> None:
    group_rules.create_group(store, name="Ops", now=T0, actor=actor)
    with pytest.raises(Conflicting, match="already exists"):
        group_rules.create_group(store, name="ops", now=T0, actor=actor)
    with pytest.raises(NotFoundError, match="no user 'carol'"):
        group_rules.create_group(store, name="Dev", now=T0, actor=actor, members=["alice", "carol"])
    with pytest.raises(InvalidInput, match="1 to 200"):
        group_rules.create_group(store, name=" ", now=T0, actor=actor)
    with pytest.raises(NotFoundError):
        group_rules.add_members(store, "Ops", ["carol"], T0, actor)
    with pytest.raises(Conflicting, match="changed meanwhile"):
        group_rules.update_group(store, "Ops", now=T0, actor=actor, name="X", expected_version=9)
    assert [g.name for g in store.groups.list()] == ["Ops"]
    assert store.groups.members(store.groups.list()[0].id) == []


def test_only_declared_roles_are_granted_once(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    alice = role_rules.find_principal(store, "user", "alice")
    with pytest.raises(NotFoundError, match="declares no role 'Admin'.*Reader, Writer"):
        role_rules.grant_role(store, resource=ORDERS, role="Admin", principal=alice, now=T0, actor=actor)
    role_rules.grant_role(store, resource="orders", role="Reader", principal=alice, now=T0, actor=actor)
    with pytest.raises(Conflicting, match="already has the role"):
        role_rules.grant_role(store, resource="r1", role="Reader", principal=alice, now=T0, actor=actor)
    with pytest.raises(NotFoundError):
        role_rules.find_principal(store, "group", "nobody")
    with pytest.raises(ValueError):
        role_rules.find_principal(store, "robot", "alice")
    assert role_rules.effective_roles(store, ORDERS, alice) == ("Reader",)
    assert role_rules.effective_roles(store, REPORTS, alice) == ()


def test_effective_roles_include_the_groups(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    group_rules.create_group(store, name="Ops", now=T0, actor=actor, members=["bob"])
    ops = role_rules.find_principal(store, GROUP, "Ops")
    role_rules.grant_role(store, resource=ORDERS, role="Writer", principal=ops, now=T0, actor=actor)
    bob = role_rules.find_principal(store, USER, "bob")
    assert role_rules.effective_roles(store, ORDERS, bob) == ("Writer",)
    assert role_rules.effective_roles(store, ORDERS, ops) == ("Writer",)
    assert [g.role for g in role_rules.list_role_grants(store, principal=ops)] == ["Writer"]


def test_revoking_with_tokens_revokes_the_users_grants_for_that_resource_only(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    alice_id, bob_id = people
    group_rules.create_group(store, name="Ops", now=T0, actor=actor, members=["alice", "bob"])
    ops = role_rules.find_principal(store, GROUP, "Ops")
    role_rules.grant_role(store, resource=ORDERS, role="Writer", principal=ops, now=T0, actor=actor)
    a_grant(store, "g-a-orders", alice_id, ORDERS)
    a_grant(store, "g-b-orders", bob_id, ORDERS)
    a_grant(store, "g-a-reports", alice_id, REPORTS)
    outcome = role_rules.revoke_role(
        store, resource=ORDERS, role="Writer", principal=ops, now=T0, actor=actor, revoke=True
    )
    assert outcome.revoked_grants == 2 and not outcome.app_tokens_revoked
    assert [g.grant_id for g in store.grants.list_active(T0)] == ["g-a-reports"]
    events = store.revocations.since(0)
    assert {(e.kind, e.key) for e in events} == {
        (RevocationKind.GRANT, "g-a-orders"),
        (RevocationKind.GRANT, "g-b-orders"),
    }
    with pytest.raises(NotFoundError, match="does not have the role"):
        role_rules.revoke_role(store, resource=ORDERS, role="Writer", principal=ops, now=T0, actor=actor)


def test_revoking_without_tokens_leaves_grants_and_an_apps_revocation_cuts_its_tokens(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    alice = role_rules.find_principal(store, USER, "alice")
    app = role_rules.find_principal(store, APP, "Sync")
    for who in (alice, app):
        role_rules.grant_role(store, resource=ORDERS, role="Reader", principal=who, now=T0, actor=actor)
    a_grant(store, "g-a-orders", alice.id, ORDERS)
    role_rules.revoke_role(store, resource=ORDERS, role="Reader", principal=alice, now=T0, actor=actor)
    assert [g.grant_id for g in store.grants.list_active(T0)] == ["g-a-orders"]
    outcome = role_rules.revoke_role(
        store, resource=ORDERS, role="Reader", principal=app, now=T0, actor=actor, revoke=True
    )
    assert outcome.app_tokens_revoked
    (event,) = store.revocations.since(0)
    assert (event.kind, event.key) == (RevocationKind.SUBJECT, "app-1")
    # Nodes may keep the app's roles two seconds: tokens issued meanwhile are cut off too.
    assert event.not_before == T0 + timedelta(seconds=2)


def test_removing_a_member_with_revoke_revokes_their_grants_for_the_groups_resources(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    alice_id, _ = people
    group_rules.create_group(store, name="Ops", now=T0, actor=actor, members=["alice"])
    ops = role_rules.find_principal(store, GROUP, "Ops")
    role_rules.grant_role(store, resource=REPORTS, role="Reader", principal=ops, now=T0, actor=actor)
    a_grant(store, "g-orders", alice_id, ORDERS)
    a_grant(store, "g-reports", alice_id, REPORTS)
    group_rules.remove_members(store, "Ops", ["alice"], T0, actor, revoke=True)
    assert [g.grant_id for g in store.grants.list_active(T0)] == ["g-orders"]


def test_declared_roles_are_checked_and_a_granted_one_cannot_be_removed(
    store: MemoryStore, actor: Actor, people: list[str]
) -> None:
    alice = role_rules.find_principal(store, USER, "alice")
    role_rules.grant_role(store, resource=ORDERS, role="Writer", principal=alice, now=T0, actor=actor)
    with pytest.raises(Conflicting, match="still granted: Writer"):
        update_resource(store, ORDERS, actor=actor, roles=[ResourceRole("Reader")])
    with pytest.raises(InvalidInput, match="declared twice"):
        update_resource(store, ORDERS, actor=actor, roles=[ResourceRole("Writer")] * 2)
    with pytest.raises(InvalidInput, match="is not a role name"):
        update_resource(store, ORDERS, actor=actor, roles=[ResourceRole("Writer"), ResourceRole("no spaces")])
    assert [r.name for r in store.resources.get("r1").roles] == ["Reader", "Writer"]  # type: ignore[union-attr]
    changed = update_resource(
        store, ORDERS, actor=actor, roles=[ResourceRole("Writer", "writes")], include_groups=True
    )
    assert changed.roles == (ResourceRole("Writer", "writes"),) and changed.include_groups
