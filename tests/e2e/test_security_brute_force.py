"""docs/security.md rule 29 and issue 12: failed logins are slowed down per account and address, per
account and per client address with delays that grow with the failures and always end; a
browser that signed in before is not held by failures made elsewhere, so an attacker cannot
lock its owner out.

The server waits 8 s after the free failures (doubling after each next one, up to the 120 s
window). That every delay ends, and that the attempt after it has its password checked, is
proven on an injected clock instead of by sleeping here
(`tests/unit/oauth/test_interaction_login.py::test_delays_grow_with_failures_skip_the_password_and_end`).
Clients connect from different loopback source addresses (127.0.0.x), or through the loopback
proxy the server trusts with `X-Forwarded-For`, to play different client addresses.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.flow import Browser, form_fields
from tests.support.server import Server, running_server

ALICE = ("alice", "Wonderland-Demo-2026")
WINDOW = 120
FIRST_DELAY = 8
MAX_FAILURES = 5
PER_ADDRESS = 8
LOCK_MESSAGE = "Too many failed sign-ins"
WAIT = re.compile(r"Try again in (\d+) (seconds|minutes)\.")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    limits = {
        "TESSERA_LOGIN_FAILURE_WINDOW": str(WINDOW),
        "TESSERA_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "TESSERA_LOGIN_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS),
        "TESSERA_LOGIN_FIRST_DELAY": str(FIRST_DELAY),
        "TESSERA_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    with running_server(tmp_path_factory.mktemp("idp-brute-force"), extra_env=limits) as srv:
        yield srv


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    """More users, with their passwords (created in parallel: the CLI starts slowly)."""
    names = ("bob", "carol", "erin", "frank")
    wanted = {name: f"Rabbit-Hole-{secrets.token_hex(6)}" for name in names}

    def create(name: str) -> None:
        server.cli("admin", "users", "create", name, "--password-stdin", input=wanted[name] + "\n")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(create, wanted))
    return {ALICE[0]: ALICE[1], **wanted}


class Client:
    """A browser at one client address, standing on the login page of the demo app: a loopback
    source address, or any address forwarded by the trusted proxy (127.0.0.1)."""

    def __init__(self, server: Server, address: str) -> None:
        self.browser = Browser(server.base_url)
        self.browser.http.close()
        forwarded = not address.startswith("127.")
        self.browser.http = httpx.Client(
            base_url=server.base_url,
            follow_redirects=False,
            timeout=30,
            headers={"X-Forwarded-For": address} if forwarded else None,
            transport=httpx.HTTPTransport(local_address="127.0.0.1" if forwarded else address),
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


def assert_locked(response: httpx.Response) -> int:
    """A delay, not a lockout: 429 with the seconds to wait, at most the window; returns them."""
    assert response.status_code == 429, response.status_code
    assert LOCK_MESSAGE in response.text
    assert "location" not in response.headers
    assert "tessera_session" not in response.headers.get("set-cookie", "")
    wait = int(response.headers["retry-after"])
    assert 0 < wait <= WINDOW
    shown = WAIT.search(response.text)
    assert shown is not None and int(shown.group(1)) == wait
    return wait


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


def test_a_wrong_password_storm_from_ten_addresses_does_not_lock_out_a_browser_that_signed_in(
    server: Server, users: dict[str, str], at: object
) -> None:
    """Issue 12: 50 wrong passwords from 10 addresses used to lock the account for everyone,
    renewable for ever. Now the owner's browser keeps working and a fresh address waits."""
    owner = at("192.0.2.50")  # type: ignore[operator]
    assert_signed_in(owner.login("erin", users["erin"]))
    attackers = [at(f"198.51.100.{i}") for i in range(1, 11)]  # type: ignore[operator]
    for attacker in attackers:
        fail(attacker, "erin")
    # A fresh browser at a fresh address is delayed (without revealing anything), not locked.
    assert_locked(at("192.0.2.77").login("erin", users["erin"]))  # type: ignore[operator]
    # The browser that signed in before is not: its known-device cookie exempts it.
    assert_signed_in(owner.login("erin", users["erin"]))


def test_the_known_device_cookie_is_httponly_lax_and_sent_only_to_the_login_endpoint(
    server: Server, users: dict[str, str], at: object
) -> None:
    response = at("192.0.2.51").login("bob", users["bob"])  # type: ignore[operator]
    assert_signed_in(response)
    cookie = next(c for c in response.headers.get_list("set-cookie") if "tessera_device=" in c)
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/oauth2/v1/login"
    assert int(attributes["max-age"].split("=")[1]) >= 30 * 86400
    assert "secure" not in attributes  # the test issuer is http; https issuers get Secure


def test_ipv6_addresses_in_one_64_share_a_failure_counter(
    server: Server, users: dict[str, str], at: object
) -> None:
    for i in range(1, MAX_FAILURES + 1):
        fail(at(f"2001:db8:5:6::{i}"), "frank", times=1)  # type: ignore[operator]
    assert_locked(at("2001:db8:5:6:ffff::99").login("frank", users["frank"]))  # type: ignore[operator]
    assert_signed_in(at("2001:db8:5:7::1").login("frank", users["frank"]))  # type: ignore[operator]


def test_a_delay_does_not_reveal_whether_the_account_exists(
    server: Server, users: dict[str, str], at: object
) -> None:
    texts = []
    for name, address in (("carol", "192.0.2.60"), (f"ghost-{secrets.token_hex(3)}", "192.0.2.61")):
        client = at(address)  # type: ignore[operator]
        fail(client, name)
        response = client.login(name, "whatever-password")
        assert_locked(response)
        alert = re.search(r'<div class="alert.*?</div>\s*</div>', response.text, re.S)
        assert alert is not None
        texts.append(WAIT.sub("", alert.group(0)))
    assert texts[0] == texts[1]
