"""The console's trusted issuers page in real Chromium: an administrator trusts a partner's
JWT assertions (RFC 7523 §2.1) with an inline JWK Set for the demo's confidential app, the page
lists it, a bad JWK Set is refused with the server's words, and deleting it stops the trust."""

from __future__ import annotations

import json

from joserfc.jwk import ECKey
from playwright.sync_api import Page, expect

from tests.browser.support import console_as_admin
from tests.support.jwks import public_jwks
from tests.support.server import Server


def test_trusted_issuers_in_the_console(server: Server, page: Page) -> None:
    errors = console_as_admin(page, server)

    page.get_by_role("link", name="Trusted issuers").click()
    expect(page.get_by_role("heading", name="Trusted issuers")).to_be_visible()
    app = server.demo["confidential_app"]["client_id"]
    private = ECKey.generate_key("P-256").as_dict(private=True)
    page.fill("input[name=issuer]", "https://console-partner.example.test")
    page.fill("textarea[name=jwks]", json.dumps({"keys": [private]}))
    page.get_by_role("button", name="Trust issuer").click()
    expect(page.locator("#toast")).to_contain_text("private")

    key = ECKey.generate_key("P-256", parameters={"kid": "console-1"})
    page.fill("textarea[name=jwks]", json.dumps(public_jwks(key)))
    page.fill("input[name=allowed_apps]", app)
    page.fill("input[name=allowed_scopes]", "openid profile")
    page.get_by_role("button", name="Trust issuer").click()
    expect(page.locator("#toast")).to_contain_text("Issuer trusted")
    expect(page.get_by_role("cell", name="https://console-partner.example.test")).to_be_visible()
    expect(page.get_by_role("cell", name="inline JWK Set (1 key)")).to_be_visible()
    issuer = "https://console-partner.example.test"
    trusted = server.cli_json("admin", "trusted-issuers", "show", issuer)
    assert trusted["allowed_apps"] == [app] and trusted["allowed_scopes"] == ["openid", "profile"]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_contain_text("deleted")
    assert server.cli_json("admin", "trusted-issuers", "list") == []
    # The refused JWK Set is the one failed request (Chromium reports the 400 on the console).
    assert [e for e in errors if "status of 400" not in e] == [], errors
