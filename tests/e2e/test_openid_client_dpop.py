"""A certified relying party, panva's `openid-client` (npm, tests/node), gets DPoP-bound tokens
(RFC 9449) from Tessera and calls userinfo with them.

openid-client runs as a public app: a new ES256 key pair, the authorization request pushed with
a DPoP proof (§10.1) or sent with `dpop_jkt` (§10), the code grant with a proof, userinfo with
`Authorization: DPoP` and a proof carrying `ath` (§7.1). This module's identity domain wants
server nonces (`TESSERA_DPOP_NONCE=1`), so openid-client's own `use_dpop_nonce` retry (§8, §9)
is exercised too. The same token as a bearer token is refused, and a public app's refresh token
is bound to the key: a refresh signed by another key is refused.

The node script: tests/node/openid_client_flow.mjs (tests/e2e/test_openid_client.py's), as a
public app with `dpop`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.client.tokens import unverified_jwt
from tests.e2e import test_openid_client as base
from tests.support.flow import Browser, query_of
from tests.support.server import Server, running_server

SCOPE = "openid profile email"
REDIRECT_URI = "http://127.0.0.1:8766/cb"

node = base.node  # the fixture: Node.js 20+ with openid-client installed
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain, with DPoP server nonces required (RFC 9449 §8)."""
    env = {"TESSERA_DPOP_NONCE": "1"}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as srv:
        yield srv


@pytest.fixture
def rp(node: str, server: Server, tmp_path: Path) -> Iterator[base.RelyingParty]:
    """openid-client, discovered, as a new public app of the domain."""
    app = server.cli_json(
        *("admin", "apps", "create", "--name", f"openid-client DPoP app {next(_names)}"),
        *("--public", "--redirect-uri", REDIRECT_URI),
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *(arg for scope in SCOPE.split() for arg in ("--allow-scope", scope)),
    )
    party = base.RelyingParty(node, tmp_path / "node.log")
    try:
        party.app = app  # type: ignore[attr-defined]
        yield party
    finally:
        party.close()


def discover(rp: base.RelyingParty, server: Server) -> dict[str, Any]:
    app = rp.app  # type: ignore[attr-defined]
    found = rp.ok("discover", issuer=server.issuer, client_id=app["client_id"], dpop=True)
    assert "ES256" in found["server"]["dpop_signing_alg_values_supported"]
    return found


def code_flow(
    server: Server, browser: Browser, rp: base.RelyingParty, *, par: bool
) -> tuple[dict[str, Any], str]:
    """Discover, authorize (pushed with a proof, or with dpop_jkt), the user, the code grant
    and userinfo with DPoP; the tokens and the key's thumbprint."""
    jkt = discover(rp, server)["jkt"]
    params = {"redirect_uri": REDIRECT_URI, "scope": SCOPE}
    started = rp.ok("par" if par else "authorize", params=params)
    query = query_of(started["url"])
    if par:
        assert set(query) == {"client_id", "request_uri"}, query
    else:
        assert query["dpop_jkt"] == jkt
    callback = base.user_signs_in_and_consents(server, browser, started["url"])
    assert callback.startswith(REDIRECT_URI + "?"), callback
    done = rp.ok("callback", url=callback)
    tokens = done["tokens"]
    assert tokens["token_type"] == "dpop"  # openid-client lower-cases it
    assert unverified_jwt(tokens["access_token"])[1]["cnf"] == {"jkt": jkt}  # §6.1
    alice = server.demo["user"]
    assert done["claims"]["sub"] == alice["sub"]
    assert done["claims"]["nonce"] == started["nonce"]
    assert done["userinfo"]["sub"] == alice["sub"]  # userinfo accepted the DPoP proof
    assert done["userinfo"]["preferred_username"] == alice["username"]
    return dict(tokens), str(jkt)


def test_openid_client_gets_dpop_bound_tokens_through_par_and_calls_userinfo(
    server: Server, browser: Browser, rp: base.RelyingParty
) -> None:
    tokens, jkt = code_flow(server, browser, rp, par=True)
    userinfo = f"{server.issuer}/oauth2/v1/userinfo"

    # openid-client's protected-resource call: DPoP scheme, proof with ath.
    called = rp.ok("resource", url=userinfo, access_token=tokens["access_token"])
    assert called["status"] == 200, called
    assert called["body"]["sub"] == server.demo["user"]["sub"]

    # The token copied into another client as a bearer token is refused.
    stolen = httpx.get(userinfo, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert stolen.status_code == 401, stolen.text
    assert "DPoP" in stolen.headers.get("WWW-Authenticate", "")

    # A public app's refresh token is bound to the key (§5): the same key refreshes ...
    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])["tokens"]
    assert refreshed["token_type"] == "dpop"
    assert unverified_jwt(refreshed["access_token"])[1]["cnf"] == {"jkt": jkt}
    # ... another key is refused: the proof itself is good, the grant is not the new key's ...
    other = rp.call("refresh", refresh_token=refreshed["refresh_token"], other_key=True)
    assert not other["ok"], other
    assert other["error"]["error"] == "invalid_grant", other["error"]
    assert other["error"]["status"] == 400, other["error"]
    # ... and the refusal did not burn the family: its key still refreshes it.
    again = rp.ok("refresh", refresh_token=refreshed["refresh_token"])["tokens"]
    assert unverified_jwt(again["access_token"])[1]["cnf"] == {"jkt": jkt}


def test_openid_client_binds_the_code_with_dpop_jkt_on_a_plain_request(
    server: Server, browser: Browser, rp: base.RelyingParty
) -> None:
    tokens, _ = code_flow(server, browser, rp, par=False)
    assert tokens["refresh_token"]
