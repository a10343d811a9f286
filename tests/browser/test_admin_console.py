"""The admin console in real Chromium: the administrator signs in through our own code flow with
PKCE (the console is a first-party public app), lists users, registers an app and sees its
secret once, and revokes every token of a user; the revoked token stops working."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.support import sign_in
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
    expect(page.get_by_text("admin.user_tokens_revoked").first).to_be_visible()
    expect(page.get_by_text("admin.app_created").first).to_be_visible()
    page.screenshot(path=str(server.data_dir / "console.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_non_administrator_is_refused_by_the_console(server: Server, page: Page) -> None:
    page.goto(f"{server.base_url}/console/")
    sign_in(page, "alice", "Wonderland-Demo-2026")
    expect(page.get_by_role("alert")).to_contain_text("administrators")
