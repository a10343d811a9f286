"""docs/security.md rule 28: malformed input gets the protocol's error and a 4xx, never a 500.

Every endpoint that exists (authorize, login, consent, token, revoke, introspect, userinfo,
userlogout, JWKS, metadata) is sent a wrong content type, bad JSON, repeated parameters, huge
values, invalid UTF-8 (percent-encoded and as raw bytes) and bad Basic credentials.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.flow import (
    Browser,
    Pkce,
    code_from,
    code_params,
    demo_app,
    demo_auth,
    exchange_code,
    form_fields,
    signed_in_browser,
)
from tests.support.server import Server

ALICE = ("alice", "Wonderland-Demo-2026")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PROTOCOL = ("token", "revoke", "introspect")
BROWSER_POSTS = ("authorize", "login", "consent", "userlogout")
PROTOCOL_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "invalid_scope",
    "unsupported_grant_type",
    "unsupported_token_type",
    "invalid_token",
    "invalid_target",
}
_LEAKS = ("Traceback", 'File "', "site-packages", "sqlalchemy", "starlette.", "tessera/")


# --- fixtures and helpers ----------------------------------------------------------------------


def conf_params(server: Server, **extra: str) -> dict[str, str]:
    return {**code_params(demo_app(server), scope="openid profile", state="st-bad"), **extra}


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Browser]:
    with signed_in_browser(server.base_url, *ALICE, **conf_params(server)) as b:
        yield b


@pytest.fixture(scope="module")
def tokens(server: Server, alice: Browser) -> dict[str, Any]:
    code = code_from(alice.authorize(**conf_params(server)))
    return exchange_code(server.base_url, demo_app(server), code)


@pytest.fixture(scope="module")
def pages(server: Server) -> Iterator[dict[str, Any]]:
    """A browser of a new user standing on the login page and one on the consent page."""
    username = "bi" + secrets.token_hex(3)
    password = "Tweedle-Dum-" + secrets.token_hex(6)
    server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    login_browser, consent_browser = Browser(server.base_url), Browser(server.base_url)
    anonymous = Browser(server.base_url)
    login_page = login_browser.authorize(**conf_params(server))
    consent_page = consent_browser.follow(
        consent_browser.login(consent_browser.authorize(**conf_params(server)), username, password)
    )
    assert 'value="allow"' in consent_page.text
    try:
        yield {
            "login": (login_browser, form_fields(login_page.text), username, password),
            "consent": (consent_browser, form_fields(consent_page.text)),
            "anonymous": anonymous,
        }
    finally:
        login_browser.close()
        consent_browser.close()
        anonymous.close()


def path_of(endpoint: str) -> str:
    return f"/oauth2/v1/{endpoint}"


def valid_form(
    server: Server, endpoint: str, pages: dict[str, Any], tokens: dict[str, Any]
) -> dict[str, str]:
    """A well-formed body for each POST endpoint, to be spoiled by each test."""
    if endpoint == "token":
        return {"grant_type": "client_credentials"}
    if endpoint in ("revoke", "introspect"):
        return {"token": tokens["access_token"]}
    if endpoint == "authorize":
        return conf_params(server)
    if endpoint == "login":
        _, fields, username, password = pages["login"]
        return {**fields, "username": username, "password": password}
    if endpoint == "consent":
        return {**pages["consent"][1], "decision": "allow"}
    return {
        "client_id": demo_app(server)["client_id"],
        "post_logout_redirect_uri": "http://127.0.0.1:8080/",
    }


def client_for(endpoint: str, pages: dict[str, Any], alice: Browser) -> httpx.Client:
    """The browser whose cookies make the well-formed request valid."""
    if endpoint == "login":
        return pages["login"][0].http  # type: ignore[no-any-return]
    if endpoint == "consent":
        return pages["consent"][0].http  # type: ignore[no-any-return]
    if endpoint == "userlogout":
        return pages["anonymous"].http  # type: ignore[no-any-return]  # never sign alice out
    return alice.http


def auth_for(server: Server, endpoint: str) -> Any:
    return demo_auth(server) if endpoint in PROTOCOL else None


class WellFormed(NamedTuple):
    """A well-formed request to one POST endpoint: its body, the browser whose cookies make it
    valid, and the client's credentials where the endpoint wants them."""

    form: dict[str, str]
    client: httpx.Client
    auth: Any


WellFormedFor = Callable[[str], WellFormed]


@pytest.fixture
def well_formed(
    server: Server, alice: Browser, pages: dict[str, Any], tokens: dict[str, Any]
) -> WellFormedFor:
    def for_endpoint(endpoint: str) -> WellFormed:
        return WellFormed(
            valid_form(server, endpoint, pages, tokens),
            client_for(endpoint, pages, alice),
            auth_for(server, endpoint),
        )

    return for_endpoint


def assert_no_leak(text: str) -> None:
    for marker in _LEAKS:
        assert marker not in text, f"{marker!r} in the response: {text[:500]}"


def assert_protocol_error(response: httpx.Response, *errors: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert_no_leak(response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = dict(response.json())
    assert body["error"] in (errors or PROTOCOL_ERRORS), body
    assert "access_token" not in body and body.get("active") is not True
    return body


def assert_error_page(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in (statuses or (400,)), (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert_no_leak(response.text)


def assert_rejected(endpoint: str, response: httpx.Response, *page_statuses: int) -> None:
    """A protocol endpoint answers invalid_request, a browser endpoint an error page."""
    if endpoint in PROTOCOL:
        assert_protocol_error(response, "invalid_request")
    else:
        assert_error_page(response, *page_statuses)


def raw_request(server: Server, request: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are (no client library would send invalid UTF-8 in a request line)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body


def post_raw(
    client: httpx.Client,
    endpoint: str,
    body: bytes | str,
    content_type: str | None,
    auth: Any = None,
) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.post(path_of(endpoint), content=body, headers=headers, auth=auth)


# --- wrong content type and bad JSON -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", [*PROTOCOL, *BROWSER_POSTS])
@pytest.mark.parametrize(
    "body_type", ["json", "bad-json", "text-plain", "multipart", "no-content-type", "xml"]
)
def test_item28_wrong_content_type_or_bad_json_gets_a_4xx_protocol_error(
    well_formed: WellFormedFor, endpoint: str, body_type: str
) -> None:
    form, client, auth = well_formed(endpoint)
    if body_type == "json":
        response = post_raw(client, endpoint, json.dumps(form), "application/json", auth)
    elif body_type == "bad-json":
        response = post_raw(
            client, endpoint, '{"grant_type": "client_cred', "application/json", auth
        )
    elif body_type == "text-plain":
        response = post_raw(client, endpoint, urlencode(form), "text/plain", auth)
    elif body_type == "multipart":
        response = client.post(
            path_of(endpoint), files={k: (None, v) for k, v in form.items()}, auth=auth
        )
    elif body_type == "no-content-type":
        response = post_raw(client, endpoint, urlencode(form), None, auth)
    else:
        response = post_raw(
            client, endpoint, "<grant_type>client_credentials</grant_type>", "application/xml", auth
        )
    assert_rejected(endpoint, response)


def test_item28_userinfo_ignores_a_body_but_never_fails_on_it(
    server: Server, tokens: dict[str, Any]
) -> None:
    headers = {"Authorization": "Bearer " + tokens["access_token"]}
    for content_type, body in (
        ("application/json", b'{"bad json'),
        ("application/x-www-form-urlencoded", b"a=\xff\xfe"),
        ("text/plain", b"\x00\x01\x02"),
    ):
        response = httpx.post(
            server.base_url + "/oauth2/v1/userinfo",
            content=body,
            headers={**headers, "Content-Type": content_type},
        )
        assert response.status_code in (200, 400), response.text
        assert_no_leak(response.text)


# --- repeated parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("token", "grant_type"),
        ("token", "scope"),
        ("token", "client_id"),
        ("revoke", "token"),
        ("revoke", "token_type_hint"),
        ("introspect", "token"),
        ("authorize", "client_id"),
        ("authorize", "redirect_uri"),
        ("login", "username"),
        ("login", "password"),
        ("login", "csrf_token"),
        ("consent", "decision"),
        ("consent", "csrf_token"),
        ("userlogout", "post_logout_redirect_uri"),
        ("userlogout", "client_id"),
    ],
)
def test_item28_repeated_parameters_are_refused(
    server: Server, tokens: dict[str, Any], well_formed: WellFormedFor, endpoint: str, name: str
) -> None:
    form, client, auth = well_formed(endpoint)
    if endpoint == "token" and name == "client_id":
        form = {
            "grant_type": "client_credentials",
            "client_id": demo_app(server)["client_id"],
            "client_secret": demo_app(server)["client_secret"],
        }
    form.setdefault(name, "access_token" if name == "token_type_hint" else "openid")
    second = {
        "grant_type": "password",
        "scope": "openid",
        "client_id": server.demo["public_app"]["client_id"],
        "token": tokens["refresh_token"],
        "token_type_hint": "refresh_token",
        "redirect_uri": "https://evil.test/cb",
        "username": "admin",
        "password": "x",
        "csrf_token": "0" * 64,
        "decision": "deny",
        "post_logout_redirect_uri": "https://evil.test/",
    }[name]
    pairs = [*form.items(), (name, second)]
    if endpoint == "token" and name == "client_id":
        auth = None
    response = client.post(path_of(endpoint), content=urlencode(pairs), headers=FORM, auth=auth)
    assert_rejected(endpoint, response, 400, 403)


def test_item28_repeated_parameters_at_authorize_redirect_invalid_request(
    server: Server, alice: Browser
) -> None:
    # Past client and redirect URI validation the error goes to the app, with state and iss.
    pairs = [*conf_params(server).items(), ("scope", "openid email")]
    response = alice.http.get("/oauth2/v1/authorize?" + urlencode(pairs))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(demo_app(server)["redirect_uri"] + "?")
    assert "error=invalid_request" in location and "code=" not in location
    assert "iss=" in location


def test_item28_repeated_parameters_at_consent_store_nothing(
    server: Server, pages: dict[str, Any]
) -> None:
    browser, fields = pages["consent"]
    pairs = [*fields.items(), ("decision", "allow"), ("decision", "allow")]
    response = browser.http.post("/oauth2/v1/consent", content=urlencode(pairs), headers=FORM)
    assert response.status_code == 403
    assert 'value="allow"' in browser.authorize(**conf_params(server)).text  # still asks


@pytest.mark.parametrize("endpoint", PROTOCOL)
@pytest.mark.parametrize("order", ["valid-first", "valid-last"])
def test_item28_repeated_authorization_header_is_refused(
    server: Server, tokens: dict[str, Any], endpoint: str, order: str
) -> None:
    client_id, secret = demo_auth(server)
    good = b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
    bad = b"Basic " + base64.b64encode(f"{client_id}:wrong".encode())
    headers = [(b"Authorization", good), (b"Authorization", bad)]
    if order == "valid-last":
        headers.reverse()
    # A throwaway token: if the server took the valid header, revocation would really happen.
    throwaway = httpx.post(
        server.base_url + "/oauth2/v1/token",
        data={"grant_type": "client_credentials"},
        auth=demo_auth(server),
    ).json()["access_token"]
    body = "grant_type=client_credentials" if endpoint == "token" else "token=" + throwaway
    response = httpx.post(
        server.base_url + path_of(endpoint),
        content=body.encode(),
        headers=[*headers, (b"Content-Type", FORM["Content-Type"].encode())],
    )
    assert_protocol_error(response, "invalid_request", "invalid_client")


# --- huge values -------------------------------------------------------------------------------

HUGE = 100 * 1024


@pytest.mark.parametrize("endpoint", [*PROTOCOL, *BROWSER_POSTS])
@pytest.mark.parametrize("how", ["one-huge-value", "many-fields", "chunked-without-length"])
def test_item28_huge_bodies_get_a_4xx(well_formed: WellFormedFor, endpoint: str, how: str) -> None:
    form, client, auth = well_formed(endpoint)
    if how == "one-huge-value":
        response = client.post(
            path_of(endpoint),
            content=urlencode({**form, "state": "s" * HUGE}),
            headers=FORM,
            auth=auth,
        )
    elif how == "many-fields":
        extra = [(f"x{i}", "1") for i in range(2000)]
        response = client.post(
            path_of(endpoint), content=urlencode([*form.items(), *extra]), headers=FORM, auth=auth
        )
    else:
        body = urlencode({**form, "state": "s" * HUGE}).encode()

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 8192):
                yield body[i : i + 8192]

        response = client.post(path_of(endpoint), content=chunks(), headers=FORM, auth=auth)
    # A body over the limit is 413 (RFC 9110 §15.5.14), refused before it is read (issue 12).
    assert_rejected(endpoint, response, 400, 413)
    if how != "many-fields":
        assert response.status_code == 413


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("token", "code"),
        ("token", "refresh_token"),
        ("token", "code_verifier"),
        ("token", "scope"),
        ("token", "client_id"),
        ("revoke", "token"),
        ("introspect", "token"),
    ],
)
def test_item28_huge_parameter_values_within_the_body_limit_get_a_4xx(
    server: Server, tokens: dict[str, Any], endpoint: str, field: str
) -> None:
    value = "A" * 40000
    data = {
        "token": {
            "grant_type": "authorization_code",
            "code": "x",
            "redirect_uri": demo_app(server)["redirect_uri"],
        },
        "revoke": {},
        "introspect": {},
    }[endpoint]
    if field == "refresh_token":
        data = {"grant_type": "refresh_token"}
    if field == "scope":
        data = {"grant_type": "client_credentials"}
    auth: Any = demo_auth(server)
    if field == "client_id":
        auth = None
        data = {"grant_type": "client_credentials", "client_secret": "x"}
    response = httpx.post(
        server.base_url + path_of(endpoint), data={**data, field: value}, auth=auth
    )
    if endpoint == "introspect":
        # RFC 7662 §2.2: a token it cannot make sense of is simply inactive.
        assert response.status_code == 200 and response.json() == {"active": False}
    elif endpoint == "revoke":
        assert response.status_code == 200  # RFC 7009 §2.2: invalid tokens answer 200
    else:
        assert_protocol_error(response)
    assert value not in response.text


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("authorize", "client_id"),
        ("authorize", "redirect_uri"),
        ("authorize", "state"),
        ("authorize", "scope"),
        ("authorize", "nonce"),
        ("authorize", "login_hint"),
        ("authorize", "code_challenge"),
        ("userlogout", "id_token_hint"),
        ("userlogout", "post_logout_redirect_uri"),
        ("userlogout", "client_id"),
    ],
)
def test_item28_huge_query_values_get_a_4xx_or_an_error_redirect(
    server: Server, alice: Browser, endpoint: str, name: str
) -> None:
    value = "A" * 10000
    params = (
        conf_params(server)
        if endpoint == "authorize"
        else {"client_id": demo_app(server)["client_id"]}
    )
    params[name] = value
    if endpoint == "authorize" and name == "code_challenge":
        params["code_challenge_method"] = "S256"
    if endpoint == "userlogout" and name != "post_logout_redirect_uri":
        params["post_logout_redirect_uri"] = "http://127.0.0.1:8080/"
    response = alice.http.get(path_of(endpoint) + "?" + urlencode(params))
    assert response.status_code != 500
    assert_no_leak(response.text)
    if response.status_code == 302:
        # Only past client and redirect validation, to the registered URI, as an error.
        location = response.headers["location"]
        assert location.startswith(demo_app(server)["redirect_uri"] + "?")
        assert "error=invalid_request" in location and "code=" not in location
    else:
        assert_error_page(response, 400)


def test_item28_huge_authorization_headers_get_a_4xx(server: Server) -> None:
    bearer = httpx.get(
        server.base_url + "/oauth2/v1/userinfo", headers={"Authorization": "Bearer " + "A" * 20000}
    )
    assert 400 <= bearer.status_code < 500
    assert_no_leak(bearer.text)
    basic = httpx.post(
        server.base_url + "/oauth2/v1/token",
        data={"grant_type": "client_credentials"},
        auth=("A" * 6000, "B" * 6000),
    )
    assert_protocol_error(basic, "invalid_client")
    assert basic.status_code == 401


# --- invalid UTF-8 -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [*PROTOCOL, *BROWSER_POSTS])
@pytest.mark.parametrize(
    "encoding", ["percent-encoded", "raw-bytes", "latin-1-charset", "overlong", "lone-surrogate"]
)
def test_item28_invalid_utf8_in_a_body_gets_a_4xx(
    well_formed: WellFormedFor, endpoint: str, encoding: str
) -> None:
    form, client, auth = well_formed(endpoint)
    body = urlencode(form).encode()
    bad = {
        "percent-encoded": b"&state=%FF%FE%FD",
        "raw-bytes": b"&state=\xff\xfe\xfd",
        "latin-1-charset": b"&state=caf\xe9",
        "overlong": b"&state=%C0%AF",
        "lone-surrogate": b"&state=%ED%A0%80",
    }[encoding]
    content_type = FORM["Content-Type"] + (
        "; charset=iso-8859-1" if encoding == "latin-1-charset" else ""
    )
    response = client.post(
        path_of(endpoint), content=body + bad, headers={"Content-Type": content_type}, auth=auth
    )
    assert_rejected(endpoint, response)


@pytest.mark.parametrize("endpoint", ["authorize", "userlogout"])
@pytest.mark.parametrize("where", ["client_id", "state", "redirect_uri"])
def test_item28_invalid_utf8_in_a_query_gets_an_error_page(
    server: Server, alice: Browser, endpoint: str, where: str
) -> None:
    params = (
        conf_params(server)
        if endpoint == "authorize"
        else {
            "client_id": demo_app(server)["client_id"],
            "post_logout_redirect_uri": "http://127.0.0.1:8080/",
        }
    )
    query = urlencode(params) + f"&{where}=%FF%FE"
    if where in params:
        query = urlencode({k: v for k, v in params.items() if k != where}) + f"&{where}=%FF%FE"
    response = alice.http.get(path_of(endpoint) + "?" + query)
    assert_error_page(response)
    # The same bytes raw in the request line.
    status, head, raw_body = raw_request(
        server,
        b"GET "
        + path_of(endpoint).encode()
        + b"?"
        + query.replace("%FF%FE", "\xff\xfe").encode("latin-1")
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert 400 <= status < 500, (status, head)
    assert "location:" not in head.lower()
    assert_no_leak(raw_body.decode("latin-1"))


@pytest.mark.parametrize("endpoint", ["userinfo", *PROTOCOL])
@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe", b"\xc3\xa9t\xc3\xa9", b"\xe9t\xe9", base64.b64encode(b"\xff\xfe:\xfd")],
    ids=["invalid-utf8", "utf8-non-ascii", "latin-1", "base64-of-invalid-utf8"],
)
def test_item28_non_ascii_bytes_in_the_authorization_header_get_a_4xx(
    server: Server, endpoint: str, value: bytes
) -> None:
    scheme = b"Bearer " if endpoint == "userinfo" else b"Basic "
    body = b"grant_type=client_credentials&token=x"
    status, _, raw_body = raw_request(
        server,
        b"POST "
        + path_of(endpoint).encode()
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: "
        + scheme
        + value
        + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )
    assert 400 <= status < 500, (status, raw_body[:200])
    assert_no_leak(raw_body.decode("latin-1"))
    error = json.loads(raw_body)["error"]
    if value.isascii():  # a well-formed bearer token that is not ours
        assert error in ("invalid_request", "invalid_client", "invalid_token"), error
    else:
        assert error in ("invalid_request", "invalid_client"), error


# --- bad base64 in Basic -----------------------------------------------------------------------

BAD_BASIC = {
    "not-base64": "Basic !!!not-base64!!!",
    "bad-padding": "Basic dXNlcjpwYXNz=",
    "truncated": "Basic dXNlcjpwYX",
    "no-colon": "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "invalid-utf8": "Basic " + base64.b64encode(b"\xff\xfe:\xfd\xfc").decode(),
    "empty": "Basic",
    "empty-id": "Basic " + base64.b64encode(b":secret").decode(),
    "spaces-inside": "Basic dXNl cjpw YXNz",
    "base64url-alphabet": "Basic " + base64.urlsafe_b64encode(b"\xfb\xff:\xfe").decode(),
    "bad-percent-encoding": "Basic " + base64.b64encode(b"%ZZ%:%FF").decode(),
    "nul-bytes": "Basic " + base64.b64encode(b"client\x00id:sec\x00ret").decode(),
    "other-scheme": "Digest username=x",
}


@pytest.mark.parametrize("endpoint", PROTOCOL)
@pytest.mark.parametrize("case", list(BAD_BASIC))
def test_item28_bad_basic_credentials_get_401_invalid_client(
    server: Server, tokens: dict[str, Any], endpoint: str, case: str
) -> None:
    data = (
        {"grant_type": "client_credentials"}
        if endpoint == "token"
        else {"token": tokens["refresh_token"]}
    )
    response = httpx.post(
        server.base_url + path_of(endpoint), data=data, headers={"Authorization": BAD_BASIC[case]}
    )
    assert_protocol_error(response, "invalid_client", "invalid_request")
    if response.json()["error"] == "invalid_client":
        assert response.status_code == 401
        assert "www-authenticate" in response.headers
    # Nothing was revoked by a request that failed to authenticate.
    assert (
        httpx.post(
            server.base_url + "/oauth2/v1/introspect",
            data={"token": tokens["refresh_token"]},
            auth=demo_auth(server),
        ).json()["active"]
        is True
    )


@pytest.mark.parametrize("max_age", ["\u00b2", "1\u00b2", "\u0663", "-1", "1e3", "9" * 12])
def test_item28_odd_max_age_at_authorize_redirects_invalid_request(
    server: Server, alice: Browser, max_age: str
) -> None:
    # '²' is a digit to str.isdigit but not to int: it once made the authorization endpoint fail.
    response = alice.authorize(**conf_params(server, max_age=max_age))
    assert response.status_code == 302, response.status_code
    location = response.headers["location"]
    assert location.startswith(demo_app(server)["redirect_uri"] + "?")
    assert "error=invalid_request" in location and "code=" not in location


# --- odd parameter values and methods ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "client_credentials\x00"},
        {"grant_type": "authorization_code", "code": "\x00"},
        {"grant_type": "authorization_code", "code": "x", "redirect_uri": "\x00"},
        {"grant_type": "refresh_token", "refresh_token": "../../etc/passwd"},
        {"grant_type": "refresh_token", "refresh_token": "' OR 1=1 --"},
        {"grant_type": "client_credentials", "scope": "\u0000\u202e"},
        {"grant_type": "client_credentials", "resource": "javascript:alert(1)"},
        {"grant_type": "client_credentials", "resource": "https://unknown.example.test"},
        {"grant_type": "authorization_code", "code": "x", "code_verifier": "\u00e9" * 50},
        {"grant_type": ""},
        {},
    ],
    ids=[
        "nul-in-grant-type",
        "nul-code",
        "nul-redirect-uri",
        "path-refresh-token",
        "sql-refresh-token",
        "control-chars-in-scope",
        "javascript-resource",
        "unknown-resource",
        "non-ascii-verifier",
        "empty-grant-type",
        "no-parameters",
    ],
)
def test_item28_odd_values_at_the_token_endpoint_get_a_4xx(
    server: Server, data: dict[str, str]
) -> None:
    response = httpx.post(server.base_url + "/oauth2/v1/token", data=data, auth=demo_auth(server))
    assert_protocol_error(response)


@pytest.mark.parametrize(
    "path",
    [
        "/oauth2/v1/authorize",
        "/oauth2/v1/login",
        "/oauth2/v1/consent",
        "/oauth2/v1/token",
        "/oauth2/v1/revoke",
        "/oauth2/v1/introspect",
        "/oauth2/v1/userinfo",
        "/oauth2/v1/userlogout",
        "/oauth2/v1/keys",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ],
)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_item28_unsupported_methods_get_a_4xx(server: Server, path: str, method: str) -> None:
    response = httpx.request(method, server.base_url + path, content=b"x=1")
    assert 400 <= response.status_code < 500, response.status_code
    assert_no_leak(response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/oauth2/v1/keys",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ],
)
def test_item28_discovery_and_jwks_ignore_junk_query_parameters(server: Server, path: str) -> None:
    response = httpx.get(server.base_url + path + "?x=%FF%FE&x=1&" + "y=" + "A" * 8000)
    assert response.status_code == 200
    assert response.json()
    status, head, _ = raw_request(
        server,
        b"GET "
        + path.encode()
        + b"?x=\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert status == 200 or 400 <= status < 500, head


def test_item28_login_with_odd_values_does_not_fail(server: Server, pages: dict[str, Any]) -> None:
    browser, fields, _, _ = pages["login"]
    for username, password in (
        ("\x00", "\x00"),
        ("a" * 5000, "b" * 5000),
        ("alice\u202e", "x"),
        ("' OR 1=1 --", "x"),
        ("", ""),
    ):
        response = browser.http.post(
            "/oauth2/v1/login", data={**fields, "username": username, "password": password}
        )
        assert response.status_code in (400, 401, 403), response.status_code
        assert "location" not in response.headers
        assert_no_leak(response.text)


def test_item28_no_malformed_request_caused_a_server_error(server: Server, alice: Browser) -> None:
    """Run last: the server still works, and nothing above caused an unhandled error."""
    pkce = Pkce()
    public = server.demo["public_app"]
    response = alice.authorize(
        response_type="code", client_id=public["client_id"], redirect_uri=public["redirect_uri"],
        scope="openid", code_challenge=pkce.challenge, code_challenge_method="S256", state="s",
    )  # fmt: skip
    if response.status_code == 200:
        response = alice.consent(response)
    token = httpx.post(
        server.base_url + "/oauth2/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": code_from(response),
            "client_id": public["client_id"],
            "redirect_uri": public["redirect_uri"],
            "code_verifier": pkce.verifier,
        },
    )
    assert token.status_code == 200, token.text
    logs = server.logs()
    assert "unhandled_error" not in logs
    assert "Traceback" not in logs
    assert '"status": 500' not in logs
