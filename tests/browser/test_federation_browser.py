"""Signing in through upstream OpenID Connect providers (docs/federation.md) in real Chromium,
then the seed's flow for an app of the downstream domain.

The downstream is the demo domain; its app is the sample web client (`examples/web_client`,
the seed's client application, as in test_seed_flow_web_client.py), calling the integration
service with the user's token. The upstreams are real OpenID Providers:

- panva's oidc-provider (a certified OpenID Provider; tests/node/upstream_op.mjs), its
  development login form, client_secret_basic;
- a second Tessera identity domain on the same node, its own login and consent pages.

Each sign-in creates the user just in time (checked through the admin API), and the web client
exchanges the code and calls the API with the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tessera.shared.integration_roles import SERVICE_INVOKER
from tests.browser.support import Api, WebClient
from tests.browser.support import web_client as start_web_client
from tests.support.admin import admin_client, console_token
from tests.support.domains import domain_cli
from tests.support.server import Server, free_port
from tests.support.upstreams import (
    TesseraUpstream,
    UpstreamOP,
    account,
    callback_uri,
    running_upstream_op,
    secret_client,
    tessera_upstream,
)

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"  # the demo domain's administrator, `admin`
NODE_SECRET = "node-op-client-secret-6d1f0c"
ANN = account("ann-7f3a", "ann@node.test", name="Ann Node", username="ann", groups=("engineering",))
HANA = account(
    "hana-29c1", "hana@node.test", name="Hana Realm", username="hana", groups=("engineering",)
)
KAI = account("kai-5e0b", "kai@node.test", name="Kai Hint", username="kai")
LENA_UPSTREAM = account("lena-0c4d", "lena@node.test", name="Lena Node", username="lena.node")
LENA_PASSWORD = "Granite-Harbour-Willow-38"
BRUNO = {
    "username": "bruno",
    "email": "bruno@partner.test",
    "name": "Bruno Partner",
    "password": "Copper-Lighthouse-Fern-61",
}


@pytest.fixture(scope="module")
def web_client(
    server: Server, api: Api, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebClient]:
    """The sample web client as a confidential app of the demo (downstream) domain."""
    port = free_port()
    resource_scope = server.demo["resource"]["scope"]
    scopes = ("openid", "profile", resource_scope)
    app = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        "Federated web client",
        "--redirect-uri",
        f"http://127.0.0.1:{port}/callback",
        *(arg for scope in scopes for arg in ("--allow-scope", scope)),
    )
    with start_web_client(
        port=port,
        issuer=server.issuer,
        app=app,
        scope=" ".join(scopes),
        api=api,
        workdir=tmp_path_factory.mktemp("web-client"),
    ) as client:
        yield client


@pytest.fixture(scope="module")
def engineering(server: Server) -> str:
    """The downstream group `engineering`, granted the integration service's ServiceInvoker
    role: a user the upstream puts in `engineering` may call the API (a user without a role
    gets 403 there)."""
    server.cli_json("admin", "groups", "create", "engineering")
    audience = server.demo["resource"]["audience"]
    server.cli_json("admin", "roles", "grant", audience, SERVICE_INVOKER, "--group", "engineering")
    return "engineering"


@pytest.fixture(scope="module")
def node_op(
    server: Server, engineering: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamOP]:
    """oidc-provider with Ann, Hana (both in its `engineering` group) and Kai, added downstream as
    `node-op` ("Node OP") with group mapping and home-realm discovery for node.test."""
    callback = callback_uri(server.issuer, "node-op")
    client = secret_client("tessera", NODE_SECRET, callback)
    with running_upstream_op(
        tmp_path_factory.mktemp("node-op"), clients=[client], accounts=[ANN, HANA, KAI, LENA_UPSTREAM]
    ) as op:
        server.cli_json(
            "admin",
            "providers",
            "add",
            "node-op",
            "--display-name",
            "Node OP",
            "--issuer",
            op.issuer,
            "--client-id",
            "tessera",
            "--client-secret-stdin",
            "--groups-claim",
            "groups",
            "--email-domain",
            "node.test",
            input=NODE_SECRET + "\n",
        )
        yield op


@pytest.fixture(scope="module")
def partner(server: Server, engineering: str) -> TesseraUpstream:
    """A second identity domain of the node, `partner`, with Bruno in its own `engineering`
    group, added downstream as `partner` ("Partner Tessera"), asking for the `groups` scope
    and mapping the `groups` claim."""
    upstream = tessera_upstream(
        server, "partner", redirect_uri=callback_uri(server.issuer, "partner"), users=[BRUNO]
    )
    domain_cli(server, "partner", "groups", "create", "engineering", "--member", "bruno")
    scopes = ("openid", "profile", "email", "groups")
    server.cli_json(
        "admin",
        "providers",
        "add",
        "partner",
        "--display-name",
        "Partner Tessera",
        "--issuer",
        upstream.issuer,
        "--client-id",
        upstream.app["client_id"],
        "--client-secret-stdin",
        *(arg for scope in scopes for arg in ("--scope", scope)),
        "--groups-claim",
        "groups",
        input=upstream.app["client_secret"] + "\n",
    )
    return upstream


# --- helpers -----------------------------------------------------------------------------------


def admin_users(server: Server) -> dict[str, dict[str, Any]]:
    """The demo domain's users by username, through the admin API (as the console sees them)."""
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.issuer, token) as admin:
        response = admin.get("/users")
        assert response.status_code == 200, response.text
        return {u["username"]: u for u in response.json()}


def group_members(server: Server, group: str) -> set[str]:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.issuer, token) as admin:
        response = admin.get(f"/groups/{group}")
        assert response.status_code == 200, response.text
        return {m["username"] for m in response.json()["members"]}


def allow_if_asked(page: Page, done: Callable[[str], bool]) -> None:
    """Tessera's consent page, when it is shown: allow. Returns once the browser is where
    `done` says (a URL past the consent), however long the hops before it take: neither a
    slow page nor a consent that is never shown is mistaken for the other."""
    button = page.locator("button[value=allow]")
    deadline = time.monotonic() + 30
    while not done(page.url):
        if button.is_visible():
            consent = page.url
            button.click()
            # Off the consent page (to another consent page, or to an app's redirect URI that
            # the test answers itself: "commit", not "load").
            page.wait_for_url(lambda url: url != consent, wait_until="commit", timeout=30_000)
            return
        assert time.monotonic() < deadline, f"neither consent nor past it: {page.url}"
        page.wait_for_timeout(100)


def at(prefix: str) -> Callable[[str], bool]:
    return lambda url: url.startswith(prefix)


def at_login_page(page: Page, server: Server, web_client: WebClient) -> None:
    """The web client's "Sign in": the browser at the demo domain's sign-in page, with the
    buttons of both providers (the page caches the provider list 2 s: reload until then)."""
    page.goto(web_client.url)
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{server.issuer}/oauth2/v1/authorize?**")
    expect(page.locator("input[name=password]")).to_be_visible()
    for _ in range(10):
        if page.locator("#sign-in-providers a").count() == 2:
            break
        page.wait_for_timeout(500)
        page.reload()


def node_op_login(page: Page, op: UpstreamOP, login: str) -> None:
    """oidc-provider's development login form: the account's sub, any password."""
    page.wait_for_url(f"{op.issuer}/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any-password")
    page.get_by_role("button", name="Sign-in").click()


def signed_in_at_web_client(page: Page, web_client: WebClient, display_name: str) -> str:
    """Steps 5-8 of the seed: the web client exchanged the code, shows who signed in and the
    API's answer to the call with the user's token; the API's answer."""
    page.wait_for_url(web_client.url + "/", timeout=30_000)
    expect(page.locator("#signed-in")).to_have_text(f"Signed in as {display_name}")
    expect(page.locator("#api-status")).to_have_text("200")
    response = page.locator("#api-response").inner_text()
    assert f"Hello, {display_name}" in response
    assert web_client.client_id in response
    return response


def sign_out(page: Page, web_client: WebClient) -> None:
    with page.expect_navigation(timeout=30_000):
        page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible(timeout=30_000)


# --- tests -------------------------------------------------------------------------------------


def test_sign_in_through_oidc_provider_creates_the_user_and_runs_the_seed_flow(
    page: Page,
    server: Server,
    web_client: WebClient,
    node_op: UpstreamOP,
    partner: TesseraUpstream,
) -> None:
    assert "ann" not in admin_users(server)
    callbacks: list[str] = []
    page.on(
        "request",
        lambda r: (
            callbacks.append(r.url) if "/oauth2/v1/federation/node-op/callback" in r.url else None
        ),
    )
    at_login_page(page, server, web_client)
    page.get_by_role("link", name="Sign in with Node OP").click()
    page.wait_for_url(f"{node_op.issuer}/**")
    node_op_login(page, node_op, ANN["sub"])
    # the web client's consent, at the demo domain, for the new user
    allow_if_asked(page, at(web_client.url))

    response = signed_in_at_web_client(page, web_client, "Ann Node")
    (callback,) = callbacks
    back = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert back["iss"] == node_op.issuer and back["code"] and back["state"]  # RFC 9207

    ann = admin_users(server)["ann"]  # just in time, from the upstream's claims
    assert ann["email"] == "ann@node.test" and ann["display_name"] == "Ann Node"
    assert not ann["is_admin"] and not ann["disabled"]
    assert ann["id"] in response  # the API saw our user, not the upstream's sub
    assert ANN["sub"] not in response
    assert "ann" in group_members(server, "engineering")  # groups claim → existing group
    sign_out(page, web_client)


def test_sign_in_through_another_tessera_domain_creates_the_user_and_runs_the_seed_flow(
    page: Page,
    server: Server,
    web_client: WebClient,
    node_op: UpstreamOP,
    partner: TesseraUpstream,
) -> None:
    assert "bruno" not in admin_users(server)
    at_login_page(page, server, web_client)
    page.get_by_role("link", name="Sign in with Partner Tessera").click()
    # The partner domain's own sign-in page, then its consent page for our client.
    page.wait_for_url(f"{partner.issuer}/oauth2/v1/authorize?**")
    page.fill("input[name=username]", BRUNO["username"])
    page.fill("input[name=password]", BRUNO["password"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    # the partner domain's consent for the downstream app
    allow_if_asked(page, lambda url: not url.startswith(partner.issuer))
    page.wait_for_url(lambda url: not url.startswith(partner.issuer), timeout=30_000)
    allow_if_asked(page, at(web_client.url))  # the demo domain's consent for the web client

    response = signed_in_at_web_client(page, web_client, "Bruno Partner")
    bruno = admin_users(server)["bruno"]
    # The upstream domain's administrator set bruno's address, so it says `email_verified:
    # true` and the just-in-time account keeps it.
    assert bruno["email"] == "bruno@partner.test"
    assert bruno["id"] in response
    assert bruno["id"] != partner.users["bruno"]["id"]  # a user of ours, linked to theirs
    assert "bruno" in group_members(server, "engineering")
    sign_out(page, web_client)


def test_an_email_address_of_a_provider_domain_goes_straight_to_the_provider(
    page: Page,
    server: Server,
    web_client: WebClient,
    node_op: UpstreamOP,
    partner: TesseraUpstream,
) -> None:
    """Home-realm discovery: the user types a work e-mail address and no password."""
    assert "hana" not in admin_users(server)
    at_login_page(page, server, web_client)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.fill("input[name=username]", HANA["email"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    try:
        page.wait_for_url(f"{node_op.issuer}/**")
    except Exception:
        # e.g. the sign-in page's CSP `form-action` not allowing the provider's origin: the
        # browser blocks the form's redirect to it (CSP Level 3 §6.3.1.1 covers redirects).
        raise AssertionError(f"not sent to the provider; still at {page.url}: {console}") from None
    # The address travelled as login_hint (OIDC Core §3.1.2.1): the form has it.
    expect(page.locator("input[name=login]")).to_have_value(HANA["email"])
    node_op_login(page, node_op, HANA["sub"])
    allow_if_asked(page, at(web_client.url))

    response = signed_in_at_web_client(page, web_client, "Hana Realm")
    hana = admin_users(server)["hana"]
    assert hana["email"] == "hana@node.test" and hana["id"] in response
    sign_out(page, web_client)


def test_the_provider_buttons_are_on_the_sign_in_page(
    page: Page, server: Server, web_client: WebClient, node_op: UpstreamOP, partner: Any
) -> None:
    at_login_page(page, server, web_client)
    for name in ("Node OP", "Partner Tessera"):
        expect(page.get_by_role("link", name=f"Sign in with {name}")).to_be_visible()


def test_a_login_hint_of_a_provider_domain_skips_the_sign_in_page(
    page: Page,
    server: Server,
    node_op: UpstreamOP,
    partner: TesseraUpstream,
) -> None:
    """An app that knows the user's address sends it as login_hint (OIDC Core §3.1.2.1): the
    browser goes from the authorization request straight to the provider, no sign-in page."""
    app = server.demo["confidential_app"]
    arrived: list[str] = []

    def at_app(route: Route) -> None:
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="the app")

    page.route(app["redirect_uri"] + "**", at_app)
    pages: list[str] = []
    page.on("request", lambda r: pages.append(r.url) if r.is_navigation_request() else None)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": app["redirect_uri"],
            "scope": "openid profile",
            "state": "hint-state",
            "nonce": "hint-nonce",
            "login_hint": KAI["email"],
        }
    )
    page.goto(f"{server.issuer}/oauth2/v1/authorize?{query}")
    page.wait_for_url(f"{node_op.issuer}/**")
    expect(page.locator("input[name=login]")).to_have_value(KAI["email"])
    node_op_login(page, node_op, KAI["sub"])
    allow_if_asked(page, at(app["redirect_uri"]))
    page.wait_for_url(app["redirect_uri"] + "**", timeout=30_000)

    back = {k: v[0] for k, v in parse_qs(urlsplit(arrived[-1]).query).items()}
    assert back["state"] == "hint-state" and back["iss"] == server.issuer
    # No sign-in page was shown: authorize → federation start (login_hint) → the provider.
    assert urlsplit(pages[1]).path == "/oauth2/v1/federation/node-op/start", pages
    assert parse_qs(urlsplit(pages[1]).query)["login_hint"] == [KAI["email"]]
    assert pages[2].startswith(node_op.issuer), pages
    tokens = httpx.post(
        f"{server.issuer}/oauth2/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": app["redirect_uri"],
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text
    kai = admin_users(server)["kai"]
    assert kai["display_name"] == "Kai Hint"
    assert (
        httpx.get(
            f"{server.issuer}/oauth2/v1/userinfo",
            headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
        ).json()["sub"]
        == kai["id"]
    )


def test_a_local_user_links_a_provider_from_the_account_page(
    page: Page, server: Server, node_op: UpstreamOP
) -> None:
    """The security page's "Link" form answers with a redirect to the provider: the page's CSP
    `form-action` must allow it, or Chromium stays on the page (CSP Level 3 §6.3.1.1)."""
    server.cli_json(
        "admin", "users", "create", "lena", "--password-stdin", input=LENA_PASSWORD + "\n"
    )
    page.goto(f"{server.issuer}/account/security")
    page.fill("input[name=username]", "lena")
    page.fill("input[name=password]", LENA_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    allow_if_asked(page, at(f"{server.issuer}/account/"))
    page.goto(f"{server.issuer}/account/security")
    for _ in range(10):  # the provider list is cached 2 s on the node
        if page.locator("#link-node-op").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    page.locator("#link-node-op").click()
    try:
        page.wait_for_url(f"{node_op.issuer}/**")
    except Exception:
        raise AssertionError(f"not sent to the provider; still at {page.url}") from None
    node_op_login(page, node_op, LENA_UPSTREAM["sub"])
    page.wait_for_url(f"{server.issuer}/account/security**", timeout=30_000)
    linked = page.locator("#linked-providers")
    expect(linked).to_contain_text("Node OP")
    expect(linked).to_contain_text("lena@node.test")
