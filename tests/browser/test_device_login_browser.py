"""`tessera login --device` (RFC 8628) with a real browser on "another device", then `tessera call`.

The command runs as a real subprocess: it prints where to go and the grouped user code, and on
stdout the link that fills the code in (`verification_uri_complete`), then polls. Headless
Chromium plays the phone: it opens the link, signs in on Tessera's login page, lands back on
the device page with the code filled in, continues, sees the app and its scopes and allows (or
denies). The command gets tokens bound to its DPoP key and caches them like the browser login;
`tessera call` then reaches the integration service as the user.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.support import Api, LoginProcess, client_env, drawn, sign_in, tessera
from tests.support.server import Server

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_names = itertools.count(1)


def device_app(server: Server) -> dict[str, Any]:
    """A public app allowed the device grant, openid and the demo resource's scope."""
    return dict(
        server.cli_json(
            *("admin", "apps", "create", "--name", f"Device CLI {next(_names)}", "--public"),
            *("--grant-type", GRANT, "--grant-type", "refresh_token"),
            *("--allow-scope", "openid", "--allow-scope", server.demo["resource"]["scope"]),
        )
    )


def device_login(page: Page, server: Server, config_dir: Path, decision: str) -> tuple[int, str, str]:
    """Run `tessera login --device`, decide on the device page with Chromium; the command's
    exit code and output."""
    app = device_app(server)
    alice = server.demo["user"]
    login = LoginProcess(
        client_env(config_dir),
        *("--issuer", server.issuer, "--client-id", app["client_id"]),
        *("--scope", server.demo["resource"]["scope"], "--device"),
    )
    url = login.url()
    code = url.rsplit("=", 1)[1]
    assert url == f"{server.issuer}/device?user_code={code}"
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", code)

    page.goto(url)  # not signed in yet: to the sign-in, and back
    page.fill("input[name=username]", alice["username"])
    page.fill("input[name=password]", alice["password"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_selector("input[name=user_code]")
    assert page.input_value("input[name=user_code]") == code  # filled in from the link
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector(f"button[value={decision}]")
    assert app["name"] in page.inner_text("h1")  # the page names the app that asks
    assert page.inner_text("#user-code") == code
    assert "Use " in page.inner_text(".scopes")  # and what it asks for
    page.click(f"button[value={decision}]")
    page.wait_for_selector(".status")
    result = login.finish(timeout=60)
    assert code in result[2]  # the grouped code was shown to the user
    return result


def cached(config_dir: Path) -> dict[str, Any]:
    (path,) = sorted((config_dir / "tokens" / "default").glob("*.json"))
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_device_login_approved_in_the_browser_then_call_an_integration(
    page: Page, server: Server, api: Api, config_dir: Path
) -> None:
    code, out, err = device_login(page, server, config_dir, "allow")
    assert "Device connected" in page.content()
    assert code == 0, err
    assert "Signed in as Alice Example" in err and "Traceback" not in err
    entry = cached(config_dir)
    assert entry["issuer"] == server.issuer
    assert entry["tokens"]["refresh_token"]
    assert entry["tokens"]["token_type"] == "DPoP" and entry["dpop_key"]  # bound to its key
    assert entry["tokens"]["access_token"] not in out + err

    called = tessera(client_env(config_dir), "call", "GET", api.url)
    assert called.returncode == 0, called.stderr
    body = json.loads(called.stdout)
    assert body["message"] == "Hello, Alice Example"
    assert body["sub"] == server.demo["user"]["sub"] and body["sub_type"] == "user"


def test_device_login_denied_in_the_browser_reports_access_denied(
    page: Page, server: Server, config_dir: Path
) -> None:
    code, _, err = device_login(page, server, config_dir, "deny")
    assert "Request denied" in page.content()
    assert code == 1
    assert "denied" in err and "Traceback" not in err
    assert not (config_dir / "tokens").exists() or not list((config_dir / "tokens").rglob("*.json"))


def test_the_console_keeps_and_grants_the_device_grant_when_editing_an_app(
    server: Server, page: Page
) -> None:
    """An edit in the console sends the whole list of grant types: the device grant has its
    own checkbox, so saving an app never drops it unseen."""
    app = device_app(server)
    other = server.cli_json(
        *("admin", "apps", "create", "--name", f"No device {next(_names)}", "--public"),
        *("--redirect-uri", "http://127.0.0.1/callback", "--allow-scope", "openid"),
    )
    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")
    page.get_by_role("link", name="Apps").click()
    for name, tick in ((app["name"], False), (other["name"], True)):
        page.get_by_role("row").filter(has_text=name).get_by_role("button", name="Edit").click()
        editor = page.get_by_role("form", name=f"Edit {name}")
        box = editor.get_by_label("Device login (RFC 8628)")
        expect(box).to_be_checked(checked=not tick)
        if tick:
            box.check()
        editor.get_by_role("button", name="Save app").click()
        expect(page.locator("#toast")).to_contain_text(f"Saved {name}")
        drawn(page)  # the list is drawn again after a save: not the old list's Edit
    for client_id in (app["client_id"], other["client_id"]):
        shown = server.cli_json("admin", "apps", "show", client_id)
        assert GRANT in shown["grant_types"], shown
