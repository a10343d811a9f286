"""The console's registration tokens page in real Chromium: an administrator creates an initial
access token (shown once), an app registers with it (RFC 7591), the page counts the use, and
revoking the token stops further registrations."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.support import console_as_admin
from tests.support.server import Server


def _register(server: Server, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/oauth2/v1/register",
        json={"redirect_uris": ["https://console-dcr.example.test/cb"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_registration_tokens_in_the_console(server: Server, page: Page) -> None:
    errors = console_as_admin(page, server)

    page.get_by_role("link", name="Registration").click()
    expect(page.get_by_role("heading", name="Registration tokens")).to_be_visible()
    page.fill("input[name=description]", "console pipeline")
    page.fill("input[name=max_uses]", "2")
    page.fill("input[name=allowed_scopes]", "openid profile")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator(".secret code")
    expect(shown).to_be_visible()
    token = shown.inner_text()
    expect(page.get_by_role("cell", name="console pipeline")).to_be_visible()
    expect(page.locator("ul.scopes li", has_text="profile")).to_be_visible()

    assert _register(server, token).status_code == 201
    page.get_by_role("link", name="Keys").click()
    page.get_by_role("link", name="Registration").click()
    expect(page.get_by_role("cell", name="1 of 2")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#toast")).to_contain_text("revoked")
    expect(page.get_by_role("cell", name="revoked", exact=True)).to_be_visible()
    refused = _register(server, token)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert not errors, errors
