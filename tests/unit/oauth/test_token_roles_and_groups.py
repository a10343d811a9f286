"""Application roles and groups in tokens (RFC 9068 §2.2.3.1; docs/groups-and-roles.md): an
access token for a resource carries the caller's roles on that resource only, read when the
token is issued; `groups` when the resource asks; the `groups` scope in ID tokens and userinfo."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from joserfc import jwt

from tessera.domain.model import (
    Client,
    Group,
    PrincipalKind,
    Resource,
    ResourceRole,
    RoleGrant,
    User,
)
from tessera.oauth.memberships import Memberships
from tests.unit.oauth.conftest import Core

ORDERS = "https://orders.test"
REPORTS = "https://reports.test"
USER, GROUP, APP = PrincipalKind.USER, PrincipalKind.GROUP, PrincipalKind.APP


def claims(core: Core, token: str) -> dict[str, Any]:
    return core.issuer.verify_own(token, int(core.clock().timestamp()))


def declare(core: Core, resource: Resource, *roles: str, groups: bool = False) -> Resource:
    declared = tuple(ResourceRole(r) for r in roles)
    changed = replace(resource, roles=declared, include_groups=groups)
    core.store.resources.update(changed)
    return changed


def grant(core: Core, resource: Resource, role: str, kind: PrincipalKind, who: str) -> None:
    assert core.store.roles.grant(RoleGrant(resource.id, role, kind, who, core.clock()))


@pytest.fixture
def orders(core: Core) -> Resource:
    return declare(core, core.add_resource(ORDERS, ("read",)), "Reader", "Writer", "Auditor")


@pytest.fixture
def reports(core: Core) -> Resource:
    return declare(core, core.add_resource(REPORTS, ("view",)), "Reader", "Viewer")


@pytest.fixture
def alice(core: Core, orders: Resource, reports: Resource) -> User:
    """Reader of ORDERS herself, Writer through the Ops group; Viewer of REPORTS."""
    alice = core.add_user()
    core.store.groups.add(Group("g-ops", "Ops", core.clock(), core.clock()), [alice.id])
    grant(core, orders, "Reader", USER, alice.id)
    grant(core, orders, "Writer", GROUP, "g-ops")
    grant(core, reports, "Viewer", USER, alice.id)
    return alice


@pytest.fixture
def web(core: Core, orders: Resource, reports: Resource) -> Client:
    scopes = ("openid", "profile", "groups", "offline_access", f"{ORDERS}read", f"{REPORTS}view")
    return core.add_app(allowed_scopes=scopes)[0]


def test_a_users_token_carries_her_roles_on_its_resource_direct_and_through_groups(
    core: Core, web: Client, alice: User
) -> None:
    body = core.code_flow(web, alice, f"openid {ORDERS}read")
    token = claims(core, body["access_token"])
    assert token["roles"] == ["Reader", "Writer"]
    assert "groups" not in token  # ORDERS does not ask for them


def test_a_token_for_another_resource_never_carries_these_roles(
    core: Core, web: Client, alice: User
) -> None:
    body = core.code_flow(web, alice, f"openid {REPORTS}view")
    assert claims(core, body["access_token"])["roles"] == ["Viewer"]


def test_groups_when_the_resource_asks(
    core: Core, web: Client, alice: User, orders: Resource
) -> None:
    declare(core, orders, "Reader", "Writer", groups=True)
    token = claims(core, core.code_flow(web, alice, f"openid {ORDERS}read")["access_token"])
    assert token["groups"] == ["Ops"]


def test_no_roles_claim_without_roles_and_none_for_a_resource_without_roles(
    core: Core, web: Client, alice: User, orders: Resource
) -> None:
    bob = core.add_user("bob")
    assert "roles" not in claims(core, core.code_flow(web, bob, f"{ORDERS}read")["access_token"])
    declare(core, orders)  # ORDERS declares no roles any more: its grants give nothing
    body = core.code_flow(web, alice, f"openid {ORDERS}read")
    assert "roles" not in claims(core, body["access_token"])


def test_a_grant_of_a_role_the_resource_no_longer_declares_gives_nothing(
    core: Core, web: Client, alice: User, orders: Resource
) -> None:
    declare(core, orders, "Reader", "Auditor")  # Writer is gone, its group grant stays stored
    body = core.code_flow(web, alice, f"openid {ORDERS}read")
    assert claims(core, body["access_token"])["roles"] == ["Reader"]


def test_role_changes_reach_the_next_token_a_refresh_included(
    core: Core, web: Client, alice: User, orders: Resource
) -> None:
    body = core.code_flow(web, alice, f"openid offline_access {ORDERS}read")
    assert core.store.roles.revoke(orders.id, "Writer", GROUP, "g-ops")
    core.store.groups.change_members("g-ops", (), (alice.id,), core.clock())
    grant(core, orders, "Auditor", USER, alice.id)
    assert claims(core, body["access_token"])["roles"] == ["Reader", "Writer"]  # as issued
    refreshed = core.refresh(web, body["refresh_token"])
    assert claims(core, refreshed["access_token"])["roles"] == ["Auditor", "Reader"]


def test_an_apps_own_token_carries_the_roles_granted_to_the_app(
    core: Core, orders: Resource, alice: User
) -> None:
    app, _ = core.add_app(grant_types=("client_credentials",), allowed_scopes=(f"{ORDERS}read",))
    assert "roles" not in claims(core, core.client_credentials(app, f"{ORDERS}read")["access_token"])
    grant(core, orders, "Auditor", APP, app.client_id)
    grant(core, orders, "Writer", USER, app.client_id)  # a user grant with the app's id: not it
    token = claims(core, core.client_credentials(app, f"{ORDERS}read")["access_token"])
    assert token["roles"] == ["Auditor"]


def test_the_groups_scope_releases_group_names_in_the_id_token_and_userinfo(
    core: Core, web: Client, alice: User
) -> None:
    body = core.code_flow(web, alice, f"openid groups {ORDERS}read")
    id_token = jwt.decode(body["id_token"], core.keys.verification_keys()).claims
    assert id_token["groups"] == ["Ops"]
    memberships = Memberships(core.store)
    info = core.userinfo(body["access_token"], group_names=memberships.group_names)
    assert info["groups"] == ["Ops"]
    without = core.code_flow(web, alice, f"openid {ORDERS}read")
    assert "groups" not in jwt.decode(without["id_token"], core.keys.verification_keys()).claims
    assert "groups" not in core.userinfo(without["access_token"], group_names=memberships.group_names)


def test_introspection_says_the_roles_and_groups_the_token_carries(
    core: Core, web: Client, alice: User, orders: Resource
) -> None:
    declare(core, orders, "Reader", "Writer", groups=True)
    body = core.code_flow(web, alice, f"openid {ORDERS}read")
    described = core.introspect(web, body["access_token"])
    assert described["active"] and described["roles"] == ["Reader", "Writer"]
    assert described["groups"] == ["Ops"]


def test_an_apps_own_token_has_an_empty_groups_claim_where_the_resource_asks(
    core: Core, orders: Resource
) -> None:
    app, _ = core.add_app(grant_types=("client_credentials",), allowed_scopes=(f"{ORDERS}read",))
    for roles in (("Reader",), ()):  # with and without roles declared, alike
        declare(core, orders, *roles, groups=True)
        token = claims(core, core.client_credentials(app, f"{ORDERS}read")["access_token"])
        assert token["groups"] == [] and "roles" not in token
