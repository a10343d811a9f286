"""`tessera login` with a real browser, then `tessera call`, `tessera token` and `tessera logout`.

The command runs as a real subprocess with `--no-browser`; headless Chromium plays the user: it
opens the printed URL, signs in on Tessera's login page, allows on the consent page, and is
redirected to the command's loopback listener (RFC 8252), which answers "you can close this tab".
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page

from tests.browser.support import (
    Api,
    LoginProcess,
    client_env,
    introspect,
    sign_in,
    tessera,
    wait_until,
)
from tests.support.server import Server


def browser_login(
    page: Page,
    server: Server,
    env: dict[str, str],
    client_id: str,
    *extra: str,
    secret: str | None = None,
    consent: str = "allow",
) -> tuple[int, str, str]:
    """Run `tessera login` and sign in with Chromium; the command's exit code and output."""
    alice = server.demo["user"]
    login = LoginProcess(
        env,
        "--issuer",
        server.issuer,
        "--client-id",
        client_id,
        "--scope",
        server.demo["resource"]["scope"],
        "--timeout",
        "60",
        *extra,
        secret=secret,
    )
    url = login.url()
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{server.issuer}/oauth2/v1/authorize?")
    # The server advertises PAR: the request (PKCE, the loopback redirect URI) was pushed and
    # the browser carries its handle only (RFC 9126 §4).
    assert set(query) == {"client_id", "request_uri"}
    page.goto(url)
    sign_in(page, alice["username"], alice["password"], consent=consent)
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/callback\?"))
    result = login.finish()
    page.wait_for_load_state()
    return result


def cache_files(config_dir: Path) -> list[Path]:
    return sorted((config_dir / "tokens").rglob("*.json"))


def cached(config_dir: Path, profile: str = "default") -> dict[str, Any]:
    (path,) = sorted((config_dir / "tokens" / profile).glob("*.json"))
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def refused(api: Api, token: str) -> bool:
    return httpx.get(api.url, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the story of the issue --------------------------------------------------------------------


def test_login_in_a_real_browser_then_call_an_integration(
    page: Page, server: Server, api: Api, config_dir: Path
) -> None:
    env = client_env(config_dir)
    code, out, err = browser_login(page, server, env, server.demo["public_app"]["client_id"])
    assert code == 0, err
    assert "close this tab" in page.content()
    assert "Signed in as Alice Example" in err
    assert "Traceback" not in err

    (path,) = cache_files(config_dir)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(config_dir / "tokens") == 0o700
    entry = cached(config_dir)
    assert entry["issuer"] == server.issuer
    assert entry["tokens"]["refresh_token"]
    assert entry["tokens"]["access_token"] not in out + err  # login never prints tokens

    called = tessera(env, "call", "GET", api.url)
    assert called.returncode == 0, called.stderr
    assert "HTTP 200" in called.stderr
    body = json.loads(called.stdout)
    assert body["message"] == "Hello, Alice Example"
    assert body["sub"] == server.demo["user"]["sub"]

    # The packaged sample integration, with a JSON body (curl-like --data).
    order = tessera(
        env,
        "call",
        "POST",
        api.echo_order("42"),
        "--data",
        '{"lines": [{"sku": "A-1", "qty": 2}]}',
        "--json",
    )
    assert order.returncode == 0, order.stderr
    answer = json.loads(order.stdout)
    assert answer["status"] == 200
    assert answer["headers"]["x-integration"] == "ECHO_ORDER"
    assert answer["body"]["orderId"] == "42" and answer["body"]["lineCount"] == 1
    assert answer["body"]["requestedBy"] == {
        "sub": server.demo["user"]["sub"],
        "type": "user",
        "client": server.demo["public_app"]["client_id"],
        "name": "Alice Example",
    }

    # An API that answers non-2xx makes `call` exit 1, with the status and body shown.
    missing = tessera(env, "call", "GET", f"{api.base}/nope")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr

    decoded = tessera(env, "token", "--decode", "--json")
    assert decoded.returncode == 0, decoded.stderr
    data = json.loads(decoded.stdout)
    assert data["signature_verified"] is False
    assert data["header"]["typ"] == "at+jwt"
    assert data["claims"]["sub"] == server.demo["user"]["sub"]
    assert data["claims"]["aud"] in (
        server.demo["resource"]["audience"],
        [server.demo["resource"]["audience"]],
    )
    shown = tessera(env, "token", "--decode")
    assert shown.returncode == 0
    assert "without checking the signature" in shown.stderr

    raw = tessera(env, "token")
    assert raw.stdout.strip() == entry["tokens"]["access_token"]  # fresh: not refreshed

    # A token the clock says is fresh but the API refuses (here: revoked on its own, RFC 7009)
    # makes `call` refresh once and retry.
    old = entry["tokens"]["access_token"]
    revoked = httpx.post(
        f"{server.issuer}/oauth2/v1/revoke",
        data={
            "token": old,
            "token_type_hint": "access_token",
            "client_id": server.demo["public_app"]["client_id"],
        },
    )
    assert revoked.status_code == 200
    assert wait_until(lambda: refused(api, old))
    retried = tessera(env, "call", "GET", api.url)
    assert retried.returncode == 0, retried.stderr
    assert cached(config_dir)["tokens"]["access_token"] != old


def test_a_short_lived_token_is_refreshed_by_itself_then_logout_revokes(
    page: Page, server: Server, api: Api, config_dir: Path
) -> None:
    scope = server.demo["resource"]["scope"]
    short = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        "CLI with 30 s tokens",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--allow-scope",
        "openid",
        "--allow-scope",
        scope,
        "--access-token-ttl",
        "30",
    )
    # A 30 s token is always within a 40 s refresh margin: every use refreshes it, as a
    # one-hour token would be refreshed in its last minute.
    env = client_env(config_dir, TESSERA_CLIENT_REFRESH_MARGIN="40")
    code, _, err = browser_login(page, server, env, short["client_id"], "--profile", "short")
    assert code == 0, err
    first = cached(config_dir, "short")["tokens"]

    refreshed = tessera(env, "token", "--profile", "short", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    token = json.loads(refreshed.stdout)
    assert token["refreshed"] is True
    assert token["access_token"] != first["access_token"]
    second = cached(config_dir, "short")["tokens"]
    assert second["access_token"] == token["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated
    assert introspect(server, first["refresh_token"])["active"] is False

    called = tessera(env, "call", "GET", api.url, "--profile", "short")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["client_id"] == short["client_id"]
    third = cached(config_dir, "short")["tokens"]
    assert third["access_token"] != second["access_token"]  # the call refreshed first
    assert introspect(server, third["refresh_token"])["active"] is True

    out = tessera(env, "logout", "--profile", "short")
    assert out.returncode == 0, out.stderr
    assert "revoked" in out.stderr
    assert introspect(server, third["refresh_token"]) == {"active": False}
    assert introspect(server, third["access_token"]) == {"active": False}
    assert cache_files(config_dir) == []
    # The API follows the revocation feed: the old access token is refused within a second.
    assert wait_until(lambda: refused(api, third["access_token"]))

    after = tessera(env, "token", "--profile", "short")
    assert after.returncode == 2
    assert "not logged in" in after.stderr
    assert "tessera login --issuer URL --client-id ID --profile short" in after.stderr
    again = tessera(env, "logout", "--profile", "short")
    assert again.returncode == 0
    assert "nothing to do" in again.stderr


def test_a_confidential_app_logs_in_with_its_secret_and_pkce_the_secret_never_printed(
    page: Page, server: Server, api: Api, config_dir: Path
) -> None:
    web = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        "Confidential CLI",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--allow-scope",
        "openid",
        "--allow-scope",
        server.demo["resource"]["scope"],
    )
    env = client_env(config_dir)
    secret = web["client_secret"]
    code, out, err = browser_login(
        page, server, env, web["client_id"], "--client-secret-stdin", "--json", secret=secret
    )
    assert code == 0, err
    url_line, _, document = out.partition("\n")  # the URL to open, then the JSON summary
    assert url_line.startswith(server.issuer)
    summary = json.loads(document)
    assert summary["confidential"] is True
    assert secret not in out + err
    entry = cached(config_dir)
    assert entry["client_secret"] == secret  # kept in the 0600 file for refresh and logout

    called = tessera(env, "call", "GET", api.url, "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["body"]["client_id"] == web["client_id"]
    for args in (("token", "--json"), ("token", "--decode", "--json"), ("logout", "--json")):
        result = tessera(env, *args)
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout + result.stderr
    assert introspect(server, entry["tokens"]["refresh_token"]) == {"active": False}


def test_denied_consent_fails_the_login_with_a_clear_message(
    page: Page, server: Server, config_dir: Path
) -> None:
    denier = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        "CLI denied",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--allow-scope",
        "openid",
        "--allow-scope",
        server.demo["resource"]["scope"],
    )
    env = client_env(config_dir)
    code, _, err = browser_login(page, server, env, denier["client_id"], consent="deny")
    assert code == 1
    assert "cancelled or access was denied" in err
    assert "Traceback" not in err
    assert "Sign-in failed" in page.content()
    assert cache_files(config_dir) == []


# --- the cache, without a browser --------------------------------------------------------------


def test_a_corrupted_cache_file_gives_a_clear_message_and_exit_2(
    server: Server, config_dir: Path
) -> None:
    profile_dir = config_dir / "tokens" / "default"
    profile_dir.mkdir(parents=True)
    broken = profile_dir / "127.0.0.1-0123456789abcdef.json"
    broken.write_text('{"version": 1, "issuer": "http://127.0.0.1", "tok')
    env = client_env(config_dir)
    for args in (("token",), ("call", "GET", "http://127.0.0.1:9/"), ("logout",)):
        result = tessera(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "is corrupted (not valid JSON)" in result.stderr
        assert str(broken) in result.stderr.replace("\n", "")
        assert "tessera login" in result.stderr
    as_json = tessera(env, "token", "--json")
    assert as_json.returncode == 2
    assert "corrupted" in json.loads(as_json.stderr)["error"]


def test_not_logged_in_says_which_command_to_run(config_dir: Path) -> None:
    result = tessera(client_env(config_dir), "call", "GET", "http://127.0.0.1:9/")
    assert result.returncode == 2
    assert "not logged in" in result.stderr
    assert "run: tessera login --issuer URL --client-id ID" in result.stderr
    assert "Traceback" not in result.stderr
