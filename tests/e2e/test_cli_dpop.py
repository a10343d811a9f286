"""`tessera login` and `tessera call` with DPoP (RFC 9449) against the real identity domain and
the real integration service, the user's browser played by httpx (tests/support/flow.py).

The identity domain advertises `dpop_signing_alg_values_supported` and, in this module, wants
server nonces (`TESSERA_DPOP_NONCE=1`): the CLI's first proof at the token endpoint and at
userinfo is answered `use_dpop_nonce` and retried once with the nonce (§8, §9). The token is
bound to the login's key (`cnf.jkt`, `token_type: DPoP` in the 0600 cache); the same token
copied into another HTTP client as a bearer token is refused. `--no-dpop` gives bearer tokens.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tessera.client.tokens import unverified_jwt
from tests.browser.support import Api, LoginProcess, client_env, integration_service, tessera
from tests.support.dpop import make_proof
from tests.support.flow import demo_loopback_sign_in
from tests.support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain, with DPoP server nonces required (RFC 9449 §8)."""
    env = {"TESSERA_DPOP_NONCE": "1"}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The integration service (a `tessera.resource` API) with WHOAMI activated."""
    with integration_service(server, tmp_path_factory.mktemp("integration")) as service:
        yield service


def login(server: Server, env: dict[str, str], *extra: str) -> dict[str, Any]:
    """`tessera login --json` for the demo's public app and the integration scope."""
    process = LoginProcess(
        env,
        *("--issuer", server.issuer, "--client-id", server.demo["public_app"]["client_id"]),
        *("--scope", server.demo["resource"]["scope"], "--json"),
        *extra,
    )
    page = demo_loopback_sign_in(server, process.url())
    assert page.status_code == 200, page.text[:300]
    code, out, err = process.finish()
    assert code == 0, err
    assert "Traceback" not in err
    summary: dict[str, Any] = json.loads(out.partition("\n")[2])
    return summary


def cached(summary: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(summary["cache_file"]).read_text())
    return data


def call(env: dict[str, str], url: str) -> dict[str, Any]:
    done = tessera(env, "call", "GET", url, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_login_binds_the_token_to_the_cached_key_and_call_proves_it(
    server: Server, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    summary = login(server, env)
    assert summary["token_type"] == "DPoP"
    assert summary["pushed_authorization_request"] is True  # dpop_jkt went in the push
    jkt = summary["dpop_jkt"]

    path = Path(summary["cache_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = cached(summary)
    assert entry["tokens"]["token_type"] == "DPoP"
    assert set(entry["dpop_key"]) == {"kty", "crv", "x", "y", "d"}
    access = entry["tokens"]["access_token"]
    assert unverified_jwt(access)[1]["cnf"] == {"jkt": jkt}  # RFC 9449 §6.1

    # Userinfo wants a server nonce: a good proof without one gets the §9 challenge ...
    userinfo = f"{server.issuer}/oauth2/v1/userinfo"
    key = ECKey.import_key(entry["dpop_key"])
    no_nonce = make_proof(key, "GET", userinfo, access_token=access)
    challenged = httpx.get(userinfo, headers={"Authorization": f"DPoP {access}", "DPoP": no_nonce})
    assert challenged.status_code == 401, challenged.text
    assert 'error="use_dpop_nonce"' in challenged.headers["WWW-Authenticate"]
    assert challenged.headers["DPoP-Nonce"]
    # ... which `tessera call` answers: a proof with `ath`, retried once with the nonce.
    answer = call(env, userinfo)
    assert answer["status"] == 200
    assert answer["body"]["sub"] == server.demo["user"]["sub"]

    # The token copied elsewhere: as a bearer token, or as DPoP without a proof, refused.
    for scheme in ("Bearer", "DPoP"):
        stolen = httpx.get(userinfo, headers={"Authorization": f"{scheme} {access}"})
        assert stolen.status_code == 401, (scheme, stolen.text)
        assert "DPoP" in stolen.headers.get("WWW-Authenticate", ""), stolen.headers

    # A refresh is signed with the same key: the new token is bound to it too.
    refreshed = tessera({**env, "TESSERA_CLIENT_REFRESH_MARGIN": "86400"}, "token", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    data = json.loads(refreshed.stdout)
    assert data["refreshed"] is True
    assert data["token_type"] == "DPoP"
    assert data["dpop_jkt"] == jkt
    assert data["access_token"] != access
    assert unverified_jwt(data["access_token"])[1]["cnf"] == {"jkt": jkt}
    assert call(env, userinfo)["status"] == 200

    out = tessera(env, "logout", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["revoked"] is True


def test_call_the_integration_service_with_dpop_and_the_copied_bearer_token_is_refused(
    server: Server, api: Api, tmp_path: Path
) -> None:
    env = client_env(tmp_path)
    summary = login(server, env)
    assert summary["token_type"] == "DPoP"
    answer = call(env, api.url)
    assert answer["status"] == 200, answer
    assert answer["body"]["sub"] == server.demo["user"]["sub"]
    access = cached(summary)["tokens"]["access_token"]
    stolen = httpx.get(api.url, headers={"Authorization": f"Bearer {access}"})
    assert stolen.status_code == 401, stolen.text


def test_no_dpop_gives_a_bearer_token_usable_anywhere(server: Server, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    summary = login(server, env, "--no-dpop")
    assert summary["token_type"] == "Bearer"
    assert summary["dpop_jkt"] is None
    entry = cached(summary)
    assert entry["dpop_key"] is None
    access = entry["tokens"]["access_token"]
    assert "cnf" not in unverified_jwt(access)[1]
    userinfo = f"{server.issuer}/oauth2/v1/userinfo"
    assert call(env, userinfo)["status"] == 200
    plain = httpx.get(userinfo, headers={"Authorization": f"Bearer {access}"})
    assert plain.status_code == 200, plain.text
