"""docs/security.md rules 1-10: the authorization endpoint, its pages and its redirects.

Black-box over a real server on loopback. The app `https://app.example.test/cb` is registered
with the CLI; the browser never follows a redirect, so each test sees where it would go.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.support.flow import Browser, Pkce, code_from, form_fields, query_of, token_request
from tests.support.server import Server

ALICE = ("alice", "Wonderland-Demo-2026")
EX_REDIRECT = "https://app.example.test/cb"
EX_BYE = "https://app.example.test/bye"
V6_REDIRECT = "http://[::1]/cb"
STATE = "st-8Hq_2"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ex_app(server: Server) -> dict[str, Any]:
    """A confidential web app at https://app.example.test (redirect, post-logout redirect)."""
    return server.cli_json(
        "admin", "apps", "create", "--name", "Example web app",
        "--redirect-uri", EX_REDIRECT,
        "--post-logout-redirect-uri", EX_BYE,
        "--allow-scope", "openid", "--allow-scope", "profile",
    )  # fmt: skip


@pytest.fixture(scope="module")
def v6_app(server: Server) -> dict[str, Any]:
    """A public native app with an IPv6 loopback redirect URI (RFC 8252 §7.3)."""
    return server.cli_json(
        "admin", "apps", "create", "--name", "IPv6 native app", "--public",
        "--redirect-uri", V6_REDIRECT, "--allow-scope", "openid",
    )  # fmt: skip


@pytest.fixture(scope="module")
def alice(server: Server, ex_app: dict[str, Any], v6_app: dict[str, Any]) -> Iterator[Browser]:
    """alice, signed in, having consented to the example app and both native apps."""
    b = Browser(server.base_url)
    response = b.sign_in_and_authorize(*ALICE, **ex_params(ex_app))
    code_from(response)
    for client_id, redirect_uri in (
        (server.demo["public_app"]["client_id"], server.demo["public_app"]["redirect_uri"]),
        (v6_app["client_id"], V6_REDIRECT),
    ):
        response = b.authorize(**native_params(client_id, redirect_uri))
        if response.status_code == 200:
            response = b.consent(response)
        code_from(response)
    try:
        yield b
    finally:
        b.close()


def ex_params(ex_app: dict[str, Any], **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": ex_app["client_id"],
        "redirect_uri": EX_REDIRECT,
        "scope": "openid profile",
        "state": STATE,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def native_params(client_id: str, redirect_uri: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": STATE,
        "code_challenge": Pkce().challenge,
        "code_challenge_method": "S256",
    }


def assert_error_page(response: httpx.Response, status: int = 400) -> None:
    """An HTML error page for the user: no redirect, no code, no stack trace."""
    assert response.status_code == status, (
        response.status_code,
        response.headers,
        response.text[:300],
    )
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "code=" not in response.text
    assert "Traceback" not in response.text


def assert_error_redirect(
    server: Server, response: httpx.Response, redirect_uri: str, error: str, state: str = STATE
) -> dict[str, str]:
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.split("?")[0] == redirect_uri
    query = query_of(location)
    assert query["error"] == error, query
    assert query["state"] == state
    assert query["iss"] == server.issuer
    assert "code" not in query
    return query


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert re.search(r"(^|;)\s*frame-ancestors 'none'\s*(;|$)", csp), csp
    assert response.headers["referrer-policy"] == "no-referrer"


def signed_in_browser(server: Server, ex_app: dict[str, Any]) -> tuple[Browser, httpx.Response]:
    """A new browser where alice signed in; returns it with the consent or code response."""
    b = Browser(server.base_url)
    page = b.authorize(**ex_params(ex_app))
    response = b.follow(b.login(page, *ALICE))
    return b, response


# --- item 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "HTTPS://app.example.test/cb",
        "https://APP.example.test/cb",
        "https://app.example.test/CB",
        "https://app.example.test/cb/",
        "https://app.example.test/cb?x=1",
        "https://app.example.test/cb?",
        "https://app.example.test/cb#fragment",
        "https://app.example.test/cb#",
        "https://app.example.test/cb/extra",
        "https://app.example.test/cb/..;/cb",
        "https://app.example.test/x/..;/cb",
        "https://app.example.test/%2e%2e/cb",
        "https://app.example.test/cb/%2e%2e/cb",
        "https://app.example.test/%2E/cb",
        "https://app.example.test/%63b",
        "https://app.example.test/cb%2f",
        "https://app.example.test/cb%00",
        "https://app.example.test/cb%20",
        " https://app.example.test/cb",
        "https://app.example.test@evil.test/cb",
        "https://app.example.test:443@evil.test/cb",
        "https://evil.test@app.example.test/cb",
        "https://app.example.test.evil.test/cb",
        "https://app.example.test./cb",
        "https://app.example.test:443/cb",
        "https://app.example.test:8443/cb",
        "http://app.example.test/cb",
        "https://evil.test/cb",
        "//app.example.test/cb",
        "/cb",
    ],
)
def test_item01_redirect_uri_is_compared_by_exact_string_match(
    server: Server, ex_app: dict[str, Any], alice: Browser, variant: str
) -> None:
    # alice is signed in and has consented: a match would redirect with a code at once.
    assert_error_page(alice.authorize(**ex_params(ex_app, redirect_uri=variant)))


def test_item01_redirect_uri_exact_registered_string_succeeds(
    server: Server, ex_app: dict[str, Any], alice: Browser
) -> None:
    response = alice.authorize(**ex_params(ex_app))
    assert response.headers["location"].startswith(EX_REDIRECT + "?")
    code_from(response)


@pytest.mark.parametrize(
    ("app", "variant"),
    [
        ("public", "http://127.0.0.1/callback"),
        ("public", "http://127.0.0.1:5555/callback"),
        ("public", "http://127.0.0.1:65535/callback"),
        ("v6", "http://[::1]:6000/cb"),
        ("v6", "http://[::1]/cb"),
    ],
)
def test_item01_loopback_redirect_uri_of_a_native_app_may_differ_only_in_port(
    server: Server, v6_app: dict[str, Any], alice: Browser, app: str, variant: str
) -> None:
    client_id = server.demo["public_app"]["client_id"] if app == "public" else v6_app["client_id"]
    response = alice.authorize(**native_params(client_id, variant))
    assert response.status_code == 302, response.text[:300]
    assert response.headers["location"].split("?")[0] == variant
    code_from(response)


@pytest.mark.parametrize(
    ("app", "variant"),
    [
        ("public", "http://127.0.0.1:5555/callback/"),
        ("public", "http://127.0.0.1:5555/Callback"),
        ("public", "http://127.0.0.1:5555/callback?x=1"),
        ("public", "http://127.0.0.1:5555/callback#f"),
        ("public", "http://127.0.0.1:5555/other"),
        ("public", "http://127.0.0.1:5555/callback/../callback"),
        ("public", "http://localhost:5555/callback"),
        ("public", "http://127.0.0.2:5555/callback"),
        ("public", "http://[::1]:5555/callback"),
        ("public", "https://127.0.0.1:5555/callback"),
        ("public", "http://127.0.0.1:0/callback"),
        ("public", "http://127.0.0.1:99999/callback"),
        ("public", "http://127.0.0.1:5555@evil.test/callback"),
        ("public", "http://127.0.0.1.evil.test:5555/callback"),
        ("public", "http://evil.test:5555/callback"),
        ("v6", "http://127.0.0.1:6000/cb"),
        ("v6", "http://[::1]:6000/cb/"),
        ("v6", "http://[0:0:0:0:0:0:0:1]:6000/cb"),
        ("v6", "http://[::ffff:127.0.0.1]:6000/cb"),
        ("v6", "http://[::1%25eth0]:6000/cb"),
    ],
)
def test_item01_loopback_redirect_uri_differing_other_than_in_port_is_refused(
    server: Server, v6_app: dict[str, Any], alice: Browser, app: str, variant: str
) -> None:
    client_id = server.demo["public_app"]["client_id"] if app == "public" else v6_app["client_id"]
    assert_error_page(alice.authorize(**native_params(client_id, variant)))


def test_item01_loopback_port_freedom_is_only_for_loopback_uris(
    server: Server, ex_app: dict[str, Any], alice: Browser
) -> None:
    # Port freedom (RFC 8252 §7.3) is for loopback URIs only: never for a https app.
    assert_error_page(
        alice.authorize(**ex_params(ex_app, redirect_uri="https://app.example.test:4443/cb"))
    )


# --- item 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "unknown-client",
        "unknown-client-and-token-response-type",
        "missing-client",
        "client-id-too-long",
        "unregistered-redirect",
        "another-apps-redirect",
        "unregistered-redirect-and-bad-scope",
        "unregistered-redirect-and-token-response-type",
        "repeated-client-id",
        "repeated-redirect-uri",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_item02_unknown_client_or_unregistered_redirect_uri_gets_an_error_page(
    server: Server, ex_app: dict[str, Any], alice: Browser, case: str, method: str
) -> None:
    params: list[tuple[str, str]] = list(ex_params(ex_app).items())
    evil = "https://evil.test/cb"

    def set_(name: str, value: str | None) -> None:
        params[:] = [(k, v) for k, v in params if k != name]
        if value is not None:
            params.append((name, value))

    if case == "unknown-client":
        set_("client_id", secrets.token_hex(16))
    elif case == "unknown-client-and-token-response-type":
        set_("client_id", secrets.token_hex(16))
        set_("response_type", "token")
    elif case == "missing-client":
        set_("client_id", None)
    elif case == "client-id-too-long":
        set_("client_id", ex_app["client_id"] * 40)
    elif case == "unregistered-redirect":
        set_("redirect_uri", evil)
    elif case == "another-apps-redirect":
        set_("redirect_uri", server.demo["confidential_app"]["redirect_uri"])
    elif case == "unregistered-redirect-and-bad-scope":
        set_("redirect_uri", evil)
        set_("scope", "no-such-scope")
    elif case == "unregistered-redirect-and-token-response-type":
        set_("redirect_uri", evil)
        set_("response_type", "token")
    elif case == "repeated-client-id":
        params.append(("client_id", server.demo["confidential_app"]["client_id"]))
    elif case == "repeated-redirect-uri":
        params.append(("redirect_uri", evil))
    if method == "GET":
        response = alice.http.get("/oauth2/v1/authorize", params=params)
    else:
        response = alice.http.post(
            "/oauth2/v1/authorize",
            content=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert_error_page(response)
    assert evil not in response.headers.get("location", "")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "no-such-scope"}, "invalid_scope"),
        ({"scope": "openid email"}, "invalid_scope"),  # not allowed for this app
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "id_token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"redirect_uri": None, "scope": "no-such-scope"}, "invalid_scope"),  # the one registered
    ],
    ids=[
        "unknown-scope",
        "scope-not-allowed",
        "token",
        "id_token",
        "no-response-type",
        "bad-prompt",
        "omitted-redirect",
    ],
)
def test_item02_other_errors_redirect_only_to_the_validated_uri_with_state_and_iss(
    server: Server,
    ex_app: dict[str, Any],
    alice: Browser,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    response = alice.authorize(**ex_params(ex_app, **overrides))  # type: ignore[arg-type]
    assert_error_redirect(server, response, EX_REDIRECT, error)


# --- item 3 ------------------------------------------------------------------------------------


def test_item03_user_is_authenticated_before_any_success_redirect(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    response = browser.authorize(**ex_params(ex_app))
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'name="password"' in response.text
    # A consent POST without a session never yields a code, whatever the form says.
    forged = browser.http.post(
        "/oauth2/v1/consent",
        data={"authz": response.request.url.query.decode(), "decision": "allow", "csrf_token": "x"},
    )
    assert "code=" not in forged.headers.get("location", "")
    assert forged.status_code not in (301, 302, 303, 307, 308)
    # A wrong password neither.
    failed = browser.login(response, "alice", "not-the-password")
    assert failed.status_code == 401
    assert "location" not in failed.headers
    assert "tessera_session" not in failed.headers.get("set-cookie", "")


def test_item03_prompt_none_without_a_session_answers_login_required(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    response = browser.authorize(**ex_params(ex_app, prompt="none"))
    assert_error_redirect(server, response, EX_REDIRECT, "login_required")


def test_item03_prompt_login_asks_a_signed_in_user_again(
    server: Server, ex_app: dict[str, Any], alice: Browser
) -> None:
    response = alice.authorize(**ex_params(ex_app, prompt="login"))
    assert response.status_code == 200
    assert 'name="password"' in response.text
    assert "location" not in response.headers


def test_item03_after_logout_the_user_must_sign_in_again(
    server: Server, ex_app: dict[str, Any]
) -> None:
    b, response = signed_in_browser(server, ex_app)
    try:
        code_from(response)
        asked = b.http.get("/oauth2/v1/userlogout")
        assert asked.status_code == 200
        out = b.http.post("/oauth2/v1/userlogout", data=form_fields(asked.text))
        assert out.status_code == 200 and "You have been signed out" in out.text
        again = b.authorize(**ex_params(ex_app))
        assert again.status_code == 200 and 'name="password"' in again.text
        none = b.authorize(**ex_params(ex_app, prompt="none"))
        assert_error_redirect(server, none, EX_REDIRECT, "login_required")
    finally:
        b.close()


def test_a_logout_link_without_id_token_hint_cannot_sign_the_user_out_unasked(
    server: Server, ex_app: dict[str, Any]
) -> None:
    """RP-Initiated Logout 1.0 §2: without a valid id_token_hint any page could link here, so
    the user is asked, with a CSRF-protected form, before the session ends."""
    b, response = signed_in_browser(server, ex_app)
    try:
        code_from(response)
        query = {
            "client_id": ex_app["client_id"],
            "post_logout_redirect_uri": EX_BYE,
            "state": "s2",
        }
        asked = b.http.get("/oauth2/v1/userlogout", params=query)
        assert asked.status_code == 200
        assert 'method="post"' in asked.text and 'action="/oauth2/v1/userlogout"' in asked.text
        assert "tessera_session" not in asked.headers.get("set-cookie", "")
        fields = form_fields(asked.text)
        assert fields["csrf_token"] and fields["post_logout_redirect_uri"] == EX_BYE
        # Still signed in; a cross-site POST (no token, or a wrong one) does not sign out either.
        code_from(b.authorize(**ex_params(ex_app, prompt="none")))
        unasked = b.http.post("/oauth2/v1/userlogout", data=query)
        assert unasked.status_code == 200 and 'name="csrf_token"' in unasked.text
        forged = b.http.post("/oauth2/v1/userlogout", data={**query, "csrf_token": "0" * 64})
        assert forged.status_code == 403
        code_from(b.authorize(**ex_params(ex_app, prompt="none")))
        # The user confirms: signed out, and sent to the app's registered URI.
        out = b.http.post("/oauth2/v1/userlogout", data=fields)
        assert out.status_code == 303
        assert out.headers["location"] == EX_BYE + "?state=s2"
        none = b.authorize(**ex_params(ex_app, prompt="none"))
        assert_error_redirect(server, none, EX_REDIRECT, "login_required")
    finally:
        b.close()


# --- item 4 ------------------------------------------------------------------------------------


def ex_id_token(server: Server, ex_app: dict[str, Any], b: Browser) -> str:
    code = code_from(b.authorize(**ex_params(ex_app)))
    tokens = token_request(
        server.base_url,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": EX_REDIRECT},
        auth=(ex_app["client_id"], ex_app["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["id_token"])


def test_item04_logout_redirects_to_a_registered_post_logout_uri(
    server: Server, ex_app: dict[str, Any]
) -> None:
    b, response = signed_in_browser(server, ex_app)
    try:
        code_from(response)
        id_token = ex_id_token(server, ex_app, b)
        out = b.http.get(
            "/oauth2/v1/userlogout",
            params={"id_token_hint": id_token, "post_logout_redirect_uri": EX_BYE, "state": "s1"},
        )
        assert out.status_code == 303
        assert out.headers["location"] == EX_BYE + "?state=s1"
        none = b.authorize(**ex_params(ex_app, prompt="none"))  # a valid hint: no question
        assert_error_redirect(server, none, EX_REDIRECT, "login_required")
    finally:
        b.close()


def test_item04_logout_refuses_a_client_id_other_than_the_id_token_hints(
    server: Server, ex_app: dict[str, Any]
) -> None:
    b, response = signed_in_browser(server, ex_app)
    try:
        code_from(response)
        id_token = ex_id_token(server, ex_app, b)
        demo = server.demo["confidential_app"]
        out = b.http.get(
            "/oauth2/v1/userlogout",
            params={
                "id_token_hint": id_token,
                "client_id": demo["client_id"],
                "post_logout_redirect_uri": "http://127.0.0.1:8080/",
            },
        )
        assert_error_page(out)
        code_from(b.authorize(**ex_params(ex_app, prompt="none")))  # still signed in
    finally:
        b.close()


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.test/bye",
        "https://app.example.test/bye/",
        "https://app.example.test/bye?next=https://evil.test",
        "https://app.example.test/bye#x",
        "https://app.example.test@evil.test/bye",
        "https://app.example.test.evil.test/bye",
        "//evil.test/bye",
        "javascript:alert(1)",
        EX_REDIRECT,  # a redirect URI is not a post-logout URI
    ],
)
def test_item04_logout_refuses_an_unregistered_post_logout_redirect_uri(
    server: Server, ex_app: dict[str, Any], browser: Browser, target: str
) -> None:
    response = browser.http.get(
        "/oauth2/v1/userlogout",
        params={"client_id": ex_app["client_id"], "post_logout_redirect_uri": target},
    )
    assert_error_page(response)


def test_item04_logout_refuses_a_post_logout_uri_of_another_app(
    server: Server, ex_app: dict[str, Any]
) -> None:
    demo = server.demo["confidential_app"]
    # No client named at all: nothing to validate against.
    anonymous = httpx.get(
        server.base_url + "/oauth2/v1/userlogout", params={"post_logout_redirect_uri": EX_BYE}
    )
    assert_error_page(anonymous)
    # The example app's URI, claimed for the demo app.
    other = httpx.get(
        server.base_url + "/oauth2/v1/userlogout",
        params={"client_id": demo["client_id"], "post_logout_redirect_uri": EX_BYE},
    )
    assert_error_page(other)
    # An ID token of the demo app does not open the example app's URI either.
    b = Browser(server.base_url)
    try:
        code = code_from(
            b.sign_in_and_authorize(
                *ALICE,
                response_type="code",
                client_id=demo["client_id"],
                redirect_uri=demo["redirect_uri"],
                scope="openid",
            )
        )
        tokens = token_request(
            server.base_url,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": demo["redirect_uri"],
            },
            auth=(demo["client_id"], demo["client_secret"]),
        ).json()
        hinted = b.http.get(
            "/oauth2/v1/userlogout",
            params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": EX_BYE},
        )
        assert_error_page(hinted)
        forged = b.http.get(
            "/oauth2/v1/userlogout",
            params={"id_token_hint": tokens["id_token"] + "x", "post_logout_redirect_uri": EX_BYE},
        )
        assert_error_page(forged)
    finally:
        b.close()


def test_item04_login_sends_the_browser_only_to_our_own_authorize_endpoint(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    page = browser.authorize(**ex_params(ex_app))
    fields = form_fields(page.text)
    extra = {
        "next": "https://evil.test/",
        "return_to": "//evil.test/",
        "redirect_uri": "https://evil.test/cb",
        "continue": "https://evil.test/",
    }
    response = browser.http.post(
        "/oauth2/v1/login", data={**fields, **extra, "username": ALICE[0], "password": ALICE[1]}
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/oauth2/v1/authorize?"), location
    assert not location.startswith("//")
    assert "evil" not in location


def test_item04_login_with_a_tampered_request_redirects_nowhere(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    page = browser.authorize(**ex_params(ex_app))
    fields = form_fields(page.text)
    tampered = fields["authz"].replace("app.example.test", "evil.test")
    assert tampered != fields["authz"]
    response = browser.http.post(
        "/oauth2/v1/login",
        data={**fields, "authz": tampered, "username": ALICE[0], "password": ALICE[1]},
    )
    assert_error_page(response)
    assert "tessera_session" not in response.headers.get("set-cookie", "")


# --- item 5 ------------------------------------------------------------------------------------

REFUSED_REGISTRATIONS = [
    ("redirect", "http://app.example.test/cb"),
    ("redirect", "http://10.0.0.1/cb"),
    ("redirect", "http://127.0.0.1.evil.test/cb"),
    ("redirect", "javascript:alert(1)"),
    ("redirect", "JavaScript:alert(document.cookie)"),
    ("redirect", "data:text/html,<script>alert(1)</script>"),
    ("redirect", "vbscript:msgbox(1)"),
    ("redirect", "https://app.example.test/cb#fragment"),
    ("redirect", "https://*.example.test/cb"),
    ("redirect", "https://app.example.test/*"),
    ("redirect", "*"),
    ("redirect", "https://user@evil.test/cb"),
    ("redirect", "/relative/cb"),
    ("post-logout", "javascript:alert(1)"),
    ("post-logout", "http://app.example.test/bye"),
    ("post-logout", "https://app.example.test/bye#x"),
    ("post-logout", "https://*.example.test/bye"),
]


@pytest.fixture(scope="module")
def registration_attempts(server: Server) -> dict[tuple[str, str], Any]:
    """Try every refused registration through the CLI (in parallel: the CLI starts slowly)."""

    def attempt(index: int, kind: str, uri: str) -> Any:
        name = f"refused-{index}"
        option = "--redirect-uri" if kind == "redirect" else "--post-logout-redirect-uri"
        args = ["admin", "apps", "create", "--name", name, option, uri]
        if kind == "post-logout":
            args += ["--redirect-uri", "https://fine.example.test/cb"]
        return server.cli(*args, check=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            (kind, uri): pool.submit(attempt, i, kind, uri)
            for i, (kind, uri) in enumerate(REFUSED_REGISTRATIONS)
        }
        results = {key: f.result() for key, f in futures.items()}
    listed = server.cli_json("admin", "apps", "list")
    results[("names", "")] = [a["name"] for a in listed]
    return results


@pytest.mark.parametrize(("kind", "uri"), REFUSED_REGISTRATIONS)
def test_item05_registration_refuses_unsafe_redirect_uris(
    registration_attempts: dict[tuple[str, str], Any], kind: str, uri: str
) -> None:
    result = registration_attempts[(kind, uri)]
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    index = REFUSED_REGISTRATIONS.index((kind, uri))
    assert f"refused-{index}" not in registration_attempts[("names", "")]


def test_item05_registration_accepts_https_loopback_and_private_use_uris(server: Server) -> None:
    created = server.cli_json(
        "admin", "apps", "create", "--name", "Accepted URIs", "--public",
        "--redirect-uri", "https://ok.example.test/cb",
        "--redirect-uri", "http://127.0.0.1:7000/cb",
        "--redirect-uri", "http://[::1]/cb",
        "--redirect-uri", "com.example.app:/oauth2redirect",
    )  # fmt: skip
    assert len(created["redirect_uris"]) == 4


# --- item 6 ------------------------------------------------------------------------------------


def test_item06_login_and_consent_posts_answer_303(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    # A fresh user, so the consent page is shown.
    password = "Queen-Of-Hearts-" + secrets.token_hex(4)
    username = "q" + secrets.token_hex(3)
    server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    page = browser.authorize(**ex_params(ex_app))
    login = browser.login(page, username, password)
    assert login.status_code == 303, login.status_code
    consent_page = browser.follow(login)
    assert 'value="allow"' in consent_page.text
    allowed = browser.consent(consent_page)
    assert allowed.status_code == 303
    assert allowed.headers["location"].startswith(EX_REDIRECT + "?code=")
    # POST to the authorization endpoint answers 303 as well.
    posted = browser.http.post("/oauth2/v1/authorize", data=ex_params(ex_app))
    assert posted.status_code == 303
    code_from(posted)


def test_item06_consent_deny_answers_303_with_access_denied(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    password = "Mad-Hatter-" + secrets.token_hex(4)
    username = "h" + secrets.token_hex(3)
    server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    page = browser.authorize(**ex_params(ex_app))
    consent_page = browser.follow(browser.login(page, username, password))
    denied = browser.consent(consent_page, decision="deny")
    assert denied.status_code == 303
    assert_error_redirect(server, denied, EX_REDIRECT, "access_denied")


# --- item 7 ------------------------------------------------------------------------------------


def test_item07_authorization_endpoint_sends_no_cors_header(
    server: Server, ex_app: dict[str, Any], alice: Browser
) -> None:
    origin = {"Origin": "https://evil.test"}
    fresh = httpx.Client(base_url=server.base_url, follow_redirects=False)
    try:
        responses = [
            fresh.get("/oauth2/v1/authorize", params=ex_params(ex_app), headers=origin),
            fresh.get("/oauth2/v1/authorize", params={"client_id": "nope"}, headers=origin),
            fresh.get(
                "/oauth2/v1/authorize", params=ex_params(ex_app, scope="bad"), headers=origin
            ),
            fresh.post("/oauth2/v1/authorize", data=ex_params(ex_app), headers=origin),
            fresh.options(
                "/oauth2/v1/authorize",
                headers={**origin, "Access-Control-Request-Method": "GET"},
            ),
            alice.http.get("/oauth2/v1/authorize", params=ex_params(ex_app), headers=origin),
        ]
    finally:
        fresh.close()
    for response in responses:
        assert response.status_code != 500
        assert "access-control-allow-origin" not in response.headers, response.request.url
        assert "access-control-allow-credentials" not in response.headers


def test_item07_token_jwks_and_metadata_allow_cors(server: Server) -> None:
    origin = {"Origin": "https://spa.example.test"}
    demo = server.demo["confidential_app"]
    for path in (
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/oauth2/v1/keys",
    ):
        response = httpx.get(server.base_url + path, headers=origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
    token = httpx.post(
        server.base_url + "/oauth2/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(demo["client_id"], demo["client_secret"]),
        headers=origin,
    )
    assert token.status_code == 200
    assert token.headers["access-control-allow-origin"] == "*"
    # CORS with "*" never comes with credentials (cookies).
    assert "access-control-allow-credentials" not in token.headers


# --- item 8 ------------------------------------------------------------------------------------

_URL_ATTR = re.compile(
    r"""\b(?:src|href|action|srcset|poster|data|formaction)\s*=\s*["']?([^"'\s>]+)""", re.I
)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""", re.I)


def assert_nothing_third_party(server: Server, html: str) -> None:
    for url in _URL_ATTR.findall(html):
        if url.startswith("//") or re.match(r"^[a-z][a-z0-9+.\-]*:", url, re.I):
            assert url.startswith(server.base_url + "/"), f"third-party resource: {url}"
        else:
            assert url.startswith(("/", "#")), url
    for stylesheet in re.findall(r'<link[^>]+href="(/[^"]+)"', html):
        css = httpx.get(server.base_url + stylesheet).text
        for match in _CSS_URL.findall(css):
            url = match[0] or match[1]
            assert not url.startswith("//") and not re.match(r"^https?:", url, re.I), url
    assert "<script" not in html.lower() or 'src="http' not in html.lower()


@pytest.mark.parametrize(
    "page", ["login", "login-failed", "consent", "error", "csrf-refused", "logged-out"]
)
def test_item08_pages_forbid_framing_and_referrers_and_load_nothing_third_party(
    server: Server, ex_app: dict[str, Any], browser: Browser, page: str
) -> None:
    login_page = browser.authorize(**ex_params(ex_app))
    if page == "login":
        response = login_page
    elif page == "login-failed":
        response = browser.login(login_page, "alice", "wrong-password-x")
        assert response.status_code == 401
    elif page == "consent":
        password = "Cheshire-Cat-" + secrets.token_hex(4)
        username = "c" + secrets.token_hex(3)
        server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
        response = browser.follow(browser.login(login_page, username, password))
        assert 'value="allow"' in response.text
    elif page == "error":
        response = browser.authorize(client_id="unknown-app")
        assert response.status_code == 400
    elif page == "csrf-refused":
        fields = form_fields(login_page.text)
        response = browser.http.post(
            "/oauth2/v1/login",
            data={"authz": fields["authz"], "username": "alice", "password": "x"},
        )
        assert response.status_code == 403
    else:
        response = browser.http.get("/oauth2/v1/userlogout")
        assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_page_headers(response)
    assert_nothing_third_party(server, response.text)


# --- item 9 ------------------------------------------------------------------------------------


def test_item09_login_post_without_csrf_token_is_refused(
    server: Server, ex_app: dict[str, Any], browser: Browser
) -> None:
    fields = form_fields(browser.authorize(**ex_params(ex_app)).text)
    for data in (
        {"authz": fields["authz"]},
        {"authz": fields["authz"], "csrf_token": ""},
        {"authz": fields["authz"], "csrf_token": "0" * 64},
    ):
        response = browser.http.post(
            "/oauth2/v1/login", data={**data, "username": ALICE[0], "password": ALICE[1]}
        )
        assert response.status_code == 403
        assert "location" not in response.headers
        assert "tessera_session" not in response.headers.get("set-cookie", "")


def test_item09_login_post_with_another_browsers_csrf_token_is_refused(
    server: Server, ex_app: dict[str, Any]
) -> None:
    victim, attacker = Browser(server.base_url), Browser(server.base_url)
    try:
        victim_fields = form_fields(victim.authorize(**ex_params(ex_app)).text)
        attacker_fields = form_fields(attacker.authorize(**ex_params(ex_app)).text)
        assert victim_fields["csrf_token"] != attacker_fields["csrf_token"]
        # Login CSRF: the attacker's form (with the attacker's token) posted from the victim.
        response = victim.http.post(
            "/oauth2/v1/login",
            data={**attacker_fields, "username": ALICE[0], "password": ALICE[1]},
        )
        assert response.status_code == 403
        assert "location" not in response.headers
        # The token without the browser cookie it is bound to.
        cookieless = httpx.post(
            server.base_url + "/oauth2/v1/login",
            data={**victim_fields, "username": ALICE[0], "password": ALICE[1]},
        )
        assert cookieless.status_code == 403
        # The victim's own token works.
        ok = victim.http.post(
            "/oauth2/v1/login", data={**victim_fields, "username": ALICE[0], "password": ALICE[1]}
        )
        assert ok.status_code == 303
    finally:
        victim.close()
        attacker.close()


def test_item09_consent_post_without_or_with_another_sessions_csrf_token_is_refused(
    server: Server, ex_app: dict[str, Any]
) -> None:
    password = "White-Rabbit-" + secrets.token_hex(4)
    username = "r" + secrets.token_hex(3)
    server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    first, second = Browser(server.base_url), Browser(server.base_url)
    try:
        pages = []
        for b in (first, second):
            page = b.follow(b.login(b.authorize(**ex_params(ex_app)), username, password))
            assert 'value="allow"' in page.text
            pages.append(form_fields(page.text))
        mine, theirs = pages
        assert mine["csrf_token"] != theirs["csrf_token"]
        for token in (None, "", theirs["csrf_token"], "0" * 64):
            data = {"authz": mine["authz"], "decision": "allow"}
            if token is not None:
                data["csrf_token"] = token
            response = first.http.post("/oauth2/v1/consent", data=data)
            assert response.status_code == 403, token
            assert "location" not in response.headers
        # Nothing was consented: the app still asks.
        assert 'value="allow"' in first.authorize(**ex_params(ex_app)).text
        ok = first.http.post("/oauth2/v1/consent", data={**mine, "decision": "allow"})
        assert ok.status_code == 303
        code_from(ok)
    finally:
        first.close()
        second.close()


# --- item 10 -----------------------------------------------------------------------------------


def test_item10_authorization_responses_carry_iss(
    server: Server, ex_app: dict[str, Any], alice: Browser, browser: Browser
) -> None:
    success = alice.authorize(**ex_params(ex_app))
    code_from(success)
    assert query_of(success.headers["location"])["iss"] == server.issuer
    assert query_of(success.headers["location"])["state"] == STATE
    error = alice.authorize(**ex_params(ex_app, scope="nope"))
    assert_error_redirect(server, error, EX_REDIRECT, "invalid_scope")
    login_required = browser.authorize(**ex_params(ex_app, prompt="none"))
    assert_error_redirect(server, login_required, EX_REDIRECT, "login_required")
    # The issuer is exactly the configured one (RFC 9207 §2.4: compared by simple string match).
    assert (
        urlsplit(query_of(success.headers["location"])["iss"]).netloc == f"127.0.0.1:{server.port}"
    )


def test_item10_metadata_says_the_authorization_response_carries_iss(server: Server) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = httpx.get(server.base_url + path).json()
        assert doc["authorization_response_iss_parameter_supported"] is True
        assert doc["issuer"] == server.issuer
