"""The console's sign-in providers page in real Chromium (docs/federation.md): an
administrator adds a second identity domain of the node as an upstream OpenID provider (a bad
issuer refused with the server's words), sees what to register there, checks its discovery,
opens a test sign-in in a new tab (off to the upstream), edits, disables and removes it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.support import console_as_admin
from tests.support.domains import create_domain
from tests.support.server import Server


def test_sign_in_providers_in_the_console(server: Server, page: Page) -> None:
    upstream = create_domain(server, "upstream", admin=None)["issuer"]
    errors = console_as_admin(page, server)

    page.get_by_role("link", name="Sign-in providers").click()
    expect(page.get_by_role("heading", name="Sign-in providers")).to_be_visible()
    page.fill("input[name=name]", "corp")
    page.fill("input[name=display_name]", "Corp SSO")
    page.fill("input[name=issuer]", upstream + "/")
    page.fill("input[name=client_id]", "corp-client")
    page.fill("input[name=client_secret]", "console-Secret-42")
    page.get_by_role("button", name="Add provider").click()
    # OIDC Discovery §4.3: the document names the issuer without the slash.
    expect(page.locator("#toast")).to_contain_text(f"not {upstream}/")

    page.fill("input[name=issuer]", upstream)
    page.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("heading", name="Corp SSO")).to_be_visible()
    callback = f"{server.base_url}/oauth2/v1/federation/corp/callback"
    expect(page.get_by_role("cell", name=callback)).to_be_visible()

    page.get_by_role("button", name="Check discovery").click()
    expect(page.get_by_role("heading", name="Discovery check")).to_be_visible()
    expect(page.get_by_role("cell", name=f"{upstream}/oauth2/v1/token")).to_be_visible()

    with page.expect_popup() as opened:
        page.get_by_role("button", name="Try sign-in").click()
    tab = opened.value
    # The ticket starts a test sign-in: the tab goes on to the upstream as our client.
    tab.wait_for_url(f"{upstream}/oauth2/v1/authorize?*client_id=corp-client*")
    tab.close()

    page.fill("input[name=display_name]", "Corp")
    page.fill("input[name=email_domains]", "corp.example.test")
    # Group sync without a groups claim: refused, with the reason.
    page.check("input[name=sync_groups]")
    page.get_by_role("button", name="Save provider").click()
    expect(page.locator("#toast")).to_contain_text("sync_groups needs a groups claim")
    page.fill("input[name=groups_claim]", "groups")
    page.get_by_role("button", name="Save provider").click()
    expect(page.locator("#toast")).to_contain_text("Saved corp")
    shown = server.cli_json("admin", "providers", "show", "corp")
    assert shown["display_name"] == "Corp" and shown["email_domains"] == ["corp.example.test"]
    assert (shown["groups_claim"], shown["sync_groups"]) == ("groups", True)
    assert shown["has_client_secret"] is True and shown["version"] == 2

    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#toast")).to_contain_text("Disabled corp")
    assert server.cli_json("admin", "providers", "show", "corp")["enabled"] is False

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name="Sign-in providers")).to_be_visible()
    assert server.cli_json("admin", "providers", "list") == []
    # The refused issuer is the one failed request (Chromium reports the 400 on the console);
    # the test sign-in tab is not this page's.
    assert [e for e in errors if "status of 400" not in e] == [], errors
