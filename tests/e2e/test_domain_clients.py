"""The client tooling against an identity domain's issuer, unchanged (docs/domains.md):
`tessera login` runs the loopback sign-in through the domain's discovery, `tessera call` uses
and refreshes the cached token, `tessera logout` revokes it at the domain.

The login is `--no-dpop`: the checks below replay the token from a plain HTTP client as a
Bearer token, which a DPoP-bound token (the CLI's default) would fail whatever its state
(RFC 9449 §7.2); the DPoP login itself: tests/e2e/test_cli_dpop.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.support import LoginProcess, client_env, tessera
from tests.support.domains import ADMIN_PASSWORD, create_domain, domain_cli
from tests.support.flow import loopback_sign_in
from tests.support.server import Server


@pytest.fixture(scope="module")
def acme(server: Server) -> dict[str, Any]:
    domain = create_domain(server, "clients", display_name="Clients Inc", admin=("carol", ADMIN_PASSWORD))
    app = domain_cli(
        server,
        "clients",
        "apps",
        "create",
        "--name",
        "Clients CLI",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--allow-scope",
        "openid",
        "--allow-scope",
        "profile",
        "--allow-scope",
        "offline_access",
    )
    return {"domain": domain, "app": app}


def test_login_call_and_logout_against_a_domains_issuer(
    server: Server, acme: dict[str, Any], tmp_path: Path
) -> None:
    issuer = acme["domain"]["issuer"]
    assert issuer == f"{server.base_url}/domains/clients"
    client_id = acme["app"]["client_id"]
    env = client_env(tmp_path)
    login = LoginProcess(
        env,
        *("--issuer", issuer, "--client-id", client_id, "--scope", "offline_access"),
        *("--json", "--no-dpop"),
    )
    url = login.url()
    assert url.startswith(f"{issuer}/oauth2/v1/authorize?")
    assert "You can close this tab" in loopback_sign_in(issuer, url, "carol", ADMIN_PASSWORD).text
    code, out, err = login.finish()
    assert code == 0, err
    summary = json.loads(out.partition("\n")[2])
    assert summary["subject"] == acme["domain"]["admin"]["id"]
    assert summary["refresh_token"] is True
    assert summary["token_type"] == "Bearer"

    who = ("--issuer", issuer, "--client-id", client_id)
    called = tessera(env, "call", "GET", f"{issuer}/oauth2/v1/userinfo", *who, "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["body"]["sub"] == acme["domain"]["admin"]["id"]

    token = tessera(env, "token", *who, "--decode", "--json")
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["claims"]["iss"] == issuer
    # The bearer token works at its domain from any client, and is nothing to the default one.
    raw = json.loads(tessera(env, "token", *who, "--json").stdout)["access_token"]
    bearer = {"Authorization": f"Bearer {raw}"}
    here = httpx.get(f"{issuer}/oauth2/v1/userinfo", headers=bearer)
    assert here.status_code == 200, here.text
    elsewhere = httpx.get(f"{server.base_url}/oauth2/v1/userinfo", headers=bearer)
    assert elsewhere.status_code == 401

    # After logout the same request is refused: the token was revoked at the domain.
    out_ = tessera(env, "logout", *who, "--json")
    assert out_.returncode == 0, out_.stderr
    revoked = httpx.get(f"{issuer}/oauth2/v1/userinfo", headers=bearer)
    assert revoked.status_code == 401
