"""Administrators and second factors over HTTP (issue 15, item 6; docs/mfa.md): a domain's
administrators set its sign-in policy (`/admin/v1/sign-in-policy`) and an app's own
(`mfa_policy`), see a user's factors (never a secret) and reset them, which ends the user's
sessions. The user enrolls the way a user does: the domain requires a second factor, so the
sign-in leads to the authenticator app's page after the password.

Each test that changes a policy does so in an identity domain of its own, so the demo's
administrators keep signing in with a password alone.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from tests.support.admin import admin_client, console_token, domain_console_token
from tests.support.domains import ADMIN_PASSWORD, create_domain, domain_cli
from tests.support.flow import Browser, Pkce, code_from, form_fields
from tests.support.server import Server

DEMO_ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
ALICE_PASSWORD = "Wonderland-Demo-2026"
PASSWORD = "Quartz-Meadow-Passw0rd-2026"
REDIRECT_URI = "http://127.0.0.1:8080/callback"
_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
_names = itertools.count(1)
EMPTY = {
    "passkeys": [],
    "authenticator_app": None,
    "recovery_codes": {"left": 0, "total": 0, "created_at": None},
    "has_second_factor": False,
}


@pytest.fixture(scope="module")
def admin(server: Server) -> httpx.Client:
    token = console_token(server.base_url, "admin", DEMO_ADMIN_PASSWORD)["access_token"]
    return admin_client(server.base_url, token)


@dataclass
class Site:
    """A domain of its own: its administrator's API client, a user (carol) and an app."""

    name: str
    issuer: str
    api: httpx.Client
    app: dict[str, Any]

    def params(self, pkce: Pkce) -> dict[str, str]:
        return {
            "response_type": "code", "client_id": self.app["client_id"],
            "redirect_uri": REDIRECT_URI, "scope": "openid", "state": "st",
            "code_challenge": pkce.challenge, "code_challenge_method": "S256",
        }  # fmt: skip


def site(server: Server) -> Site:
    name = f"factors{next(_names)}"
    domain = create_domain(server, name)
    # The domain administrator's token, before any policy asks administrators for more.
    token = domain_console_token(domain, "alice", ADMIN_PASSWORD)["access_token"]
    domain_cli(server, name, "users", "create", "carol", "--password-stdin", input=PASSWORD + "\n")
    app = domain_cli(
        server, name, "apps", "create", "--name", "Portal", "--redirect-uri", REDIRECT_URI,
        "--grant-type", "authorization_code", "--allow-scope", "openid",
    )  # fmt: skip
    return Site(name, domain["issuer"], admin_client(domain["issuer"], token), app)


def sign_in(b: Browser, s: Site) -> httpx.Response:
    """authorize → the password → the page after it."""
    page = b.authorize(**s.params(Pkce()))
    assert 'name="password"' in page.text, page.text[:300]
    return b.follow(b.login(page, "carol", PASSWORD))


def enroll_totp(b: Browser, s: Site, page: httpx.Response) -> None:
    """Set up the authenticator app from the page's text fallback, as a phone would."""
    assert "Set up a second factor" in page.text, page.text[:800]
    secret = _SECRET.search(page.text)
    assert secret, page.text[:800]
    html = page.text
    start = html.index('id="totp-form"')
    form = html[html.rindex("<form", 0, start) : html.index("</form>", start)]
    code = pyotp.TOTP(secret.group(1)).now()
    done = b.http.post(
        f"{s.issuer}/oauth2/v1/login/enroll", data={**form_fields(form), "code": code}
    )
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text, done.text[:800]


def events(api: httpx.Client, type: str) -> list[dict[str, Any]]:
    time.sleep(0.3)  # the API's audit sink flushes every 100 ms
    return list(api.get("/audit", params={"type": type}).json()["events"])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and "Traceback" not in response.text
    return body


# --- a user's factors ---------------------------------------------------------------------------


def test_a_user_without_factors_and_a_reset_that_ends_the_sessions(
    server: Server, admin: httpx.Client
) -> None:
    alice = admin.get("/users/alice").json()
    assert admin.get("/users/alice/factors").json() == {
        "user_id": alice["id"], "username": "alice", **EMPTY,
    }  # fmt: skip
    demo = server.demo["confidential_app"]
    with Browser(server.base_url) as b:
        code_from(b.sign_in_and_authorize(
            "alice", ALICE_PASSWORD, response_type="code", client_id=demo["client_id"],
            redirect_uri=demo["redirect_uri"], scope="openid", state="s",
        ))  # fmt: skip
        assert admin.get("/users/alice/sessions").json()
        reset = admin.delete("/users/alice/factors")
        assert reset.status_code == 200, reset.text
        body = reset.json()
        assert body["removed"] == {"passkeys": 0, "authenticator_app": 0, "recovery_codes": 0}
        assert body["sessions_ended"] >= 1 and body["user_id"] == alice["id"]
        assert admin.get("/users/alice/sessions").json() == []
        # The browser's session is over: the next authorization asks for the password.
        again = b.authorize(
            response_type="code", client_id=demo["client_id"],
            redirect_uri=demo["redirect_uri"], scope="openid", state="s2",
        )  # fmt: skip
        assert 'name="password"' in again.text
    (event,) = events(admin, "admin.user_factors_reset")
    assert event["user_id"] == alice["id"] and event["details"]["what"] == "all"


def test_bad_factor_requests_are_clear_problems(admin: httpx.Client) -> None:
    assert "no user 'nobody'" in problem(admin.get("/users/nobody/factors"), 404)["detail"]
    assert problem(admin.delete("/users/nobody/factors"), 404)["error"] == "not_found"
    bad = problem(admin.delete("/users/alice/factors", params={"what": "everything"}), 400)
    assert bad["detail"].startswith("query.what:") and "'passkeys'" in bad["detail"]


def test_the_routes_refuse_a_user_token_and_another_domains_admin(
    server: Server, admin: httpx.Client
) -> None:
    s = site(server)
    demo = server.demo["confidential_app"]
    with Browser(server.base_url) as b:
        response = b.sign_in_and_authorize(
            "alice", ALICE_PASSWORD, response_type="code", client_id=demo["client_id"],
            redirect_uri=demo["redirect_uri"], scope="openid", state="s",
        )  # fmt: skip
    user_token = httpx.post(
        f"{server.base_url}/oauth2/v1/token", auth=(demo["client_id"], demo["client_secret"]),
        data={"grant_type": "authorization_code", "code": code_from(response),
              "redirect_uri": demo["redirect_uri"]},
    ).json()["access_token"]  # fmt: skip
    other = s.api.headers["Authorization"]
    for headers in ({"Authorization": f"Bearer {user_token}"}, {"Authorization": other}, {}):
        for method, path in (
            ("GET", "/users/alice/factors"), ("DELETE", "/users/alice/factors"),
            ("GET", "/sign-in-policy"), ("PATCH", "/sign-in-policy"),
        ):  # fmt: skip
            answer = httpx.request(
                method, f"{server.base_url}/admin/v1{path}", headers=headers,
                json={"mfa_policy": "off"} if method == "PATCH" else None,
            )  # fmt: skip
            assert answer.status_code in (401, 403), (method, path, answer.status_code)
    assert admin.get("/sign-in-policy").json()["mfa_policy"] == "optional"


# --- the sign-in policy ------------------------------------------------------------------------


def test_a_domain_administrator_requires_a_factor_and_resets_a_users(server: Server) -> None:
    s = site(server)
    assert s.api.get("/sign-in-policy").json() == {
        "domain": s.name, "mfa_policy": "optional", "admin_mfa_required": False,
    }  # fmt: skip
    set_ = s.api.patch("/sign-in-policy", json={"mfa_policy": "required"})
    assert set_.status_code == 200, set_.text
    assert set_.json()["mfa_policy"] == "required"
    assert domain_cli(server, s.name, "policy", "show")["mfa_policy"] == "required"
    # The operators' view of the domain shows the setting too.
    shown = server.cli_json("admin", "domains", "show", s.name)
    assert shown["settings"]["mfa_policy"] == "required"

    with Browser(s.issuer) as b:
        enroll_totp(b, s, sign_in(b, s))
        factors = s.api.get("/users/carol/factors").json()
        assert factors["authenticator_app"]["status"] == "active"
        assert factors["recovery_codes"] == {
            "left": 10, "total": 10, "created_at": factors["recovery_codes"]["created_at"],
        }  # fmt: skip
        assert factors["has_second_factor"] is True and factors["passkeys"] == []
        assert "secret" not in str(factors).lower()
        assert s.api.get("/users/carol/sessions").json()

        reset = s.api.delete("/users/carol/factors", params={"what": "totp"}).json()
        assert reset["removed"] == {"passkeys": 0, "authenticator_app": 1, "recovery_codes": 0}
        assert reset["sessions_ended"] == 1
        assert s.api.get("/users/carol/sessions").json() == []
    after = s.api.get("/users/carol/factors").json()
    assert after["authenticator_app"] is None and after["recovery_codes"]["left"] == 10
    # Without an authenticator app carol must set one up again (codes only back one up).
    with Browser(s.issuer) as b:
        assert "Set up a second factor" in sign_in(b, s).text
    policy_set = events(s.api, "admin.sign_in_policy_set")
    assert [e["details"]["changed"] for e in policy_set] == [["mfa_policy"]]


def test_the_policy_endpoints_check_their_input(server: Server) -> None:
    s = site(server)
    bad = problem(s.api.patch("/sign-in-policy", json={"mfa_policy": "sometimes"}), 400)
    assert bad["detail"].startswith("mfa_policy:") and "'required'" in bad["detail"]
    assert bad["errors"][0]["loc"] == ["body", "mfa_policy"]
    bad = problem(s.api.patch("/sign-in-policy", json={"admin_mfa_required": "yes"}), 400)
    assert bad["detail"].startswith("admin_mfa_required:")
    assert "nothing to change" in problem(s.api.patch("/sign-in-policy", json={}), 400)["detail"]
    assert problem(s.api.patch("/sign-in-policy", json={"mfa": "off"}), 400)["detail"].startswith(
        "mfa:"
    )
    assert s.api.get("/sign-in-policy").json()["mfa_policy"] == "optional"
    both = s.api.patch(
        "/sign-in-policy", json={"mfa_policy": "off", "admin_mfa_required": True}
    ).json()
    assert (both["mfa_policy"], both["admin_mfa_required"]) == ("off", True)
    back = s.api.patch("/sign-in-policy", json={"mfa_policy": None, "admin_mfa_required": None})
    assert back.json() == {"domain": s.name, "mfa_policy": "optional", "admin_mfa_required": False}


def test_the_default_domain_takes_its_own_policy(admin: httpx.Client) -> None:
    # Set and set back at once: the demo's administrators sign in with a password elsewhere.
    try:
        changed = admin.patch("/sign-in-policy", json={"admin_mfa_required": True})
        assert changed.status_code == 200, changed.text
        assert admin.get("/sign-in-policy").json()["admin_mfa_required"] is True
    finally:
        admin.patch("/sign-in-policy", json={"admin_mfa_required": None})
    assert admin.get("/sign-in-policy").json() == {
        "domain": "default", "mfa_policy": "optional", "admin_mfa_required": False,
    }  # fmt: skip


# --- an app's own policy ------------------------------------------------------------------------


def test_an_app_asks_for_a_second_factor_of_its_own(server: Server) -> None:
    s = site(server)
    created = s.api.post("/apps", json={
        "name": "Payroll", "redirect_uris": [REDIRECT_URI], "allowed_scopes": ["openid"],
        "grant_types": ["authorization_code"], "mfa_policy": "required",
    })  # fmt: skip
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["mfa_policy"] == "required"
    assert s.api.get(f"/apps/{app['client_id']}").json()["mfa_policy"] == "required"
    assert s.api.get(f"/apps/{s.app['client_id']}").json()["mfa_policy"] is None
    # The stricter applies: carol signs in to Portal with a password, to Payroll she enrolls.
    payroll = Site(s.name, s.issuer, s.api, app)
    with Browser(s.issuer) as b:
        assert "Set up a second factor" in sign_in(b, payroll).text
    renamed = s.api.patch(f"/apps/{app['client_id']}", json={"name": "Payroll 2"}).json()
    assert renamed["mfa_policy"] == "required"  # left out: kept
    cleared = s.api.patch(f"/apps/{app['client_id']}", json={"mfa_policy": None}).json()
    assert cleared["mfa_policy"] is None
    bad = problem(s.api.patch(f"/apps/{app['client_id']}", json={"mfa_policy": "always"}), 400)
    assert bad["detail"].startswith("mfa_policy:")
    bad = problem(s.api.post("/apps", json={"name": "X", "mfa_policy": "sometimes"}), 400)
    assert bad["detail"].startswith("mfa_policy:")


def test_the_openapi_description_documents_the_factor_routes(server: Server) -> None:
    s = site(server)
    spec = httpx.get(f"{s.issuer}/admin/v1/openapi.json").json()
    assert set(spec["paths"]["/users/{user}/factors"]) == {"get", "delete"}
    assert set(spec["paths"]["/sign-in-policy"]) == {"get", "patch"}
    schemas = spec["components"]["schemas"]
    assert schemas["SignInPolicyUpdate"]["properties"]["mfa_policy"]["anyOf"][0]["enum"] == [
        "off", "optional", "required",
    ]  # fmt: skip
    assert "mfa_policy" in schemas["AppOut"]["properties"]
    assert "passkeys" in schemas["FactorsOut"]["properties"]
