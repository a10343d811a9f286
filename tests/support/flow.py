"""Play the browser and the client of the authorization code flow over real HTTP.

`Browser` is an httpx client with a cookie jar that never follows redirects, so each test sees
every hop; it reads the hidden form fields of our login and consent pages like a browser would.
Its base URL is an issuer: the base, a domain's `<base>/domains/<name>`, or a domain's own
`https://<host>` reached through `ConnectTo` (a TLS-terminating proxy in front of the server).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from threading import Barrier
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.server import Server

__all__ = [
    "Browser",
    "ConnectTo",
    "Pkce",
    "basic_auth",
    "code_from",
    "code_grant",
    "code_params",
    "demo_app",
    "demo_auth",
    "exchange_code",
    "form_fields",
    "query_of",
    "race",
    "signed_in_browser",
    "token_request",
    "user_code",
    "user_tokens",
]

_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the first form on a page."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = {k.lower(): unescape(v) for k, v in _ATTR.findall(tag)}
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def code_from(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), response.text[:500]
    query = query_of(response.headers["location"])
    assert "code" in query, query
    return query["code"]


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ConnectTo(httpx.BaseTransport):
    """Send every request to `origin` (the test server on loopback) whatever its URL, with the
    URL's host in the Host header, as a TLS-terminating proxy in front of a domain's own host
    name would: the cookie jar sees `https://<host>`, so Secure cookies go back as to the real
    host."""

    def __init__(self, origin: str) -> None:
        self._origin = httpx.URL(origin)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A copy: the client reads cookies against the original request's URL.
        target = request.url.copy_with(
            scheme=self._origin.scheme, host=self._origin.host, port=self._origin.port
        )
        forwarded = httpx.Request(
            request.method,
            target,
            headers=request.headers,  # with Host: the URL's host
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(forwarded)

    def close(self) -> None:
        self._inner.close()


class Browser:
    def __init__(self, base_url: str, *, connect_to: str | None = None) -> None:
        """`base_url`: the issuer whose pages this browser visits; `connect_to`: the server's
        own address when the issuer's host name is not it (see `ConnectTo`)."""
        self.base_url = base_url
        transport = ConnectTo(connect_to) if connect_to else None
        self.http = httpx.Client(
            base_url=base_url, follow_redirects=False, timeout=30, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def visit(self, base_url: str, *, connect_to: str | None = None) -> Browser:
        """The same browser (one cookie jar) at another issuer, e.g. another identity domain on
        this host; close it on its own."""
        other = Browser(base_url, connect_to=connect_to)
        other.http.cookies.jar = self.http.cookies.jar
        return other

    def authorize(self, **params: str) -> httpx.Response:
        return self.http.get("/oauth2/v1/authorize?" + urlencode(params))

    def login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        fields = form_fields(page.text)
        assert "authz" in fields, page.text[:500]
        return self.http.post(
            "/oauth2/v1/login", data={**fields, "username": username, "password": password}
        )

    def consent(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        fields = form_fields(page.text)
        return self.http.post("/oauth2/v1/consent", data={**fields, "decision": decision})

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow one redirect back to us (login → authorize), which must stay under the base
        URL (a domain's redirects keep its prefix)."""
        target = str(response.url.join(response.headers["location"]))
        assert target.startswith(self.base_url.rstrip("/") + "/"), target
        return self.http.get(target)

    def sign_in_and_authorize(
        self, username: str, password: str, consent: bool = True, **params: str
    ) -> httpx.Response:
        """authorize → login page → login → authorize → (consent) → the redirect with a code."""
        response = self.authorize(**params)
        if response.status_code == 200 and 'name="password"' in response.text:
            response = self.follow(self.login(response, username, password))
        if response.status_code == 200 and 'value="allow"' in response.text and consent:
            response = self.consent(response)
        return response


@contextmanager
def signed_in_browser(
    base_url: str, username: str, password: str, **params: str
) -> Iterator[Browser]:
    """A browser where the user has signed in and consented to the app of `params`."""
    browser = Browser(base_url)
    try:
        code_from(browser.sign_in_and_authorize(username, password, **params))
        yield browser
    finally:
        browser.close()



def loopback_sign_in(base_url: str, url: str, username: str, password: str) -> httpx.Response:
    """The user's browser at the authorization URL a client printed (`tessera login`): authorize
    → login → consent at the issuer at `base_url`, then the redirect followed to the client's
    loopback; the loopback's page."""
    browser = Browser(base_url)
    try:
        redirect = browser.sign_in_and_authorize(username, password, **query_of(url))
        assert redirect.status_code in (302, 303), redirect.text[:300]
        return httpx.get(redirect.headers["location"], timeout=10)
    finally:
        browser.close()


def demo_loopback_sign_in(server: Server, url: str) -> httpx.Response:
    """`loopback_sign_in` as the demo user at the default domain."""
    alice = server.demo["user"]
    return loopback_sign_in(server.base_url, url, alice["username"], alice["password"])

def token_request(base_url: str, data: dict[str, str], auth: Any = None) -> httpx.Response:
    return httpx.post(f"{base_url}/oauth2/v1/token", data=data, auth=auth, timeout=30)


def basic_auth(app: dict[str, str]) -> tuple[str, str]:
    return app["client_id"], app["client_secret"]


def demo_app(server: Server) -> dict[str, str]:
    """The demo confidential app (client_id, client_secret, redirect_uri)."""
    return dict(server.demo["confidential_app"])


def demo_auth(server: Server) -> tuple[str, str]:
    return basic_auth(demo_app(server))


def code_params(app: dict[str, str], *, scope: str, state: str, **extra: str) -> dict[str, str]:
    """The query of an authorization request of `app` for a code."""
    return {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": scope,
        "state": state,
        **extra,
    }


def code_grant(app: dict[str, str], code: str, **extra: str) -> dict[str, str]:
    """The token request body that redeems `code` for `app` (client authentication apart)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app["redirect_uri"],
        **extra,
    }


def exchange_code(base_url: str, app: dict[str, str], code: str, **extra: str) -> dict[str, Any]:
    """Redeem a code as the confidential `app` (client_secret_basic); the exchange must succeed."""
    response = token_request(base_url, code_grant(app, code, **extra), auth=basic_auth(app))
    assert response.status_code == 200, response.text
    return dict(response.json())


def user_code(
    base_url: str,
    username: str,
    password: str,
    app: dict[str, str],
    *,
    scope: str,
    state: str = "s",
    **extra: str,
) -> str:
    """Sign a user in with a fresh browser and return the code the app receives."""
    browser = Browser(base_url)
    try:
        return code_from(
            browser.sign_in_and_authorize(
                username,
                password,
                response_type="code",
                client_id=app["client_id"],
                redirect_uri=app["redirect_uri"],
                scope=scope,
                state=state,
                **extra,
            )
        )
    finally:
        browser.close()


def user_tokens(
    server: Server,
    username: str,
    password: str,
    *,
    scope: str,
    app: dict[str, str] | None = None,
    state: str = "s",
    **extra: str,
) -> dict[str, Any]:
    """Sign a user in and exchange the code for the tokens of the confidential `app` (the demo
    confidential app unless told); `extra` goes to the authorization request."""
    app = app or server.demo["confidential_app"]
    code = user_code(server.base_url, username, password, app, scope=scope, state=state, **extra)
    return exchange_code(server.base_url, app, code)


def race(n: int, send: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """`send` from n threads at once, each with its own client, released together by a barrier."""
    barrier = Barrier(n)
    clients = [httpx.Client(timeout=30) for _ in range(n)]

    def one(i: int) -> httpx.Response:
        barrier.wait()
        return send(clients[i])

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for client in clients:
            client.close()
