"""SECURITY.md item 29: failed logins are rate limited per account and per client address, and the
lockout expires, so an attacker cannot lock a user out for good.

The server runs with a 10 s failure window and lockout, so the expiry can be waited out. Clients
connect from different loopback source addresses (127.0.0.x) to play different client addresses.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.flow import Browser, form_fields
from tests.support.server import Server, running_server

ALICE = ("alice", "Wonderland-Demo-2026")
WINDOW = 10
MAX_FAILURES = 5
PER_ADDRESS = 8
LOCK_MESSAGE = "Too many failed sign-ins"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    limits = {
        "TESSERA_LOGIN_FAILURE_WINDOW": str(WINDOW),
        "TESSERA_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "TESSERA_LOGIN_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS),
    }
    with running_server(tmp_path_factory.mktemp("idp-brute-force"), extra_env=limits) as srv:
        yield srv


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    """bob, carol and dave, with their passwords (created in parallel: the CLI starts slowly)."""
    wanted = {name: f"Rabbit-Hole-{secrets.token_hex(6)}" for name in ("bob", "carol", "dave")}

    def create(name: str) -> None:
        server.cli("admin", "users", "create", name, "--password-stdin", input=wanted[name] + "\n")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(create, wanted))
    return {ALICE[0]: ALICE[1], **wanted}


class Client:
    """A browser at one client address, standing on the login page of the demo app."""

    def __init__(self, server: Server, address: str) -> None:
        self.browser = Browser(server.base_url)
        self.browser.http.close()
        self.browser.http = httpx.Client(
            base_url=server.base_url,
            follow_redirects=False,
            timeout=30,
            transport=httpx.HTTPTransport(local_address=address),
        )
        app = server.demo["confidential_app"]
        page = self.browser.authorize(
            response_type="code",
            client_id=app["client_id"],
            redirect_uri=app["redirect_uri"],
            scope="openid",
            state="bf",
        )
        assert page.status_code == 200
        self.fields = form_fields(page.text)

    def login(self, username: str, password: str) -> httpx.Response:
        return self.browser.http.post(
            "/oauth2/v1/login", data={**self.fields, "username": username, "password": password}
        )

    def close(self) -> None:
        self.browser.close()


@pytest.fixture
def at(server: Server) -> Iterator[object]:
    opened: list[Client] = []

    def open_at(address: str) -> Client:
        client = Client(server, address)
        opened.append(client)
        return client

    try:
        yield open_at
    finally:
        for client in opened:
            client.close()


def fail(client: Client, username: str, times: int = MAX_FAILURES) -> None:
    for i in range(times):
        response = client.login(username, f"wrong-password-{i}")
        assert response.status_code == 401, (i, response.status_code)
        assert "location" not in response.headers


def assert_locked(response: httpx.Response) -> None:
    assert response.status_code == 429, response.status_code
    assert LOCK_MESSAGE in response.text
    assert "location" not in response.headers
    assert "tessera_session" not in response.headers.get("set-cookie", "")


def assert_signed_in(response: httpx.Response) -> None:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    assert response.headers["location"].startswith("/oauth2/v1/authorize?")
    assert "tessera_session" in response.headers.get("set-cookie", "")


def test_item29_after_five_failures_the_sixth_login_is_refused_with_429_even_with_the_right_password(
    server: Server, users: dict[str, str], at: object
) -> None:
    client = at("127.0.0.1")  # type: ignore[operator]
    fail(client, "alice")
    assert_locked(client.login("alice", users["alice"]))
    assert_locked(client.login("alice", "wrong-again"))
    assert_locked(client.login("ALICE", users["alice"]))  # usernames match case-insensitively


def test_item29_failures_for_one_account_do_not_lock_out_another(
    server: Server, users: dict[str, str], at: object
) -> None:
    client = at("127.0.0.4")  # type: ignore[operator]
    fail(client, "alice")
    assert_locked(client.login("alice", users["alice"]))
    assert_signed_in(client.login("bob", users["bob"]))


def test_item29_a_lockout_at_one_address_does_not_lock_the_user_out_elsewhere(
    server: Server, users: dict[str, str], at: object
) -> None:
    attacker, user = at("127.0.0.5"), at("127.0.0.6")  # type: ignore[operator]
    fail(attacker, "carol")
    assert_locked(attacker.login("carol", users["carol"]))
    assert_signed_in(user.login("carol", users["carol"]))


def test_item29_one_address_is_limited_across_accounts(
    server: Server, users: dict[str, str], at: object
) -> None:
    sprayer, other = at("127.0.0.8"), at("127.0.0.9")  # type: ignore[operator]
    for i in range(PER_ADDRESS):
        response = sprayer.login(f"nobody-{i}-{secrets.token_hex(2)}", "Password-1")
        assert response.status_code == 401, (i, response.status_code)
    assert_locked(sprayer.login("bob", users["bob"]))
    assert_signed_in(other.login("bob", users["bob"]))


def test_item29_the_lockout_expires(server: Server, users: dict[str, str], at: object) -> None:
    client = at("127.0.0.7")  # type: ignore[operator]
    fail(client, "dave")
    locked_at = time.monotonic()
    assert_locked(client.login("dave", users["dave"]))
    time.sleep(max(0.0, WINDOW + 1 - (time.monotonic() - locked_at)))
    assert_signed_in(client.login("dave", users["dave"]))
