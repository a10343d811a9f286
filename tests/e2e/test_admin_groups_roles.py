"""Groups and role grants through the admin API (issue 19, item 4): `/admin/v1/groups…` and
`/admin/v1/role-grants`, resources' `roles` and `include_groups`; every refusal an RFC 9457
problem that writes nothing; a grant reaches the next token (a user's through a group, an
app's client-credentials token) and a revocation with `revoke_tokens` ends the tokens already
issued (docs/groups-and-roles.md)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from tests.support.admin import console_token
from tests.support.flow import Browser, code_from
from tests.support.server import Server

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
ALICE_PASSWORD = "Wonderland-Demo-2026"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def admin(server: Server) -> httpx.Client:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    return httpx.Client(base_url=f"{server.base_url}/admin/v1",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def claims(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    return str(body["detail"])


def user(admin: httpx.Client, username: str) -> dict[str, Any]:
    created = admin.post("/users", json={"username": username, "password": "Quiet-Harbor-2026"})
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_the_openapi_description_documents_groups_and_role_grants(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/admin/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/groups"]) == {"get", "post"}
    assert set(paths["/groups/{group}"]) == {"get", "patch", "delete"}
    assert set(paths["/groups/{group}/members"]) == {"post", "delete"}
    assert set(paths["/role-grants"]) == {"get", "post", "delete"}
    assert set(paths["/users/{user}/roles"]) == {"get"}
    params = {p["name"] for p in paths["/role-grants"]["delete"]["parameters"]}
    assert params == {"resource", "role", "principal_kind", "principal", "revoke_tokens"}
    schemas = spec["components"]["schemas"]
    assert {"roles", "include_groups"} <= set(schemas["ResourceOut"]["properties"])
    assert "409" in paths["/groups"]["post"]["responses"]
    assert PROBLEM in paths["/role-grants"]["post"]["responses"]["404"]["content"]


def test_groups_are_created_listed_shown_renamed_and_deleted(admin: httpx.Client) -> None:
    ann = user(admin, "ann")
    created = admin.post("/groups", json={"name": "Auditors", "description": "Read the books",
                                          "members": ["ann"]})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["name"] == "Auditors" and group["version"] == 1
    assert group["members"] == [{"id": ann["id"], "username": "ann", "display_name": "ann"}]
    assert group["roles"] == []

    assert "already exists" in problem(admin.post("/groups", json={"name": "auditors"}), 409)
    assert "no user 'nobody'" in problem(
        admin.post("/groups", json={"name": "Ghosts", "members": ["nobody"]}), 404)
    assert "name" in problem(admin.post("/groups", json={"name": ""}), 400)
    assert "Extra inputs" in problem(admin.post("/groups", json={"name": "X", "colour": "red"}), 400)
    names = [g["name"] for g in admin.get("/groups").json()]
    assert "Ghosts" not in names and "Auditors" in names
    (listed,) = [g for g in admin.get("/groups").json() if g["name"] == "Auditors"]
    assert listed["member_count"] == 1 and "members" not in listed

    assert admin.get("/groups/auditors").json()["id"] == group["id"]  # by name, any case
    renamed = admin.patch(f"/groups/{group['id']}", json={"name": "Internal audit"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Internal audit"
    assert renamed.json()["version"] > group["version"]
    assert "no group" in problem(admin.get("/groups/Auditors"), 404)

    gone = admin.delete(f"/groups/{group['id']}")
    assert gone.status_code == 200
    assert gone.json() == {"deleted": group["id"], "name": "Internal audit", "tokens_revoked": False}
    assert "no group" in problem(admin.get(f"/groups/{group['id']}"), 404)
    assert admin.get(f"/users/{ann['id']}").status_code == 200  # members stay users


def test_members_are_added_and_removed(admin: httpx.Client) -> None:
    user(admin, "bea")
    user(admin, "cal")
    group = admin.post("/groups", json={"name": "Operators"}).json()
    added = admin.post(f"/groups/{group['id']}/members", json={"users": ["bea", "cal", "bea"]})
    assert added.status_code == 200, added.text
    assert [m["username"] for m in added.json()["members"]] == ["bea", "cal"]
    assert "no user 'dan'" in problem(
        admin.post(f"/groups/{group['id']}/members", json={"users": ["dan"]}), 404)
    problem(admin.post(f"/groups/{group['id']}/members", json={"users": []}), 400)
    removed = admin.delete(f"/groups/{group['id']}/members", params={"user": ["cal"]})
    assert removed.status_code == 200, removed.text
    assert [m["username"] for m in removed.json()["members"]] == ["bea"]
    problem(admin.delete(f"/groups/{group['id']}/members"), 400)  # no user named
    time.sleep(0.3)  # the audit sink flushes every 100 ms
    events = admin.get("/audit", params={"type": "admin.group_members_removed"}).json()["events"]
    assert events and events[0]["details"]["group"] == group["id"]


def test_resources_declare_roles_and_the_groups_claim(admin: httpx.Client) -> None:
    created = admin.post("/resources", json={
        "name": "Ledger", "audience": "https://ledger.example.test", "scopes": ["read"],
        "roles": [{"name": "Clerk", "description": "Posts entries"}, {"name": "Reader"}],
        "include_groups": True})
    assert created.status_code == 201, created.text
    resource = created.json()
    assert resource["roles"] == [{"name": "Clerk", "description": "Posts entries"},
                                 {"name": "Reader", "description": ""}]
    assert resource["include_groups"] is True
    assert "not a role name" in problem(admin.patch(f"/resources/{resource['id']}", json={
        "roles": [{"name": "has space"}]}), 400)
    assert "twice" in problem(admin.patch(f"/resources/{resource['id']}", json={
        "roles": [{"name": "Clerk"}, {"name": "Clerk"}]}), 400)
    grant = admin.post("/role-grants", json={"resource": "Ledger", "role": "Clerk",
                                             "principal_kind": "user", "principal": "admin"})
    assert grant.status_code == 201, grant.text
    assert "still granted: Clerk" in problem(admin.patch(f"/resources/{resource['id']}", json={
        "roles": [{"name": "Reader"}]}), 409)
    assert [r["name"] for r in admin.get(f"/resources/{resource['id']}").json()["roles"]] == [
        "Clerk", "Reader"]
    # Dropping a role nobody holds, and the groups claim.
    changed = admin.patch(f"/resources/{resource['id']}", json={
        "roles": [{"name": "Clerk", "description": "Posts entries"}], "include_groups": False})
    assert changed.status_code == 200, changed.text
    assert [r["name"] for r in changed.json()["roles"]] == ["Clerk"]
    assert changed.json()["include_groups"] is False


def test_role_grants_are_listed_granted_and_revoked(admin: httpx.Client) -> None:
    eve = user(admin, "eve")
    admin.post("/resources", json={"name": "Vault", "audience": "https://vault.example.test",
                                   "scopes": ["open"], "roles": [{"name": "Keyholder"}]})
    group = admin.post("/groups", json={"name": "Keyholders", "members": ["eve"]}).json()

    def grant(**body: str) -> httpx.Response:
        return admin.post("/role-grants", json={"resource": "Vault", "role": "Keyholder", **body})

    given = grant(principal_kind="group", principal="keyholders")
    assert given.status_code == 201, given.text
    view = given.json()
    assert view["principal_id"] == group["id"] and view["principal_name"] == "Keyholders"
    assert view["resource"] == "https://vault.example.test" and view["granted_by"]
    assert "already has" in problem(grant(principal_kind="group", principal=group["id"]), 409)
    assert "declares no role 'Janitor'" in problem(admin.post("/role-grants", json={
        "resource": "Vault", "role": "Janitor", "principal_kind": "user", "principal": "eve"}), 404)
    assert "no user 'zed'" in problem(grant(principal_kind="user", principal="zed"), 404)
    assert "no resource" in problem(admin.post("/role-grants", json={
        "resource": "Nowhere", "role": "Keyholder", "principal_kind": "user", "principal": "eve"}),
        404)
    problem(grant(principal_kind="robot", principal="eve"), 400)

    listed = admin.get("/role-grants", params={"resource": "Vault"}).json()
    assert [(g["principal_kind"], g["principal_name"]) for g in listed] == [("group", "Keyholders")]
    assert admin.get("/role-grants", params={"principal_kind": "user", "principal": "eve"}
                     ).json() == []  # eve's own grants: none, hers come through the group
    assert "together" in problem(admin.get("/role-grants", params={"principal_kind": "user"}), 400)
    shown = admin.get(f"/groups/{group['id']}").json()
    assert [g["role"] for g in shown["roles"]] == ["Keyholder"]
    access = admin.get("/users/eve/roles").json()
    assert access["user_id"] == eve["id"] and access["groups"] == [
        {"id": group["id"], "name": "Keyholders"}]
    assert [(r["resource_name"], r["roles"]) for r in access["roles"]] == [("Vault", ["Keyholder"])]
    assert "no user" in problem(admin.get("/users/nobody/roles"), 404)

    def revoke(**params: str) -> httpx.Response:
        return admin.delete("/role-grants", params={"resource": "Vault", "role": "Keyholder",
                                                    **params})

    assert "does not have the role" in problem(
        revoke(principal_kind="user", principal=eve["id"]), 404)
    done = revoke(principal_kind="group", principal="Keyholders")
    assert done.status_code == 200, done.text
    assert done.json()["revoked_grants"] == 0 and done.json()["app_tokens_revoked"] is False
    assert admin.get("/role-grants", params={"resource": "Vault"}).json() == []
    problem(revoke(principal_kind="group", principal="Keyholders"), 404)


def _alice_token(server: Server, scope: str) -> dict[str, Any]:
    demo = server.demo
    app = demo["confidential_app"]
    browser = Browser(server.base_url)
    try:
        response = browser.sign_in_and_authorize(
            "alice", ALICE_PASSWORD, response_type="code", client_id=app["client_id"],
            redirect_uri=app["redirect_uri"], scope=scope, state="s")
        tokens = httpx.post(f"{server.base_url}/oauth2/v1/token",
                            auth=(app["client_id"], app["client_secret"]),
                            data={"grant_type": "authorization_code", "code": code_from(response),
                                  "redirect_uri": app["redirect_uri"]})
    finally:
        browser.close()
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def _active(server: Server, token: str) -> bool:
    app = server.demo["confidential_app"]
    body = httpx.post(f"{server.base_url}/oauth2/v1/introspect",
                      auth=(app["client_id"], app["client_secret"]), data={"token": token})
    return bool(body.json()["active"])


def test_a_group_role_reaches_the_next_token_and_revoking_it_ends_the_tokens(
    server: Server, admin: httpx.Client
) -> None:
    demo = server.demo
    audience = demo["resource"]["audience"]
    (resource,) = [r for r in admin.get("/resources").json() if r["audience"] == audience]
    # Keep what the demo's resource declares; add a role of this test's own.
    roles = [*resource["roles"], {"name": "GroupTester", "description": "for this test"}]
    patched = admin.patch(f"/resources/{resource['id']}", json={"roles": roles,
                                                                "include_groups": True})
    assert patched.status_code == 200, patched.text
    admin.post("/groups", json={"name": "Testers", "members": ["alice"]})
    granted = admin.post("/role-grants", json={"resource": audience, "role": "GroupTester",
                                               "principal_kind": "group", "principal": "Testers"})
    assert granted.status_code == 201, granted.text

    tokens = _alice_token(server, demo["resource"]["scope"])
    access = claims(tokens["access_token"])
    assert "GroupTester" in access["roles"] and "Testers" in access["groups"]
    assert _active(server, tokens["access_token"])

    revoked = admin.delete("/role-grants", params={
        "resource": audience, "role": "GroupTester", "principal_kind": "group",
        "principal": "Testers", "revoke_tokens": "true"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_grants"] >= 1
    assert not _active(server, tokens["access_token"])
    assert not _active(server, tokens["refresh_token"])
    again = claims(_alice_token(server, demo["resource"]["scope"])["access_token"])
    assert "GroupTester" not in again.get("roles", [])


def test_an_app_role_reaches_its_client_credentials_token_and_can_be_revoked(
    server: Server, admin: httpx.Client
) -> None:
    audience = "https://robots.example.test"
    admin.post("/resources", json={"name": "Robots", "audience": audience, "scopes": ["run"],
                                   "roles": [{"name": "Invoker"}, {"name": "Auditor"}]})
    app = admin.post("/apps", json={"name": "Robot", "grant_types": ["client_credentials"],
                                    "allowed_scopes": [f"{audience}run"]}).json()
    granted = admin.post("/role-grants", json={"resource": "Robots", "role": "Invoker",
                                               "principal_kind": "app", "principal": "Robot"})
    assert granted.status_code == 201, granted.text
    assert granted.json()["principal_id"] == app["client_id"]

    def token() -> str:
        answer = httpx.post(f"{server.base_url}/oauth2/v1/token",
                            auth=(app["client_id"], app["client_secret"]),
                            data={"grant_type": "client_credentials", "scope": f"{audience}run"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def active(value: str) -> bool:  # the app introspects its own tokens (RFC 7662 §2.1)
        body = httpx.post(f"{server.base_url}/oauth2/v1/introspect",
                          auth=(app["client_id"], app["client_secret"]), data={"token": value})
        return bool(body.json()["active"])

    first = token()
    assert claims(first)["roles"] == ["Invoker"] and active(first)
    # The node keeps an app's roles a moment (APP_ROLES_TTL, loaded by the token just made):
    # a grant through the admin API reaches this node's next token at once.
    assert admin.post("/role-grants", json={"resource": "Robots", "role": "Auditor",
                                            "principal_kind": "app", "principal": "Robot"},
                      ).status_code == 201
    assert sorted(claims(token())["roles"]) == ["Auditor", "Invoker"]
    assert admin.delete("/role-grants", params={"resource": audience, "role": "Auditor",
                                                "principal_kind": "app", "principal": "Robot"},
                        ).status_code == 200
    assert claims(token())["roles"] == ["Invoker"]
    revoked = admin.delete("/role-grants", params={
        "resource": audience, "role": "Invoker", "principal_kind": "app",
        "principal": app["client_id"], "revoke_tokens": "true"})
    assert revoked.status_code == 200 and revoked.json()["app_tokens_revoked"] is True
    assert not active(first)
    # Nodes keep an app's roles a moment (APP_ROLES_TTL): the cut-off covers the tokens they
    # issue meanwhile, and the first token after it carries the role no more.
    deadline = time.monotonic() + 15
    fresh = token()
    while not active(fresh) and time.monotonic() < deadline:
        time.sleep(0.2)
        fresh = token()
    assert active(fresh) and claims(fresh).get("roles", []) == []


def test_deleting_a_group_with_revoke_tokens_ends_its_members_tokens(
    server: Server, admin: httpx.Client
) -> None:
    demo = server.demo
    audience = demo["resource"]["audience"]
    (resource,) = [r for r in admin.get("/resources").json() if r["audience"] == audience]
    roles = [*resource["roles"], {"name": "Temporary"}]
    admin.patch(f"/resources/{resource['id']}", json={"roles": roles})
    group = admin.post("/groups", json={"name": "Short-lived", "members": ["alice"]}).json()
    admin.post("/role-grants", json={"resource": audience, "role": "Temporary",
                                     "principal_kind": "group", "principal": group["id"]})
    tokens = _alice_token(server, demo["resource"]["scope"])
    assert "Temporary" in claims(tokens["access_token"])["roles"]
    gone = admin.delete(f"/groups/{group['id']}", params={"revoke_tokens": "true"})
    assert gone.status_code == 200 and gone.json()["tokens_revoked"] is True
    assert not _active(server, tokens["access_token"])
    assert admin.get("/role-grants", params={"resource": audience, "principal_kind": "group",
                                             "principal": group["id"]}).status_code == 404


def test_the_lower_case_groups_api_and_scims_groups_do_not_collide(admin: httpx.Client) -> None:
    """`/admin/v1/groups` is this API, `/admin/v1/Groups` SCIM's (paths are case-sensitive):
    the same group, each in its own shape."""
    made = admin.post("/groups", json={"name": "Both APIs"}).json()
    ours = admin.get(f"/groups/{made['id']}")
    assert ours.headers["content-type"].startswith("application/json")
    assert ours.json()["name"] == "Both APIs" and "schemas" not in ours.json()
    scim = admin.get(f"/Groups/{made['id']}")
    assert scim.status_code == 200, scim.text
    assert scim.json()["displayName"] == "Both APIs" and scim.json()["schemas"]
