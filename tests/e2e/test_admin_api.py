"""The admin REST API: only administrators' tokens with the admin scope get in (Keycloak
CVE-2024-3656 class), every change is audited, and revoking a user ends everything."""

from __future__ import annotations

import getpass
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.support import LoginProcess, client_env, introspect, tessera
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
    # Typed answers and RFC 9457 errors (tests/unit/web/test_admin_openapi.py checks each).
    for item in spec["paths"].values():
        for operation in item.values():
            answers = operation["responses"]
            assert any(s.startswith("2") and "application/json" in answers[s]["content"]
                       for s in answers), operation["operationId"]
            assert "application/problem+json" in answers["401"]["content"]


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
                      ).status_code == 409
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
    assert bad.status_code == 400 and "javascript" in bad.json()["detail"]
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


# --- issue 12: the scripts recipe, CLI audit, edit and delete, one error shape ---------------


def _readme_recipe() -> list[list[str]]:
    """The commands of README's admin-scripts recipe (the sh block after "For scripts")."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("For scripts, register", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def test_readme_admin_scripts_recipe_signs_in_and_lists_users(server: Server,
                                                              tmp_path: Path) -> None:
    """The recipe once registered an app without `openid`, which `tessera login` always asks
    for: the login failed with "the app may not ask for openid"."""
    create, login, call = _readme_recipe()

    def ours(argv: list[str]) -> list[str]:
        assert argv[0] == ".venv/bin/tessera"
        return [a.replace("http://127.0.0.1:8000", server.issuer) for a in argv[1:]]

    created = server.cli_json(*ours(create))
    env = client_env(tmp_path)
    args = [a.replace("<client_id>", created["client_id"]) for a in ours(login)]
    assert args[0] == "login"
    process = LoginProcess(env, *args[1:])
    params = {k: v[0] for k, v in parse_qs(urlsplit(process.url()).query).items()}
    browser = Browser(server.base_url)
    try:
        redirect = browser.sign_in_and_authorize("admin", ADMIN_PASSWORD, **params)
        assert redirect.status_code in (302, 303), redirect.text[:300]
        assert "error=" not in redirect.headers["location"], redirect.headers["location"]
        httpx.get(redirect.headers["location"], timeout=10)
    finally:
        browser.close()
    code, out, err = process.finish()
    assert code == 0, (out, err)
    called = tessera(env, *ours(call), "--json")
    assert called.returncode == 0, called.stderr
    body = json.loads(called.stdout)
    assert body["status"] == 200
    assert "admin" in [u["username"] for u in body["body"]]


def _audit(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    time.sleep(0.3)  # the API's audit sink flushes every 100 ms
    return list(admin.get("/audit", params={"limit": "500", **params}).json()["events"])


def test_a_refused_token_request_is_audited_with_the_reason_the_client_is_not_told(
    server: Server, admin: httpx.Client
) -> None:
    """Errors carry a public description and a private debug text; only the audit keeps the
    debug text (docs/architecture.md, "errors")."""
    created = admin.post("/apps", json={
        "name": "Audited refusals", "grant_types": ["client_credentials"],
        "allowed_scopes": []}).json()  # fmt: skip
    refused = httpx.post(f"{server.base_url}/oauth2/v1/token",
                         auth=(created["client_id"], created["client_secret"] + "x"),
                         data={"grant_type": "client_credentials"})  # fmt: skip
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "unknown client or bad credentials"
    assert "live secrets" not in refused.text
    events = _audit(admin, type="token.refused")
    assert any(e["details"].get("reason") == "the secret matches none of the app's live secrets"
               for e in events), events  # fmt: skip


def test_cli_admin_changes_are_in_the_audit_log_like_the_api(server: Server,
                                                             admin: httpx.Client) -> None:
    """CLI changes once bypassed the audit log; now every one is audited as `cli:<OS user>`."""
    actor = f"cli:{getpass.getuser()}"
    user = server.cli_json("admin", "users", "create", "cli-audited", "--password-stdin",
                           input="Quiet-Copper-Lamp-2026\n")
    server.cli_json("admin", "users", "disable", "cli-audited")
    app = server.cli_json("admin", "apps", "create", "--name", "CLI audited app",
                          "--redirect-uri", "https://cli.example.test/cb")
    server.cli_json("admin", "apps", "update", app["client_id"], "--name", "CLI audited app 2")
    server.cli_json("admin", "apps", "delete", app["client_id"])
    server.cli_json("admin", "users", "delete", "cli-audited")
    events = [e for e in _audit(admin) if e["actor"] == actor]
    by_user = [e["type"] for e in events if e["user_id"] == user["id"]]
    by_app = [e["type"] for e in events if e["client_id"] == app["client_id"]]
    assert by_user[::-1] == ["admin.user_created", "admin.user_disabled", "admin.user_deleted"]
    assert by_app[::-1] == ["admin.app_created", "admin.app_updated", "admin.app_deleted"]
    assert "Quiet-Copper-Lamp-2026" not in json.dumps(events)


PROBLEM_KEYS = {"type", "title", "status", "detail", "error"}


def _problem(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status and body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def test_every_kind_of_admin_api_error_is_one_problem_shape_not_fastapi_detail(
    server: Server, admin: httpx.Client
) -> None:
    base = f"{server.base_url}/admin/v1"
    missing = _problem(httpx.get(f"{base}/users"), 401, "invalid_token")
    assert missing["type"] == "about:blank" and missing["title"] == "Unauthorized"
    bad_token = httpx.get(f"{base}/users", headers={"Authorization": "Bearer not.a.jwt"})
    assert _problem(bad_token, 401, "invalid_token")
    assert bad_token.headers["www-authenticate"].startswith("Bearer")
    # Pydantic's validation: a missing field, a wrong type, an unknown field.
    no_name = _problem(admin.post("/users", json={"password": "x"}), 400, "invalid_request")
    assert {"loc": ["body", "username"], "msg": "Field required"} in no_name["errors"]
    wrong = _problem(admin.patch("/users/admin", json={"disabled": "maybe"}), 400,
                     "invalid_request")
    assert wrong["errors"][0]["loc"] == ["body", "disabled"]
    unknown = _problem(admin.patch("/apps/x", json={"redirect_uri": ["x"]}), 400,
                       "invalid_request")
    assert unknown["errors"][0]["loc"] == ["body", "redirect_uri"]
    _problem(admin.post("/users", content=b"{", headers={"content-type": "application/json"}),
             400, "invalid_request")
    # Our rules, missing things, conflicts, methods, sizes.
    _problem(admin.post("/apps", json={"name": "E", "redirect_uris": ["http://evil.test/cb"]}),
             400, "invalid_request")
    assert _problem(admin.get("/users/nobody-here"), 404, "not_found")["detail"] == (
        "no user 'nobody-here'")
    _problem(admin.get("/no-such-route"), 404, "not_found")
    _problem(admin.put("/users"), 405, "method_not_allowed")
    _problem(admin.post("/users", json={"username": "admin", "password": "Long-Enough-Pw-2026"}),
             409, "conflict")
    _problem(admin.post("/users", json={"username": "big", "password": "x" * 1_100_000}), 413,
             "request_too_large")
    chunked = admin.post("/users", content=iter([b'{"username": "', b"x" * 70000]),
                         headers={"content-type": "application/json"})
    assert chunked.status_code in (400, 413)  # no Content-Length: reading stops at the limit
    _problem(chunked, chunked.status_code, chunked.json().get("error", ""))


def test_patching_an_app_applies_the_registration_rules_and_bumps_its_version(
    admin: httpx.Client,
) -> None:
    app = admin.post("/apps", json={"name": "Editable", "redirect_uris":
                                    ["https://edit.example.test/cb"]}).json()
    ref = f"/apps/{app['client_id']}"
    _problem(admin.patch(ref, json={"redirect_uris": ["javascript:alert(1)"]}), 400,
             "invalid_request")
    _problem(admin.patch(ref, json={"allowed_scopes": ["https://nowhere.testx"]}), 400,
             "invalid_request")
    _problem(admin.patch(ref, json={"grant_types": ["password"]}), 400, "invalid_request")
    _problem(admin.patch(ref, json={"access_token_ttl": 5}), 400, "invalid_request")
    _problem(admin.patch(ref, json={"redirect_uris": []}), 400, "invalid_request")
    _problem(admin.patch(ref, json={"name": "Tessera admin console"}), 409, "conflict")
    edited = admin.patch(ref, json={
        "name": "Edited", "redirect_uris": ["https://edit.example.test/cb2"],
        "post_logout_redirect_uris": ["https://edit.example.test/"], "allowed_scopes": ["openid"],
        "grant_types": ["authorization_code"], "access_token_ttl": 600,
        "refresh_token_ttl": 7200})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["version"] == app["version"] + 1
    assert (body["name"], body["redirect_uris"], body["allowed_scopes"], body["grant_types"],
            body["access_token_ttl"], body["refresh_token_ttl"]) == (
        "Edited", ["https://edit.example.test/cb2"], ["openid"], ["authorization_code"], 600, 7200)
    assert body["post_logout_redirect_uris"] == ["https://edit.example.test/"]
    back = admin.patch(ref, json={"access_token_ttl": None}).json()
    assert back["access_token_ttl"] is None and back["version"] == app["version"] + 2
    _problem(admin.patch("/apps/tessera-console", json={"name": "Mine"}), 400, "invalid_request")
    updated = [e for e in _audit(admin, type="admin.app_updated")
               if e["client_id"] == app["client_id"]]
    assert updated and updated[-1]["details"]["changed"]


def test_removing_a_scope_from_an_app_refuses_new_tokens_but_keeps_issued_ones(
    server: Server, admin: httpx.Client
) -> None:
    resource = admin.post("/resources", json={"name": "Scoped API", "audience":
                                              "https://scoped.test", "scopes": ["read", "write"]})
    ref = f"/resources/{resource.json()['id']}"
    created = admin.post("/apps", json={
        "name": "Scoped app", "grant_types": ["client_credentials"],
        "allowed_scopes": ["https://scoped.testread", "https://scoped.testwrite"]}).json()
    auth = (created["client_id"], created["client_secret"])

    def token(scope: str) -> httpx.Response:
        return httpx.post(f"{server.base_url}/oauth2/v1/token", auth=auth,
                          data={"grant_type": "client_credentials", "scope": scope})

    issued = token("https://scoped.testwrite").json()["access_token"]
    admin.patch(f"/apps/{created['client_id']}",
                json={"allowed_scopes": ["https://scoped.testread"]}).raise_for_status()
    refused = token("https://scoped.testwrite")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert token("https://scoped.testread").status_code == 200
    # Introspected by the token's own app (other apps learn nothing of it: RFC 7662 §4).
    issued_state = httpx.post(f"{server.base_url}/oauth2/v1/introspect", auth=auth,
                              data={"token": issued}).json()
    assert issued_state["active"] is True
    # A resource scope an app still allows cannot be removed from the resource.
    _problem(admin.patch(ref, json={"scopes": ["write"]}), 409,
             "conflict")
    renamed = admin.patch(ref, json={"name": "Scoped API v2", "scopes": ["read", "admin"],
                                      "access_token_ttl": 300})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["scopes"] == ["read", "admin"]
    assert renamed.json()["access_token_ttl"] == 300


def test_deleting_a_user_revokes_tokens_and_sessions_before_removing_the_account(
    server: Server, admin: httpx.Client
) -> None:
    password = "Short-Lived-Account-2026"
    user = admin.post("/users", json={"username": "leaver", "password": password,
                                      "email": "leaver@example.test"}).json()
    demo = server.demo
    app = demo["confidential_app"]
    auth = (app["client_id"], app["client_secret"])
    browser = Browser(server.base_url)
    response = browser.sign_in_and_authorize(
        "leaver", password, response_type="code", client_id=app["client_id"],
        redirect_uri=app["redirect_uri"], scope=f"openid {demo['resource']['scope']}", state="s")
    tokens = httpx.post(f"{server.base_url}/oauth2/v1/token", auth=auth, data={
        "grant_type": "authorization_code", "code": code_from(response),
        "redirect_uri": app["redirect_uri"]}).json()
    assert introspect(server, tokens["access_token"])["active"] is True

    deleted = admin.delete(f"/users/{user['id']}")
    assert deleted.status_code == 200, deleted.text
    assert introspect(server, tokens["access_token"])["active"] is False
    assert introspect(server, tokens["refresh_token"])["active"] is False
    _problem(admin.get(f"/users/{user['id']}"), 404, "not_found")
    again = browser.authorize(response_type="code", client_id=app["client_id"],
                              redirect_uri=app["redirect_uri"], scope="openid", state="s")
    assert again.status_code == 200 and 'name="password"' in again.text  # the session ended
    browser.close()
    events = [e for e in _audit(admin, type="admin.user_deleted") if e["user_id"] == user["id"]]
    assert events and events[0]["details"]["grants"] >= 1
    assert "leaver@example.test" not in json.dumps(events)
    # The username can be taken again, by a new account with a new `sub`.
    reborn = admin.post("/users", json={"username": "leaver", "password": password}).json()
    assert reborn["id"] != user["id"]


def test_the_last_administrator_cannot_be_deleted(admin: httpx.Client) -> None:
    second = admin.post("/users", json={"username": "second-admin", "is_admin": True,
                                        "password": "Copper-Kettle-Key-2026"}).json()
    for other in admin.get("/users").json():
        if other["is_admin"] and other["username"] not in ("admin", "second-admin"):
            admin.delete(f"/users/{other['id']}").raise_for_status()
    assert admin.delete(f"/users/{second['id']}").status_code == 200  # "admin" remains
    body = _problem(admin.delete("/users/admin"), 409, "conflict")
    assert "last administrator" in body["detail"]
    assert admin.get("/users/admin").status_code == 200
