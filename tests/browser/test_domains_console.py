"""Identity domains in the console, in real Chromium (issue 14; docs/domains.md).

An operator (an administrator of the default domain, whose console token carries the operator
scope) creates the domain "acme" with its first administrator on the console's Domains page.
That administrator signs in to acme's own console at `<base>/domains/acme/console/`, which shows
only acme, and registers the seed's client application there. Then the seed's flow runs in acme:
the sample web client sends a user of acme through acme's login page, gets tokens issued by
`<base>/domains/acme` and calls the integration service configured for that issuer. Back in the
default console the operator picks acme and sees the app its administrator registered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Page, expect

from tests.browser.support import integration_service, new_page, sign_in, web_client
from tests.support.admin import operator_token
from tests.support.domains import create_domain, domain_cli
from tests.support.flow import exchange_code, user_code
from tests.support.server import Server, free_port

OPERATOR = ("admin", "Tessera-Demo-Root-2026")  # the demo's administrator of the default domain
ADA = ("ada", "Analytical-Engine-1843")
ALICE = ("alice", "Roadrunner-Mesa-Canyon-7")  # acme's alice: not the default domain's alice
AUDIENCE = "https://integration.acme.test"
CONSUMER = f"{AUDIENCE}:443urn:opc:resource:consumer::all"
MANAGE = f"{AUDIENCE}:443urn:tessera:integration:manage"


@pytest.fixture
def second_page(chromium: Chromium) -> Iterator[Page]:
    """Another browser (a context of its own: no cookie or storage shared with `page`)."""
    with new_page(chromium) as page:
        yield page


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_an_operator_creates_a_domain_whose_administrator_runs_the_seed_flow_in_it(
    server: Server, page: Page, second_page: Page, chromium: Chromium,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    acme = f"{server.issuer}/domains/acme"
    errors: list[str] = []
    for p in (page, second_page):
        p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # The operator creates acme and its first administrator on the Domains page.
    page.goto(f"{server.base_url}/console/")
    sign_in(page, *OPERATOR)
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.locator("#domain-name")).to_have_text("Default")
    page.get_by_role("link", name="Domains", exact=True).click()
    expect(page.get_by_role("heading", name="Identity domains")).to_be_visible()
    form = page.get_by_role("form", name="New identity domain")
    form.locator("input[name=name]").fill("acme")
    form.locator("input[name=display_name]").fill("Acme Corporation")
    form.locator("input[name=admin_username]").fill(ADA[0])
    form.locator("input[name=admin_password]").fill(ADA[1])
    form.locator("input[name=admin_email]").fill("ada@acme.example")
    form.get_by_role("button", name="Create domain").click()
    notice = page.locator(".notice")
    expect(notice).to_contain_text("Created Acme Corporation (acme)")
    expect(notice).to_contain_text(f"Its administrator ada signs in at {acme}/console/")
    row = page.get_by_role("row").filter(has_text="Acme Corporation")
    expect(row).to_contain_text(acme)
    expect(row).to_contain_text("active")
    page.screenshot(path=str(server.data_dir / "console-domain-created.png"), full_page=True)

    # Acme's administrator signs in to acme's console (another browser): acme, and only acme.
    ada = second_page
    ada.goto(f"{acme}/console/")
    ada.wait_for_selector("input[name=username]")
    assert ada.url.startswith(f"{acme}/"), ada.url
    expect(ada.locator("body")).to_contain_text("Acme Corporation")  # the login page says where
    sign_in(ada, *ADA)
    expect(ada.get_by_role("heading", name="Users")).to_be_visible()
    expect(ada.locator("#domain-name")).to_have_text("Acme Corporation")
    expect(ada.locator("#domain-picker")).to_have_count(0)
    expect(ada.get_by_role("link", name="Domains", exact=True)).to_have_count(0)
    expect(ada.get_by_role("link", name="ada", exact=True)).to_be_visible()
    expect(ada.get_by_role("link", name="admin", exact=True)).to_have_count(0)  # the default's
    assert "Acme Corporation" in ada.title()

    # She makes the seed's user, the integration service's resource and the client application.
    ada.fill("input[name=username]", ALICE[0])
    ada.fill("input[name=display_name]", "Alice of Acme")
    ada.fill("input[name=password]", ALICE[1])
    ada.get_by_role("button", name="Create user").click()
    expect(ada.get_by_role("link", name="alice", exact=True)).to_be_visible()
    ada.get_by_role("link", name="Resources").click()
    expect(ada.get_by_role("heading", name="Resources", exact=True)).to_be_visible()
    ada.fill("input[name=name]", "Acme integration service")
    ada.fill("input[name=audience]", AUDIENCE)
    ada.fill("input[name=scopes]", "urn:opc:resource:consumer::all urn:tessera:integration:manage")
    ada.get_by_role("button", name="Register resource").click()
    expect(ada.get_by_role("cell", name="Acme integration service")).to_be_visible()
    port = free_port()
    ada.get_by_role("link", name="Apps").click()
    expect(ada.get_by_role("heading", name="Trusted applications")).to_be_visible()
    ada.fill("input[name=name]", "Acme web client")
    ada.fill("input[name=redirect_uris]", f"http://127.0.0.1:{port}/callback")
    ada.fill("input[name=allowed_scopes]", f"openid profile {CONSUMER}")
    ada.get_by_role("button", name="Register app").click()
    secret = ada.locator(".secret code")
    expect(secret).to_be_visible()
    app_row = ada.get_by_role("row").filter(has_text="Acme web client")
    app = {"client_id": app_row.locator("td").nth(1).inner_text().strip(),
           "client_secret": secret.inner_text().strip(),
           "redirect_uri": f"http://127.0.0.1:{port}/callback"}
    ada.screenshot(path=str(server.data_dir / "console-domain-admin.png"), full_page=True)

    # The integration service serves acme's resource with an app of acme (made with the CLI).
    service_app = domain_cli(
        server, "acme", "apps", "create", "--name", "Acme integration service",
        "--grant-type", "client_credentials", "--allow-scope", MANAGE,
        "--resource-server-for", AUDIENCE)
    workdir = tmp_path_factory.mktemp("acme-seed")
    # Acme's resource, made in the console, declares no application roles: scopes only.
    with integration_service(server, workdir, issuer=acme, audience=AUDIENCE,
                             app=service_app, manage_scope=MANAGE, enforce_roles=False) as api, \
            web_client(port=port, issuer=acme, app=app, scope=f"openid profile {CONSUMER}",
                       api=api, workdir=workdir) as client:
        # The seed's flow, in acme, with a browser of acme's user.
        user = chromium.new_context().new_page()
        user.set_default_timeout(15_000)
        user.goto(client.url)
        user.get_by_role("link", name="Sign in").click()
        user.wait_for_url(f"{acme}/oauth2/v1/authorize?**")
        assert "Acme web client" in user.content()
        with user.expect_request(lambda r: r.url.startswith(client.redirect_uri)) as redirect:
            sign_in(user, *ALICE)
        back = {k: v[0] for k, v in parse_qs(urlsplit(redirect.value.url).query).items()}
        assert back["iss"] == acme  # RFC 9207: acme issued the code
        user.wait_for_url(client.url + "/")
        assert user.locator("#signed-in").inner_text() == "Signed in as Alice of Acme"
        assert user.locator("#api-status").inner_text() == "200"
        assert "Hello, Alice of Acme" in user.locator("#api-response").inner_text()
        user.context.close()

        # The tokens are acme's: its issuer, its userinfo; the default domain refuses them.
        code = user_code(acme, *ALICE, app, scope=f"openid {CONSUMER}")
        tokens = exchange_code(acme, app, code)
        assert _claims(tokens["access_token"])["iss"] == acme
        assert _claims(tokens["id_token"])["iss"] == acme
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        info = httpx.get(f"{acme}/oauth2/v1/userinfo", headers=bearer)
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == _claims(tokens["access_token"])["sub"]
        assert httpx.get(f"{server.issuer}/oauth2/v1/userinfo", headers=bearer).status_code == 401
        assert httpx.get(api.url, headers=bearer).status_code == 200

    # The operator picks acme in the default console: acme's apps and users, the operator's token.
    page.get_by_role("button", name="Domain: Default. Choose another").click()
    page.get_by_role("searchbox", name="Find a domain by name").fill("ac")
    menu = page.get_by_role("dialog", name="Choose a domain")
    menu.get_by_role("button", name="Acme Corporation acme").click()
    expect(page.locator("#domain-name")).to_have_text("Acme Corporation")
    page.get_by_role("link", name="Apps").click()
    expect(page.get_by_role("cell", name="Acme web client")).to_be_visible()
    expect(page.get_by_role("cell", name="Integration client (demo)")).to_have_count(0)
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("link", name="ada", exact=True)).to_be_visible()
    page.screenshot(path=str(server.data_dir / "console-operator-in-acme.png"), full_page=True)
    page.get_by_role("button", name="Domain: Acme Corporation. Choose another").click()
    menu.get_by_role("button", name="Default default").click()
    expect(page.locator("#domain-name")).to_have_text("Default")
    # acme has an alice too: the Default list is the one without ada.
    expect(page.get_by_role("link", name="ada", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="alice", exact=True)).to_be_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_each_domains_console_page_names_its_own_app_prefix_and_domain(server: Server) -> None:
    """The console page tells its script which domain it is for: by path or by host name."""
    pathy = create_domain(server, "pathy", admin=None, display_name="Pathy Ltd")["id"]
    hosty = create_domain(server, "hosty", admin=None, host="login.hosty.example")["id"]
    default = httpx.get(f"{server.base_url}/console/").text
    by_path = httpx.get(f"{server.base_url}/domains/pathy/console/").text
    by_host = httpx.get(f"{server.base_url}/console/", headers={"Host": "login.hosty.example"}).text
    assert 'data-prefix="" data-client-id="tessera-console"' in default
    assert 'data-default="true"' in default
    assert f'data-prefix="/domains/pathy" data-client-id="tessera-console-{pathy}"' in by_path
    assert 'data-domain-name="Pathy Ltd"' in by_path and 'data-default="false"' in by_path
    assert f'data-prefix="" data-client-id="tessera-console-{hosty}"' in by_host
    assert 'data-domain="hosty"' in by_host


def test_the_domains_page_finds_disables_enables_and_deletes_domains(
    server: Server, page: Page
) -> None:
    """Domains come a page at a time and are found by name (thousands must not be loaded at
    once); the API's problem details reach the operator; deleting asks for the domain's name."""
    token = operator_token(server.base_url, *OPERATOR)["access_token"]
    domains_api = f"{server.base_url}/admin/v1/domains"
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(55):
        made = httpx.post(domains_api, headers=headers, json={"name": f"bulk-{i:02}"}, timeout=30)
        assert made.status_code == 201, made.text
    create_domain(server, "beta", admin=None, display_name="Beta Industries")
    create_domain(server, "hosted", admin=None, host="login.hosted.example")

    page.goto(f"{server.base_url}/console/#/domains")
    sign_in(page, *OPERATOR)
    page.get_by_role("link", name="Domains", exact=True).click()
    expect(page.get_by_role("heading", name="Identity domains")).to_be_visible()
    expect(page.get_by_role("button", name="More domains")).to_be_visible()  # not all at once

    # The picker pages too, and finds by the start of the name.
    page.get_by_role("button", name="Domain: Default. Choose another").click()
    menu = page.get_by_role("dialog", name="Choose a domain")
    expect(menu.get_by_role("button", name="More domains")).to_be_visible()
    menu.get_by_role("searchbox").fill("bulk-5")
    expect(menu.locator(".domain-option")).to_have_count(5)  # bulk-50 … bulk-54
    page.screenshot(path=str(server.data_dir / "console-domain-picker.png"))
    # A domain on a host of its own is managed from its console there (another origin).
    menu.get_by_role("searchbox").fill("host")
    elsewhere = menu.get_by_role("link", name="hosted open at login.hosted.example ↗")
    expect(elsewhere).to_have_attribute("href", "https://login.hosted.example/console/")
    expect(menu.get_by_role("button", name="hosted")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()

    # Find beta; a second "beta" is refused with the API's detail.
    finder = page.get_by_role("search", name="Find domains")
    finder.get_by_role("searchbox").fill("bet")
    finder.get_by_role("button", name="Find").click()
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Beta Industries")
    form = page.get_by_role("form", name="New identity domain")
    form.locator("input[name=name]").fill("beta")
    form.get_by_role("button", name="Create domain").click()
    expect(page.locator("#toast")).to_contain_text("already exists")

    # Disable (the domain then answers only an error), enable again.
    discovery = f"{server.base_url}/domains/beta/.well-known/openid-configuration"
    page.once("dialog", lambda dialog: dialog.accept())
    rows.get_by_role("button", name="Disable").click()
    expect(page.locator("#toast")).to_contain_text("Disabled beta")
    expect(rows).to_contain_text("disabled")
    assert httpx.get(discovery).status_code == 403
    rows.get_by_role("button", name="Enable").click()
    expect(page.locator("#toast")).to_contain_text("Enabled beta")
    expect(rows).to_contain_text("active")

    # Delete: the wrong name deletes nothing; the right one deletes the domain.
    page.once("dialog", lambda dialog: dialog.accept("bulk-00"))
    rows.get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_contain_text("Not deleted")
    assert httpx.get(f"{domains_api}/beta", headers=headers).status_code == 200
    messages: list[str] = []

    def confirm(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept("beta")

    page.once("dialog", confirm)
    rows.get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_contain_text("Deleted beta")
    assert "Delete the identity domain beta (Beta Industries)?" in messages[0]
    expect(page.get_by_text("No domain starts with “bet”.")).to_be_visible()
    assert httpx.get(f"{domains_api}/beta", headers=headers).status_code == 404
    assert httpx.get(discovery).status_code == 404
    page.screenshot(path=str(server.data_dir / "console-domains.png"), full_page=True)
