"""`tessera login` over real HTTP without a browser engine: the test's httpx `Browser` follows
the printed URL, signs in, consents, and delivers the redirect to the command's loopback
listener. (`tests/browser/test_cli_login_browser.py` does the same in real Chromium.)

The server advertises PAR (RFC 9126), which `tessera login` then uses; the tests of the plain
request (its preflight, a callback forged with the URL's redirect URI) pass `--no-par`. The
pushed request's own errors: tests/e2e/test_cli_login_private_key_jwt.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.support import LoginProcess, client_env, tessera
from tests.support.flow import demo_loopback_sign_in
from tests.support.server import Server


def start_login(server: Server, env: dict[str, str], *extra: str) -> tuple[LoginProcess, str]:
    login = LoginProcess(
        env,
        "--issuer",
        server.issuer,
        "--client-id",
        server.demo["public_app"]["client_id"],
        *extra,
    )
    return login, login.url()


def test_public_app_login_then_call_userinfo_with_the_cached_token(
    server: Server, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    login, url = start_login(server, env, "--json")
    page = demo_loopback_sign_in(server, url)
    assert page.status_code == 200
    assert "You can close this tab" in page.text
    code, out, err = login.finish()
    assert code == 0, err
    summary = json.loads(out.partition("\n")[2])
    assert summary["subject"] == server.demo["user"]["sub"]
    assert summary["confidential"] is False
    assert summary["refresh_token"] is True

    called = tessera(env, "call", "GET", f"{server.issuer}/oauth2/v1/userinfo", "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["body"]["sub"] == server.demo["user"]["sub"]


def test_a_forged_callback_fails_the_login_state_mismatch(server: Server, tmp_path: Path) -> None:
    login, url = start_login(server, client_env(tmp_path), "--no-par")
    loopback = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    forged = httpx.get(
        loopback, params={"code": "x", "state": "forged", "iss": server.issuer}, timeout=10
    )
    assert forged.status_code == 400
    code, _, err = login.finish()
    assert code == 1
    assert "state mismatch" in err
    assert "Traceback" not in err
    assert not (tmp_path / "tokens").exists()


def test_login_times_out_with_a_hint(server: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    login, _ = start_login(server, client_env(tmp_path), "--timeout", "1")
    code, _, err = login.finish()
    assert code == 1
    assert "no sign-in response from the browser within 1 seconds" in err
    assert "--timeout" in err
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        ("http://id.example.test", "does not use https"),
        ("http://127.0.0.1:9", "cannot reach"),
    ],
)
def test_a_bad_issuer_is_a_clear_error(tmp_path: Path, issuer: str, message: str) -> None:
    result = tessera(
        client_env(tmp_path), "login", "--issuer", issuer, "--client-id", "x", "--no-browser"
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_login_with_an_unknown_client_fails_fast_instead_of_waiting_for_the_browser(
    server: Server, tmp_path: Path
) -> None:
    """The identity domain shows an error page for an unknown client and never redirects back
    (RFC 6749 §4.1.2.1): the login must fail at once, not after its 300 s default timeout."""
    result = tessera(
        client_env(tmp_path),
        "login",
        "--issuer",
        server.issuer,
        "--client-id",
        "no-such-client",
        "--no-browser",
        "--no-par",
        timeout=30,  # far below the 300 s wait of the old behaviour: a hang fails here
    )
    assert result.returncode == 1, result.stderr
    assert "refused the sign-in request for client 'no-such-client'" in result.stderr
    assert "HTTP 400" in result.stderr
    assert "--client-id" in result.stderr
    assert "Open this URL" not in result.stderr  # the user was never sent to the error page
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tokens").exists()


def test_login_with_an_unregistered_redirect_uri_fails_fast(server: Server, tmp_path: Path) -> None:
    """The confidential demo app registers only its web callback, not the loopback one."""
    app = server.demo["confidential_app"]
    result = tessera(
        client_env(tmp_path),
        "login",
        "--issuer",
        server.issuer,
        "--client-id",
        app["client_id"],
        "--client-secret-stdin",
        "--no-browser",
        "--no-par",
        input=app["client_secret"] + "\n",
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "refused the sign-in request" in result.stderr
    assert "redirect URI" in result.stderr
    assert "Traceback" not in result.stderr


def test_login_with_an_unknown_scope_fails_fast_with_the_error_redirect(
    server: Server, tmp_path: Path
) -> None:
    """For a known client and redirect URI the identity domain redirects its error back
    (RFC 6749 §4.1.2.1); the login reports it at once instead of sending the user there."""
    result = tessera(
        client_env(tmp_path),
        "login",
        "--issuer",
        server.issuer,
        "--client-id",
        server.demo["public_app"]["client_id"],
        "--scope",
        "https://nowhere.tessera.testurn:no:such",
        "--no-browser",
        "--no-par",
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "refused the sign-in request (invalid_scope" in result.stderr
    assert "--scope" in result.stderr
    assert "Traceback" not in result.stderr
