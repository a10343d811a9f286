"""DPoP server nonces (RFC 9449 §8, §9) over real HTTP, on a server with `TESSERA_DPOP_NONCE`
(every proof then needs the server's current nonce). At the token and PAR endpoints a proof
without it gets 400 `use_dpop_nonce` (§8); at userinfo, 401 with a `DPoP` challenge of
`error="use_dpop_nonce"` (§9); each time with a `DPoP-Nonce` header. The retry with that nonce
succeeds; a made-up nonce is refused like a missing one. The nonce rules themselves:
tests/unit/test_dpop_proof.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.dpop import (
    client_credentials,
    make_proof,
    new_key,
    par_url,
    post_token,
    token_url,
    userinfo_url,
)
from tests.support.flow import basic_auth, code_grant, user_code
from tests.support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain, with DPoP server nonces required."""
    env = {"TESSERA_DPOP_NONCE": "true"}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as srv:
        yield srv


def made_up(nonce: str) -> str:
    """A nonce of the current window (`<window>.<mac>`) with a MAC the server never made."""
    window, _, mac = nonce.partition(".")
    return f"{window}.{'A' * len(mac)}"


def asks_for_a_nonce(response: httpx.Response) -> str:
    """§8: 400 `use_dpop_nonce` with the nonce to use next; the nonce."""
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "use_dpop_nonce"
    return response.headers["dpop-nonce"]


def test_the_token_endpoint(server: Server) -> None:
    """The retry with the nonce succeeds and gets the next one; a request without DPoP is
    not asked for a nonce."""
    key, url = new_key(), token_url(server)
    nonce = asks_for_a_nonce(client_credentials(server, make_proof(key, "POST", url)))
    again = client_credentials(server, make_proof(key, "POST", url, nonce=nonce))
    assert again.status_code == 200, again.text
    assert again.json()["token_type"] == "DPoP" and again.headers["dpop-nonce"]
    forged = client_credentials(server, make_proof(key, "POST", url, nonce=made_up(nonce)))
    assert asks_for_a_nonce(forged)
    assert client_credentials(server, None).json()["token_type"] == "Bearer"


def test_the_par_endpoint(server: Server) -> None:
    app = server.demo["confidential_app"]
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": "openid",
    }
    key, url = new_key(), par_url(server)

    def par(proof: str) -> httpx.Response:
        headers = {"DPoP": proof}
        return httpx.post(url, data=params, auth=basic_auth(app), headers=headers, timeout=30)

    nonce = asks_for_a_nonce(par(make_proof(key, "POST", url)))
    pushed = par(make_proof(key, "POST", url, nonce=nonce))
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["request_uri"] and pushed.headers["dpop-nonce"]
    assert asks_for_a_nonce(par(make_proof(key, "POST", url, nonce=made_up(nonce))))
    assert asks_for_a_nonce(par(make_proof(key, "POST", url, nonce="made-up")))


def test_userinfo(server: Server) -> None:
    app, alice = server.demo["confidential_app"], server.demo["user"]
    code = user_code(server.base_url, alice["username"], alice["password"], app, scope="openid")
    key, url = new_key(), userinfo_url(server)
    nonce = asks_for_a_nonce(client_credentials(server, make_proof(key, "POST", token_url(server))))
    proof = make_proof(key, "POST", token_url(server), nonce=nonce)
    issued = post_token(server, code_grant(app, code), proof)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    def get(nonce: str | None) -> httpx.Response:
        proof = make_proof(key, "GET", url, access_token=token, nonce=nonce)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        return httpx.get(url, headers=headers, timeout=30)

    def refused(response: httpx.Response) -> str:
        """§9: 401, the DPoP challenge with `use_dpop_nonce`, and the nonce to use next."""
        assert response.status_code == 401, response.text
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("DPoP ") and 'error="use_dpop_nonce"' in challenge, challenge
        return response.headers["dpop-nonce"]

    nonce = refused(get(None))
    answer = get(nonce)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == alice["sub"] and answer.headers["dpop-nonce"]
    assert refused(get(made_up(nonce)))
    assert refused(get("made-up"))
