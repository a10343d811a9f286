"""The device authorization grant (RFC 8628) over real HTTP, on SQLite and PostgreSQL.

An app asks `/oauth2/v1/device` for a device code; a user signs in at the domain's `/device`
page (the sign-in flow of the account pages), enters the user code, sees the app and its
scopes, and allows or denies; the app polls the token endpoint. Refused: an unknown app, an
app not allowed the grant, a bad scope, polling too fast (`slow_down`), a denied request
(`access_denied`), an expired code (`expired_token`), a second redemption, guessed user codes
(throttled with a clear message); parallel redemptions give tokens once.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.support import client_env
from tests.support.domains import ADMIN_PASSWORD, create_domain, domain_cli, query
from tests.support.flow import Browser, form_fields, query_of, race, token_request
from tests.support.server import Server, running_server

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SHORT_TTL = 5  # seconds: TESSERA_DEVICE_CODE_TTL of the expiry test's server (the minimum)
USER_CODE = re.compile(r"\b[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}\b")
_names = itertools.count(1)


def device_app(server: Server, *options: str, confidential: bool = False) -> dict[str, Any]:
    """An app allowed the device grant (public unless told), with openid and the demo scope."""
    args = (
        *("admin", "apps", "create", "--name", f"Device app {next(_names)}"),
        *("--grant-type", GRANT, "--grant-type", "refresh_token"),
        *("--allow-scope", "openid", "--allow-scope", server.demo["resource"]["scope"]),
        *(() if confidential else ("--public",)),
        *options,
    )
    return dict(server.cli_json(*args))


def start(
    server: Server, app: dict[str, Any], scope: str = "openid", auth: Any = None
) -> httpx.Response:
    form = {"scope": scope} if auth else {"client_id": app["client_id"], "scope": scope}
    return httpx.post(f"{server.base_url}/oauth2/v1/device", data=form, auth=auth, timeout=30)


def started(server: Server, app: dict[str, Any], scope: str = "openid") -> dict[str, Any]:
    response = start(server, app, scope)
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(server: Server, app: dict[str, Any], device_code: str) -> httpx.Response:
    form = {"grant_type": GRANT, "device_code": device_code, "client_id": app["client_id"]}
    return token_request(server.base_url, form)


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["error"])


@pytest.fixture(scope="module")
def app(server: Server) -> dict[str, Any]:
    return device_app(server)


@pytest.fixture
def user_browser(server: Server) -> Iterator[Browser]:
    """A browser where Alice has signed in on the device page (through the account sign-in)."""
    alice = server.demo["user"]
    with Browser(server.base_url) as browser:
        page = browser.http.get("/device")
        assert page.status_code == 303  # to the sign-in, and back
        page = browser.http.get(page.headers["location"])
        page = browser.follow(browser.login(page, alice["username"], alice["password"]))
        while page.status_code in (302, 303):
            page = browser.follow(page)
        assert page.status_code == 200 and 'name="user_code"' in page.text, page.text[:500]
        yield browser


def enter(browser: Browser, user_code: str) -> httpx.Response:
    page = browser.http.get("/device")
    return browser.http.post("/device", data={**form_fields(page.text), "user_code": user_code})


def decide(browser: Browser, user_code: str, decision: str) -> httpx.Response:
    confirm = enter(browser, user_code)
    assert confirm.status_code == 200 and 'value="allow"' in confirm.text, confirm.text[:500]
    fields = form_fields(confirm.text)
    return browser.http.post("/device", data={**fields, "decision": decision})


# --- the endpoint (§3.1, §3.2) and discovery ---------------------------------------------------


def test_discovery_advertises_the_endpoint_and_the_grant(server: Server) -> None:
    doc = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert doc["device_authorization_endpoint"] == f"{server.issuer}/oauth2/v1/device"
    assert GRANT in doc["grant_types_supported"]


def test_the_answer_has_the_codes_the_pages_the_lifetime_and_the_interval(
    server: Server, app: dict[str, Any]
) -> None:
    response = start(server, app)
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert body["verification_uri"] == f"{server.issuer}/device"
    assert query_of(body["verification_uri_complete"]) == {"user_code": body["user_code"]}
    assert (body["expires_in"], body["interval"]) == (600, 5)
    assert len(body["user_code"]) == 9 and body["user_code"][4] == "-"


def test_an_unknown_app_is_invalid_client(server: Server) -> None:
    response = start(server, {"client_id": "nobody"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_confidential_app_authenticates(server: Server) -> None:
    machine = device_app(server, confidential=True)
    without = start(server, machine)
    assert without.status_code == 401 and without.json()["error"] == "invalid_client"
    wrong = start(server, machine, auth=(machine["client_id"], "wrong"))
    assert wrong.status_code == 401
    ok = start(server, machine, auth=(machine["client_id"], machine["client_secret"]))
    assert ok.status_code == 200, ok.text


def test_an_app_not_allowed_the_grant_is_unauthorized_client(server: Server) -> None:
    public = server.demo["public_app"]
    assert error_of(start(server, public)) == "unauthorized_client"


@pytest.mark.parametrize("scope", ["openid urn:nope", "", "openid https://elsewhere.test/x"])
def test_a_bad_scope_is_invalid_scope(server: Server, app: dict[str, Any], scope: str) -> None:
    assert error_of(start(server, app, scope)) == "invalid_scope"


def test_repeated_parameters_are_invalid_request(server: Server, app: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/device",
        content=f"client_id={app['client_id']}&scope=openid&scope=openid",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_of(response) == "invalid_request"


# --- the page and polling (§3.3-§3.5) ----------------------------------------------------------


def test_approved_in_the_browser_the_app_gets_the_users_tokens_once(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    scope = f"openid {server.demo['resource']['scope']}"
    codes = started(server, app, scope)
    time.sleep(5)  # the interval, before the first poll too
    assert error_of(poll(server, app, codes["device_code"])) == "authorization_pending"

    # verification_uri_complete fills the code in; the page names the app and what it asks.
    prefilled = user_browser.http.get(codes["verification_uri_complete"])
    assert prefilled.status_code == 200 and f'value="{codes["user_code"]}"' in prefilled.text
    confirm = enter(user_browser, codes["user_code"].lower().replace("-", " "))
    assert app["name"] in confirm.text and codes["user_code"] in confirm.text
    assert "Use " in confirm.text  # the resource scope, described
    assert confirm.headers["x-frame-options"] == "DENY"
    done = user_browser.http.post("/device", data={**form_fields(confirm.text), "decision": "allow"})
    assert done.status_code == 303
    assert "Device connected" in user_browser.follow(done).text

    time.sleep(5)  # the interval
    response = poll(server, app, codes["device_code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] and body["id_token"]
    introspected = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": body["access_token"]},
        auth=(server.demo["confidential_app"]["client_id"],
              server.demo["confidential_app"]["client_secret"]),
    ).json()  # fmt: skip
    assert introspected["active"] is True
    assert introspected["sub"] == server.demo["user"]["sub"]
    assert introspected["sub_type"] == "user"
    assert error_of(poll(server, app, codes["device_code"])) == "invalid_grant"  # once
    # A decided code cannot be entered again.
    assert "already" in enter(user_browser, codes["user_code"]).text


def test_polling_too_fast_gets_slow_down(server: Server, app: dict[str, Any]) -> None:
    codes = started(server, app)
    # The first poll too waits the interval, counted from the request (RFC 8628 §3.5).
    assert error_of(poll(server, app, codes["device_code"])) == "slow_down"
    slow = poll(server, app, codes["device_code"])
    assert error_of(slow) == "slow_down"


def test_a_denied_request_gets_access_denied(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    codes = started(server, app)
    done = decide(user_browser, codes["user_code"], "deny")
    assert done.status_code == 303 and "Request denied" in user_browser.follow(done).text
    assert error_of(poll(server, app, codes["device_code"])) == "access_denied"


def test_parallel_redemptions_give_tokens_once(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    codes = started(server, app)
    assert decide(user_browser, codes["user_code"], "allow").status_code == 303
    form = {"grant_type": GRANT, "device_code": codes["device_code"], "client_id": app["client_id"]}
    answers = race(
        8, lambda http: http.post(f"{server.base_url}/oauth2/v1/token", data=form, timeout=30)
    )
    assert sorted(r.status_code for r in answers) == [200] + [400] * 7
    assert {r.json()["error"] for r in answers if r.status_code == 400} == {"invalid_grant"}


def test_another_apps_device_code_is_invalid_grant(server: Server, app: dict[str, Any]) -> None:
    codes = started(server, app)
    other = device_app(server)
    assert error_of(poll(server, other, codes["device_code"])) == "invalid_grant"


def test_wrong_user_codes_are_throttled_with_a_clear_message(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    codes = started(server, app)
    for _ in range(5):
        wrong = enter(user_browser, "BCDF-BCDF")
        assert wrong.status_code == 400 and "not valid" in wrong.text
    throttled = enter(user_browser, codes["user_code"])  # even the right code waits now
    assert throttled.status_code == 429
    assert "Too many wrong codes. Try again in 60 seconds." in throttled.text


def test_a_form_without_the_sessions_csrf_token_is_refused(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    codes = started(server, app)
    forged = user_browser.http.post(
        "/device", data={"user_code": codes["user_code"], "decision": "allow"}
    )
    assert forged.status_code == 403
    # Still undecided: `slow_down` (polled within the interval) answers only a pending request.
    assert error_of(poll(server, app, codes["device_code"])) == "slow_down"


def test_an_app_that_requires_a_second_factor_sends_the_user_to_get_one_first(
    server: Server, user_browser: Browser
) -> None:
    """The app's second-factor policy applies before the user may allow (docs/mfa.md); a
    denial needs nothing more than the session."""
    strict = device_app(server, "--mfa-policy", "required")
    codes = started(server, strict)
    entered = enter(user_browser, codes["user_code"])
    assert entered.status_code == 303
    location = entered.headers["location"]
    assert "/oauth2/v1/authorize?" in location
    assert query_of(location)["acr_values"] == "urn:tessera:acr:mfa"
    fields = {**form_fields(user_browser.http.get("/device").text), "user_code": codes["user_code"]}
    denied = user_browser.http.post("/device", data={**fields, "decision": "deny"})
    assert denied.status_code == 303 and denied.headers["location"].endswith("done=denied")
    assert error_of(poll(server, strict, codes["device_code"])) == "access_denied"


def test_a_prefilled_code_is_escaped_and_cut_to_size(user_browser: Browser) -> None:
    given = '"><script>x()</script>' * 3
    page = user_browser.http.get("/device", params={"user_code": given})
    assert page.status_code == 200
    assert "<script>x()" not in page.text and "&lt;script&gt;" in page.text
    value = page.text.split('name="user_code" value="', 1)[1].split('"', 1)[0]
    assert unescape(value) == given[:32]


def test_an_expired_code_gets_expired_token(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"TESSERA_DEVICE_CODE_TTL": str(SHORT_TTL)}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as short:
        app = device_app(short)
        codes = started(short, app)
        assert codes["expires_in"] == SHORT_TTL
        time.sleep(SHORT_TTL + 1)
        assert error_of(poll(short, app, codes["device_code"])) == "expired_token"


def test_device_requests_are_rate_limited_per_address(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A server of its own: its 30 requests a minute from loopback are used up here."""
    with running_server(tmp_path_factory.mktemp("idp")) as own:
        app = device_app(own)
        for _ in range(30):
            assert start(own, app).status_code == 200
        limited = start(own, app)
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"] == "temporarily_unavailable"
        assert "too many device authorization requests" in limited.json()["error_description"]
        assert 0 < int(limited.headers["retry-after"]) <= 60
        rows = query(own, "SELECT device_code_hash FROM device_authorizations")
        assert len(rows) == 30  # nothing written for the refused one


def test_cli_device_login_json_gets_and_caches_the_users_tokens(
    server: Server, app: dict[str, Any], user_browser: Browser, tmp_path: Path
) -> None:
    """`tessera login --device --json`: the code on stderr, the result alone on stdout."""
    env = client_env(tmp_path / "config")
    args = ("login", "--issuer", server.issuer, "--client-id", app["client_id"], "--device")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    shown = ""
    while not (found := USER_CODE.search(shown)):
        line = proc.stderr.readline()
        assert line, f"no user code shown: {shown}"
        shown += line
    assert decide(user_browser, found.group(0), "allow").status_code == 303
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["client_id"] == app["client_id"] and result["issuer"] == server.issuer
    assert result["subject"] == server.demo["user"]["sub"] and result["refresh_token"] is True
    assert result["token_type"] == "DPoP" and result["dpop_jkt"]
    assert Path(result["cache_file"]).is_file()


def test_a_domain_under_a_path_has_its_own_device_endpoint_page_and_codes(
    server: Server,
) -> None:
    """docs/security.md rules 39 and 50: the domain's pages and endpoint under its prefix, its
    codes valid only there, and only keyed hashes of them in the database."""
    create_domain(server, "devices")
    issuer = f"{server.base_url}/domains/devices"
    app = dict(
        domain_cli(
            server,
            "devices",
            *("apps", "create", "--name", "Domain device app", "--public"),
            *("--grant-type", GRANT, "--allow-scope", "openid"),
        )
    )
    response = httpx.post(
        f"{issuer}/oauth2/v1/device", data={"client_id": app["client_id"], "scope": "openid"}
    )
    assert response.status_code == 200, response.text
    codes = response.json()
    assert codes["verification_uri"] == f"{issuer}/device"
    with Browser(issuer) as browser:
        page = browser.http.get(codes["verification_uri_complete"])
        assert page.status_code == 303
        page = browser.follow(page)
        page = browser.follow(browser.login(page, "alice", ADMIN_PASSWORD))
        while page.status_code in (302, 303):
            page = browser.follow(page)
        assert f'value="{codes["user_code"]}"' in page.text
        fields = {**form_fields(page.text), "user_code": codes["user_code"]}
        confirm = browser.http.post("/device", data=fields)
        assert "Domain device app" in confirm.text
        done = browser.http.post(
            "/device", data={**form_fields(confirm.text), "decision": "allow"}
        )
        assert done.headers["location"] == "/domains/devices/device?done=allowed"
    form = {"grant_type": GRANT, "device_code": codes["device_code"], "client_id": app["client_id"]}
    elsewhere = token_request(server.base_url, form)  # the default domain knows neither
    assert elsewhere.status_code == 401
    tokens = httpx.post(f"{issuer}/oauth2/v1/token", data=form)
    assert tokens.status_code == 200, tokens.text
    stored = query(server, "SELECT device_code_hash, user_code_hash FROM device_authorizations")
    values = {codes["device_code"], codes["user_code"], codes["user_code"].replace("-", "")}
    assert stored and not values & {v for row in stored for v in row}


def test_revoking_the_user_ends_device_tokens_like_any_grant(
    server: Server, app: dict[str, Any], user_browser: Browser
) -> None:
    """Kept last: it revokes Alice's tokens and sessions (later sign-ins are unaffected)."""
    codes = started(server, app, f"openid {server.demo['resource']['scope']}")
    assert decide(user_browser, codes["user_code"], "allow").status_code == 303
    tokens = poll(server, app, codes["device_code"]).json()
    confidential = server.demo["confidential_app"]
    auth = (confidential["client_id"], confidential["client_secret"])

    def active() -> bool:
        answer = httpx.post(
            f"{server.base_url}/oauth2/v1/introspect",
            data={"token": tokens["access_token"]},
            auth=auth,
        )
        return bool(answer.json()["active"])

    assert active()
    server.cli("admin", "tokens", "revoke", "--user", server.demo["user"]["username"])
    assert not active()
    refreshed = token_request(
        server.base_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app["client_id"],
        },
    )
    assert error_of(refreshed) == "invalid_grant"
