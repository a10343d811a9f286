"""The admin console in real Chromium: the administrator signs in through our own code flow with
PKCE (the console is a first-party public app), lists users, registers an app and sees its
secret once, and revokes every token of a user; the revoked token stops working."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.support import drawn, sign_in
from tests.support.admin import console_token
from tests.support.flow import user_tokens
from tests.support.server import Server


def _alice_token(server: Server) -> str:
    scope = server.demo["resource"]["scope"]
    return str(user_tokens(server, "alice", "Wonderland-Demo-2026", scope=scope)["access_token"])


def _active(server: Server, token: str) -> bool:
    app = server.demo["confidential_app"]
    return bool(httpx.post(f"{server.base_url}/oauth2/v1/introspect",
                           auth=(app["client_id"], app["client_secret"]),
                           data={"token": token}).json()["active"])


def test_an_administrator_manages_the_domain_in_the_console(server: Server, page: Page) -> None:
    token = _alice_token(server)
    assert _active(server, token)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")  # first party: no consent page
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.locator("#who")).to_have_text("Demo Administrator")
    expect(page.get_by_role("link", name="alice", exact=True)).to_be_visible()

    # Register an app: the secret is shown once.
    page.get_by_role("link", name="Apps").click()
    page.fill("input[name=name]", "Console-made app")
    page.fill("input[name=redirect_uris]", "https://console-made.example.test/cb")
    page.fill("input[name=allowed_scopes]", "openid profile")
    page.get_by_role("button", name="Register app").click()
    secret = page.locator(".secret code")
    expect(secret).to_be_visible()
    assert len(secret.inner_text()) >= 40
    expect(page.get_by_role("cell", name="Console-made app")).to_be_visible()

    # Revoke every token of alice from her page.
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="alice", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Alice Example"))).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke all tokens").click()
    expect(page.locator("#toast")).to_contain_text("Revoked")
    assert _active(server, token) is False

    # The audit log shows what the administrator did.
    page.get_by_role("link", name="Audit log").click()
    events = page.locator("table.data")  # (the filter's options name the types too)
    expect(events.get_by_text("admin.user_tokens_revoked").first).to_be_visible()
    expect(events.get_by_text("admin.app_created").first).to_be_visible()
    page.screenshot(path=str(server.data_dir / "console.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_non_administrator_is_refused_by_the_console(server: Server, page: Page) -> None:
    page.goto(f"{server.base_url}/console/")
    sign_in(page, "alice", "Wonderland-Demo-2026")
    expect(page.get_by_role("alert")).to_contain_text("administrators")


def test_the_console_edits_and_deletes_and_filters_the_audit_log_by_app_name(
    server: Server, page: Page
) -> None:
    """The console once showed raw client ids and Oracle scope strings, had no audit filters
    and could neither edit apps and resources nor delete users."""
    admin_token = console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")
    api = httpx.Client(base_url=f"{server.base_url}/admin/v1", timeout=30,
                       headers={"Authorization": f"Bearer {admin_token['access_token']}"})
    app = api.post("/apps", json={"name": "Before edit", "redirect_uris":
                                  ["https://edit.example.test/cb"]}).json()
    doomed = api.post("/users", json={"username": "doomed", "password": "Fading-Ember-Kite-2026"}
                      ).json()
    alice_grant_token = _alice_token(server)  # alice has a grant of the demo app
    assert _active(server, alice_grant_token)

    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()

    # Grants show the app's name and the resource's name with the scope, not the raw strings.
    page.get_by_role("link", name="alice", exact=True).click()
    grants = page.locator("table.data").first
    expect(grants).to_contain_text("Integration client (demo)")
    expect(grants).to_contain_text("Integration service: urn:opc:resource:consumer::all")
    expect(grants).not_to_contain_text(server.demo["confidential_app"]["client_id"])

    # Edit an app.
    page.get_by_role("link", name="Apps").click()
    row = page.get_by_role("row").filter(has_text="Before edit")
    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("form", name="Edit Before edit")
    editor.locator("input[name=name]").fill("After edit")
    editor.locator("input[name=redirect_uris]").fill("https://edit.example.test/cb2")
    editor.locator("input[name=access_token_ttl]").fill("600")
    editor.get_by_role("button", name="Save app").click()
    expect(page.locator("#toast")).to_contain_text("Saved After edit")
    expect(page.get_by_role("cell", name="After edit", exact=True)).to_be_visible()
    edited = api.get(f"/apps/{app['client_id']}").json()
    assert edited["redirect_uris"] == ["https://edit.example.test/cb2"]
    assert edited["access_token_ttl"] == 600
    # A bad redirect URI is refused with the API's problem detail; nothing changes.
    page.get_by_role("row").filter(has_text="After edit").get_by_role("button", name="Edit").click()
    editor = page.get_by_role("form", name="Edit After edit")
    editor.locator("input[name=redirect_uris]").fill("javascript:alert(1)")
    editor.get_by_role("button", name="Save app").click()
    expect(page.locator("#toast")).to_contain_text("javascript")
    assert api.get(f"/apps/{app['client_id']}").json()["redirect_uris"] == [
        "https://edit.example.test/cb2"]

    # Delete a user from the user's page.
    page.goto(f"{server.base_url}/console/#/users/{doomed['id']}")
    expect(page.get_by_role("heading", name=re.compile("doomed"))).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete user").click()
    expect(page.locator("#toast")).to_contain_text("Deleted doomed")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("link", name="doomed", exact=True)).to_have_count(0)
    assert api.get(f"/users/{doomed['id']}").status_code == 404

    # The audit log, filtered by app: names, not ids.
    page.get_by_role("link", name="Audit log").click()
    filters = page.get_by_role("form", name="Filter events")
    filters.locator("select[name=client_id]").select_option(label="After edit")
    filters.get_by_role("button", name="Filter").click()
    events = page.locator("table.data")
    expect(events).to_contain_text("admin.app_updated")
    expect(events).not_to_contain_text("admin.user_deleted")
    expect(events.get_by_text("After edit").first).to_be_visible()
    expect(events).not_to_contain_text(app["client_id"])
    filters = page.get_by_role("form", name="Filter events")
    filters.locator("select[name=client_id]").select_option(label="any")
    filters.locator("select[name=type]").select_option("admin.user_deleted")
    filters.get_by_role("button", name="Filter").click()
    expect(events).to_contain_text("admin.user_deleted")
    expect(events).not_to_contain_text("admin.app_updated")
    page.screenshot(path=str(server.data_dir / "console-audit-filter.png"), full_page=True)


def test_the_console_shows_and_resets_factors_and_sets_the_sign_in_policy(
    server: Server, page: Page
) -> None:
    """Issue 15, item 6: a user's second factors and their reset, an app's own policy, and the
    domain's sign-in policy, in the console."""
    admin_token = console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")
    api = httpx.Client(base_url=f"{server.base_url}/admin/v1", timeout=30,
                       headers={"Authorization": f"Bearer {admin_token['access_token']}"})
    alice = api.get("/users/alice").json()
    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()

    # alice's page: her factors (none), and a reset that ends her sessions.
    page.goto(f"{server.base_url}/console/#/users/{alice['id']}")
    factors = page.get_by_label("Second factors")
    expect(factors).to_contain_text("Not set up")
    expect(factors).to_contain_text("Nothing here yet.")  # no passkey
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset second factors").click()
    expect(page.locator("#toast")).to_contain_text("0 passkey(s)")

    # An app that asks for a second factor of its own.
    page.get_by_role("link", name="Apps").click()
    page.fill("input[name=name]", "Strict app")
    page.fill("input[name=redirect_uris]", "https://strict.example.test/cb")
    page.locator("select[name=mfa_policy]").select_option(label="Required")
    page.get_by_role("button", name="Register app").click()
    expect(page.locator(".secret code")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Strict app")
    expect(row).to_contain_text("required")
    strict = next(a for a in api.get("/apps").json() if a["name"] == "Strict app")
    assert strict["mfa_policy"] == "required"

    # The domain's policy; set back at once, as other tests here sign administrators in.
    try:
        page.get_by_role("link", name="Sign-in policy").click()
        form = page.get_by_role("form", name="Sign-in policy")
        expect(form.get_by_role("radio", name=re.compile("^Optional"))).to_be_checked()
        form.get_by_role("radio", name=re.compile("^Off")).check()
        form.get_by_label("Require a second factor for all administrators").check()
        page.screenshot(path=str(server.data_dir / "console-sign-in-policy.png"), full_page=True)
        form.get_by_role("button", name="Save policy").click()
        expect(page.locator("#toast")).to_contain_text("Sign-in policy saved")
        assert api.get("/sign-in-policy").json() == {
            "domain": "default", "mfa_policy": "off", "admin_mfa_required": True}
    finally:
        api.patch("/sign-in-policy", json={"mfa_policy": None, "admin_mfa_required": None})


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_the_console_keeps_grant_types_when_an_app_is_saved(server: Server, page: Page) -> None:
    """An edit sends the whole list of grant types: the JWT bearer grant has a checkbox (in
    the new-app form too), and token exchange, which has none, is sent back as it was."""
    admin_token = console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")
    api = httpx.Client(base_url=f"{server.base_url}/admin/v1", timeout=30,
                       headers={"Authorization": f"Bearer {admin_token['access_token']}"})
    app = api.post("/apps", json={"name": "Partner gateway", "redirect_uris":
                                  ["https://partner.example.test/cb"], "grant_types":
                                  ["authorization_code", JWT_BEARER]}).json()
    exchange = api.put(f"/apps/{app['client_id']}/token-exchange",
                       json={"audiences": [server.demo["resource"]["audience"]]})
    assert exchange.status_code == 200, exchange.text

    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")
    page.get_by_role("link", name="Apps").click()
    for name, untick in (("Partner gateway", False), ("Partner gateway 2", True)):
        page.get_by_role("row").filter(has_text="Partner gateway").get_by_role(
            "button", name="Edit").click()
        editor = page.get_by_role("form", name=re.compile("^Edit Partner gateway"))
        box = editor.get_by_label("JWT bearer grant (RFC 7523, trusted issuers)")
        expect(box).to_be_checked(checked=True)
        if untick:
            box.uncheck()
        editor.locator("input[name=name]").fill(name)  # a toast of its own for each save
        editor.get_by_role("button", name="Save app").click()
        expect(page.locator("#toast")).to_contain_text(f"Saved {name}")
        # The list is drawn again after a save: wait for it before the next form (the first
        # save keeps the name, so the old list has its cell too).
        drawn(page)
        expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
        saved = api.get(f"/apps/{app['client_id']}").json()
        assert saved["name"] == name
        assert (JWT_BEARER in saved["grant_types"]) is not untick, saved["grant_types"]
        assert TOKEN_EXCHANGE in saved["grant_types"], saved["grant_types"]

    # The new-app form offers the grant too.
    page.fill("form:not([aria-label]) input[name=name]", "Console partner")
    page.fill("form:not([aria-label]) input[name=redirect_uris]", "https://p.example.test/cb")
    page.get_by_label("JWT bearer grant (RFC 7523, trusted issuers)").check()
    page.get_by_role("button", name="Register app").click()
    expect(page.locator(".secret code")).to_be_visible()
    made = [a for a in api.get("/apps").json() if a["name"] == "Console partner"]
    assert JWT_BEARER in made[0]["grant_types"], made
