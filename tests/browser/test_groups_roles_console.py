"""The console's groups and roles in real Chromium (issue 19, item 4): an administrator declares
a resource's roles, creates a group, adds a member, renames it, grants the group a role, sees
the member's effective role, revokes it with "also revoke their tokens", and a role still
granted cannot be dropped from the resource (the server's words in the toast)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.support import console_as_admin
from tests.support.server import Server


def test_groups_members_and_role_grants_in_the_console(server: Server, page: Page) -> None:
    errors = console_as_admin(page, server)
    nav = page.get_by_role("navigation", name="Sections")

    nav.get_by_role("link", name="Resources").click()
    expect(page.get_by_role("heading", name="Resources")).to_be_visible()
    page.fill("input[name=name]", "Ledger")
    page.fill("input[name=audience]", "https://ledger.console.test")
    page.fill("input[name=scopes]", "read")
    page.fill("textarea[name=roles]", "Clerk = Posts entries\nReader")
    page.check("input[name=include_groups]")
    page.get_by_role("button", name="Register resource").click()
    expect(page.get_by_role("cell", name="https://ledger.console.test")).to_be_visible()
    ledger = server.cli_json("admin", "resources", "show", "Ledger")
    assert [r["name"] for r in ledger["roles"]] == ["Clerk", "Reader"]
    assert ledger["roles"][0]["description"] == "Posts entries" and ledger["include_groups"]

    nav.get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    page.fill("input[name=name]", "Bookkeepers")
    page.fill("input[name=description]", "Keep the books")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="Bookkeepers")).to_be_visible()
    page.get_by_label("User to add").select_option(label="alice")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#toast")).to_contain_text("Member added")
    expect(page.get_by_role("link", name="alice")).to_be_visible()
    page.fill("input[name=name]", "Book-keepers")
    page.get_by_role("button", name="Save group").click()
    expect(page.get_by_role("heading", name="Book-keepers")).to_be_visible()
    group = server.cli_json("admin", "groups", "show", "Book-keepers")
    assert [m["username"] for m in group["members"]] == ["alice"]

    nav.get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", name="Grant a role")).to_be_visible()
    page.select_option("select[name=resource]", label="Ledger")
    page.select_option("select[name=role]", label="Clerk")
    page.select_option("select[name=principal_kind]", value="group")
    page.select_option("select[name=principal]", label="Book-keepers")
    page.get_by_role("button", name="Grant role").click()
    expect(page.locator("#toast")).to_contain_text("Granted Clerk")
    expect(page.get_by_role("link", name="Book-keepers")).to_be_visible()
    shown = server.cli_json("admin", "roles", "show-user", "alice", "--resource", "Ledger")
    assert shown["roles"] == ["Clerk"] and shown["groups"] == ["Book-keepers"]
    # Alice's page shows her group and the role she has through it.
    # The Roles page links alice too (the demo's grants): wait for the Users page itself.
    nav.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    page.get_by_role("link", name="alice", exact=True).click()
    access = page.get_by_role("region", name="Groups and roles")
    expect(access.get_by_role("link", name="Book-keepers")).to_be_visible()
    expect(access.get_by_role("row", name="Ledger")).to_contain_text("Clerk")

    # A granted role cannot be dropped from the resource: the server says what to do.
    nav.get_by_role("link", name="Resources").click()
    page.get_by_role("row", name="Ledger").get_by_role("button", name="Edit").click()
    page.fill("form[aria-label='Edit Ledger'] textarea[name=roles]", "Reader")
    page.get_by_role("button", name="Save resource").click()
    expect(page.locator("#toast")).to_contain_text("still granted: Clerk")

    nav.get_by_role("link", name="Roles").click()
    page.check("input[name=revoke_tokens]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row", name="Clerk").get_by_role("button", name="Revoke").click()
    expect(page.locator("#toast")).to_contain_text("Revoked Clerk from Book-keepers")
    assert server.cli_json("admin", "roles", "list", "--resource", "Ledger") == []
    assert server.cli_json("admin", "roles", "show-user", "alice", "--resource", "Ledger")[
        "roles"] == []

    nav.get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    page.get_by_role("link", name="Book-keepers").click()
    page.get_by_role("row", name="alice").get_by_role("button", name="Remove").click()
    expect(page.locator("#toast")).to_contain_text("Removed alice")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete group").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    assert "Book-keepers" not in [g["name"] for g in server.cli_json("admin", "groups", "list")]
    # The refused edit is the one failed request (Chromium reports the 409 on the console).
    assert [e for e in errors if "status of 409" not in e] == [], errors
