"""The seed's eight steps, end to end in real Chromium, through the sample web client
(`examples/web_client`, the seed's "client application").

| seed step | here |
|---|---|
| 1 request an authorization code with the client id | "Sign in" on the web client redirects the browser to `/oauth2/v1/authorize` |
| 2 check the client, prompt for user name and password | Tessera's login page |
| 3 the user logs in | Chromium fills the form (and allows on the consent page) |
| 4 check the credentials, return an authorization code | the redirect to the web client's `/callback` with `code`, `state`, `iss` |
| 5 request an access token with the code | the web client posts to `/oauth2/v1/token` (secret + PKCE), server to server |
| 6 validate and return the access token | the token response; the web client shows who signed in |
| 7 call the API with `Authorization: Bearer` | the web client calls the protected API |
| 8 the API receives the call and answers | its answer is on the page |
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.support import Api, WebClient, sign_in
from tests.browser.support import web_client as start_web_client
from tests.support.server import Server, free_port


@pytest.fixture(scope="module")
def web_client(
    server: Server, api: Api, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebClient]:
    """Register a confidential app for the web client, and start it (uvicorn, a subprocess)."""
    port = free_port()
    resource_scope = server.demo["resource"]["scope"]
    app = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        "Integration web client",
        "--redirect-uri",
        f"http://127.0.0.1:{port}/callback",
        "--allow-scope",
        "openid",
        "--allow-scope",
        "profile",
        "--allow-scope",
        resource_scope,
    )
    with start_web_client(
        port=port,
        issuer=server.issuer,
        app=app,
        scope=f"openid profile {resource_scope}",
        api=api,
        workdir=tmp_path_factory.mktemp("web-client"),
    ) as client:
        yield client


def test_the_seeds_eight_steps_through_the_sample_web_client(
    page: Page, server: Server, web_client: WebClient
) -> None:
    alice = server.demo["user"]
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))

    page.goto(web_client.url)
    # Step 1: the user asks to sign in; the browser goes to the authorization URI.
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{server.issuer}/oauth2/v1/authorize?**")
    authorize = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert authorize["client_id"] == web_client.client_id
    assert authorize["redirect_uri"] == web_client.redirect_uri
    assert authorize["code_challenge_method"] == "S256"
    assert "state" in authorize and "nonce" in authorize
    # Step 2: the identity domain checks the client and asks for a user name and password.
    assert page.locator("input[name=password]").is_visible()
    assert "Integration web client" in page.content()

    # Step 3: the user logs in (and consents); step 4: the code comes back to the client.
    with page.expect_request(lambda r: r.url.startswith(web_client.redirect_uri)) as redirect:
        sign_in(page, alice["username"], alice["password"])
    callback: Request = redirect.value
    back = {k: v[0] for k, v in parse_qs(urlsplit(callback.url).query).items()}
    assert back["state"] == authorize["state"]
    assert back["iss"] == server.issuer  # RFC 9207
    assert back["code"]

    # Steps 5-6: the client exchanged the code for tokens, server to server (the browser never
    # sees the token endpoint), and shows who signed in.
    page.wait_for_url(web_client.url + "/")
    assert page.locator("#signed-in").inner_text() == "Signed in as Alice Example"
    assert page.locator("#username").inner_text() == "alice"
    assert not any("/oauth2/v1/token" in url for url in seen)

    # Steps 7-8: the client called the protected API with the bearer token; the API answered.
    assert page.locator("#api-status").inner_text() == "200"
    response = page.locator("#api-response").inner_text()
    assert "Hello, Alice Example" in response
    assert alice["sub"] in response
    assert web_client.client_id in response

    # Tokens never reach the browser: no cookie holds one, the page shows none.
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies if c["domain"] == "127.0.0.1"]
    assert all(len(c["value"]) < 100 for c in cookies)
    assert "eyJ" not in page.content()

    # Signing out revokes the tokens and returns to the start page.
    with page.expect_navigation(timeout=30_000):
        page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible(timeout=30_000)
    assert page.url.rstrip("/") == web_client.url


def test_a_callback_with_a_foreign_state_is_refused(
    page: Page, server: Server, web_client: WebClient
) -> None:
    page.goto(web_client.url + "/login")  # starts a login, so this browser has a session
    page.wait_for_url(f"{server.issuer}/oauth2/v1/authorize?**")
    page.goto(f"{web_client.redirect_uri}?code=stolen&state=forged&iss={server.issuer}")
    assert "does not belong to your session" in page.locator("#error").inner_text()
