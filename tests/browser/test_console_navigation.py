"""The console draws the page the administrator moved on to, not a slower one before it: a
newer navigation gives up the older page's reads (console.js `route`), and #main is
`aria-busy` while a page is drawn."""

from __future__ import annotations

import contextlib

from playwright.sync_api import Page, Request, Route, expect

from tests.browser.support import console_as_admin, drawn
from tests.support.server import Server


def test_a_slow_page_does_not_replace_the_one_chosen_after_it(server: Server, page: Page) -> None:
    errors = console_as_admin(page, server)
    nav = page.get_by_role("navigation", name="Sections")
    held: list[Route] = []
    # The Roles page's grants are held back, as on a slow network, until the test lets them go.
    page.route("**/admin/v1/role-grants", lambda route: held.append(route))
    with page.expect_event("requestfailed", lambda r: "role-grants" in r.url) as failed:
        nav.get_by_role("link", name="Roles").click()
        expect(page.locator("#main")).to_have_attribute("aria-busy", "true")
        nav.get_by_role("link", name="Apps").click()
        expect(page.get_by_role("heading", name="Trusted applications", exact=True)).to_be_visible()
    request: Request = failed.value
    assert request.failure is not None  # given up by the console, not by the test
    page.unroute("**/admin/v1/role-grants")
    for route in held:
        with contextlib.suppress(Exception):  # the browser has cancelled it: nothing to let go
            route.continue_()
    drawn(page)
    expect(page.get_by_role("heading", name="Trusted applications", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Roles", exact=True)).to_have_count(0)
    # Nothing was reported: the given-up read is not an error page or a console error.
    expect(page.get_by_role("alert")).to_have_count(0)
    assert errors == [], errors
