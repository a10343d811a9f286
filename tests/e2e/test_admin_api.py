"""The admin REST API: only administrators' tokens with the admin scope get in (Keycloak
CVE-2024-3656 class), every change is audited, and revoking a user ends everything."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.support.admin import console_token
from tests.support.flow import Browser, code_from
from tests.support.server import Server

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
ALICE_PASSWORD = "Wonderland-Demo-2026"


@pytest.fixture(scope="module")
def admin(server: Server) -> httpx.Client:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    return httpx.Client(base_url=f"{server.base_url}/admin/v1",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _routes(server: Server) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.base_url}/admin/v1/openapi.json").json()
    routes = []
    for path, item in spec["paths"].items():
        for method in item:
            routes.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path)))
    return routes


def test_the_openapi_description_lists_every_admin_route(server: Server) -> None:
    routes = _routes(server)
    assert len(routes) >= 25
    spec = httpx.get(f"{server.base_url}/admin/v1/openapi.json").json()
    assert spec["servers"] == [{"url": "/admin/v1"}]


def test_every_admin_route_refuses_a_missing_token_with_401(server: Server) -> None:
    for method, path in _routes(server):
        response = httpx.request(method, f"{server.base_url}/admin/v1{path}", json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_admin_route_refuses_a_non_admin_token_with_403(server: Server) -> None:
    demo = server.demo
    app = demo["confidential_app"]
    # A valid user token for another audience, and a client token: neither carries the scope.
    browser = Browser(server.base_url)
    response = browser.sign_in_and_authorize(
        "alice", ALICE_PASSWORD, response_type="code", client_id=app["client_id"],
        redirect_uri=app["redirect_uri"], scope=demo["resource"]["scope"], state="s")
    user_token = httpx.post(f"{server.base_url}/oauth2/v1/token", auth=(app["client_id"],
                            app["client_secret"]), data={"grant_type": "authorization_code",
                            "code": code_from(response), "redirect_uri": app["redirect_uri"]}
                            ).json()["access_token"]
    for method, path in _routes(server):
        response = httpx.request(method, f"{server.base_url}/admin/v1{path}", json={},
                                 headers={"Authorization": f"Bearer {user_token}"})
        # Another audience is an invalid token here (401); nothing gets through either way.
        assert response.status_code in (401, 403), (method, path, response.status_code)


def test_a_non_admin_user_cannot_obtain_the_admin_scope(server: Server) -> None:
    with pytest.raises(AssertionError, match="access_denied"):
        console_token(server.base_url, "alice", ALICE_PASSWORD)


def test_an_admin_scope_token_of_a_demoted_admin_is_refused_at_refresh(server: Server,
                                                                        admin: httpx.Client) -> None:
    created = admin.post("/users", json={"username": "temp-admin", "password":
                                         "Temporary-Admin-2026", "is_admin": True})
    assert created.status_code == 201, created.text
    tokens = console_token(server.base_url, "temp-admin", "Temporary-Admin-2026")
    server.cli("admin", "users", "disable", "temp-admin")
    refreshed = httpx.post(f"{server.base_url}/oauth2/v1/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": "tessera-console"})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_users_apps_resources_and_keys_through_the_api(admin: httpx.Client) -> None:
    user = admin.post("/users", json={"username": "api-user", "password": "Orange-Bicycle-2026",
                                      "email": "api@example.test"}).json()
    assert admin.get(f"/users/{user['id']}").json()["username"] == "api-user"
    assert admin.post("/users", json={"username": "API-USER", "password": "Orange-Bicycle-2026"}
                      ).status_code == 400
    resource = admin.post("/resources", json={"name": "Orders API", "audience":
                                              "https://orders.example.test",
                                              "scopes": ["orders:read"]})
    assert resource.status_code == 201, resource.text
    app = admin.post("/apps", json={"name": "Orders app", "redirect_uris":
                                    ["https://orders.example.test/cb"], "allowed_scopes":
                                    ["openid", "https://orders.example.testorders:read"]})
    assert app.status_code == 201, app.text
    body = app.json()
    assert body["client_secret"]
    shown = admin.get(f"/apps/{body['client_id']}").json()
    assert "client_secret" not in shown
    rotated = admin.post(f"/apps/{body['client_id']}/rotate-secret", json={"grace_seconds": 60})
    assert rotated.json()["client_secret"] != body["client_secret"]
    bad = admin.post("/apps", json={"name": "Evil", "redirect_uris": ["javascript:alert(1)"]})
    assert bad.status_code == 400 and "javascript" in bad.json()["error_description"]
    keys = admin.get("/keys").json()
    assert {k["state"] for k in keys} >= {"active", "next"}
    rotated_keys = admin.post("/keys/rotate", json={"alg": "ES256"}).json()
    assert rotated_keys[0]["alg"] == "ES256"


def test_revoking_a_user_ends_sessions_grants_and_access_tokens(server: Server,
                                                                admin: httpx.Client) -> None:
    demo = server.demo
    app = demo["confidential_app"]
    auth = (app["client_id"], app["client_secret"])
    browser = Browser(server.base_url)
    response = browser.sign_in_and_authorize(
        "alice", ALICE_PASSWORD, response_type="code", client_id=app["client_id"],
        redirect_uri=app["redirect_uri"], scope=f"openid {demo['resource']['scope']}", state="s")
    tokens = httpx.post(f"{server.base_url}/oauth2/v1/token", auth=auth, data={
        "grant_type": "authorization_code", "code": code_from(response),
        "redirect_uri": app["redirect_uri"]}).json()
    alice = demo["user"]["sub"]
    assert admin.get(f"/users/{alice}/grants").json()
    assert admin.get(f"/users/{alice}/sessions").json()

    result = admin.post(f"/users/{alice}/revoke-tokens").json()
    assert result["sessions"] >= 1 and result["grants"] >= 1

    def active(token: str) -> Any:
        return httpx.post(f"{server.base_url}/oauth2/v1/introspect", auth=auth,
                          data={"token": token}).json()["active"]

    assert active(tokens["access_token"]) is False
    assert active(tokens["refresh_token"]) is False
    assert admin.get(f"/users/{alice}/grants").json() == []
    assert admin.get(f"/users/{alice}/sessions").json() == []
    # The browser session ended too: authorize asks for a login again.
    again = browser.authorize(response_type="code", client_id=app["client_id"],
                              redirect_uri=app["redirect_uri"], scope="openid", state="s")
    assert again.status_code == 200 and 'name="password"' in again.text


def test_admin_changes_are_audited_without_secrets(admin: httpx.Client) -> None:
    created = admin.post("/users", json={"username": "audited", "password":
                                         "Quiet-Harbor-Lamp-2026"}).json()
    time.sleep(0.3)  # the audit sink flushes every 100 ms
    events = admin.get("/audit", params={"type": "admin.user_created"}).json()["events"]
    mine = [e for e in events if e["user_id"] == created["id"]]
    assert mine and mine[0]["actor"]
    assert "Quiet-Harbor-Lamp-2026" not in str(events)
    page = admin.get("/audit", params={"limit": 2}).json()
    assert len(page["events"]) == 2 and page["next_before_id"]
    older = admin.get("/audit", params={"limit": 2, "before_id": page["next_before_id"]}).json()
    assert all(e["id"] < page["next_before_id"] for e in older["events"])
