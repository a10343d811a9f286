"""DPoP (RFC 9449) over real HTTP on one server: the token endpoint binds tokens to a good
proof (§5, `cnf.jkt`, `token_type: DPoP`) and refuses each broken one with 400
`invalid_dpop_proof` (§4.3); userinfo takes `Authorization: DPoP` with a proof carrying `ath`
(§7.1) and answers the DPoP challenge (`algs`, `error`) for a bound token sent as Bearer
(§7.2), a missing or wrong `ath`, another key than `cnf.jkt`, and a replayed proof. The many
rules behind these: tests/unit/oauth/test_dpop_*.py."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.support.dpop import (
    client_credentials,
    make_proof,
    new_key,
    par_url,
    post_token,
    thumbprint,
    token_url,
    userinfo_url,
)
from tests.support.flow import (
    Browser,
    Pkce,
    basic_auth,
    code_grant,
    code_params,
    query_of,
    user_code,
)
from tests.support.server import Server

DPOP_ALGS = 'algs="ES256 PS256 RS256 EdDSA"'


def claims(server: Server, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())
    return jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims


def test_a_good_proof_binds_the_token(server: Server) -> None:
    metadata = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "RS256", "EdDSA"]
    key = new_key()
    response = client_credentials(server, make_proof(key, "POST", token_url(server)))
    assert response.status_code == 200, response.text
    assert "dpop-nonce" not in response.headers  # server nonces are off by default
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims(server, body["access_token"])["cnf"] == {"jkt": thumbprint(key)}
    plain = client_credentials(server, None).json()
    assert plain["token_type"] == "Bearer" and "cnf" not in claims(server, plain["access_token"])


def test_each_broken_proof_is_refused(server: Server) -> None:
    key = new_key()
    url = token_url(server)
    replayed = make_proof(key, "POST", url)
    assert client_credentials(server, replayed).status_code == 200
    cases = {
        "wrong htm": make_proof(key, "GET", url),
        "wrong htu": make_proof(key, "POST", par_url(server)),
        "old iat": make_proof(key, "POST", url, iat=time.time() - 600),
        "replayed jti": replayed,
        "bad signature": make_proof(key, "POST", url, signing_key=new_key()),
        "wrong typ": make_proof(key, "POST", url, typ="JWT"),
        "private key in the header": make_proof(key, "POST", url, jwk=key.as_dict(private=True)),
        "not a JWS": "not.a-proof",
    }
    for case, proof in cases.items():
        response = client_credentials(server, proof)
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"] == "invalid_dpop_proof", case
    two = httpx.post(
        url,
        data={"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"]},
        auth=basic_auth(server.demo["confidential_app"]),
        headers=[("DPoP", make_proof(key, "POST", url)), ("DPoP", make_proof(key, "POST", url))],
    )
    assert two.status_code == 400 and two.json()["error"] == "invalid_dpop_proof"


@pytest.fixture(scope="module")
def bound(server: Server) -> tuple[ECKey, str]:
    """Alice's openid token of the demo confidential app, bound to a fresh key."""
    app, alice = server.demo["confidential_app"], server.demo["user"]
    code = user_code(server.base_url, alice["username"], alice["password"], app, scope="openid")
    key = new_key()
    response = post_token(server, code_grant(app, code), make_proof(key, "POST", token_url(server)))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    return key, response.json()["access_token"]


def userinfo(
    server: Server, scheme: str, token: str, proof: str | None, method: str = "GET"
) -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx.request(method, userinfo_url(server), headers=headers, timeout=30)


def test_userinfo_with_a_dpop_bound_token(server: Server, bound: tuple[ECKey, str]) -> None:
    key, token = bound
    url = userinfo_url(server)
    for method in ("GET", "POST"):
        proof = make_proof(key, method, url, access_token=token)
        response = userinfo(server, "DPoP", token, proof, method)
        assert response.status_code == 200, response.text
        assert response.json()["sub"]


def challenge_of(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return response.headers["www-authenticate"]


def test_userinfo_refusals_answer_the_dpop_challenge(
    server: Server, bound: tuple[ECKey, str]
) -> None:
    key, token = bound
    url = userinfo_url(server)
    as_bearer = challenge_of(userinfo(server, "Bearer", token, None))
    assert as_bearer.startswith('DPoP realm="tessera", error="invalid_token"')
    assert as_bearer.endswith(DPOP_ALGS) and "Bearer" not in as_bearer
    no_ath = challenge_of(userinfo(server, "DPoP", token, make_proof(key, "GET", url)))
    assert 'error="invalid_dpop_proof"' in no_ath and "ath" in no_ath
    wrong_ath = make_proof(key, "GET", url, access_token=token + "x")
    assert 'error="invalid_dpop_proof"' in challenge_of(userinfo(server, "DPoP", token, wrong_ath))
    other_key = make_proof(new_key(), "GET", url, access_token=token)
    other_answer = challenge_of(userinfo(server, "DPoP", token, other_key))
    assert 'error="invalid_token"' in other_answer
    missing = challenge_of(userinfo(server, "DPoP", token, None))
    assert 'error="invalid_dpop_proof"' in missing
    once = make_proof(key, "GET", url, access_token=token)
    assert userinfo(server, "DPoP", token, once).status_code == 200
    assert 'error="invalid_dpop_proof"' in challenge_of(userinfo(server, "DPoP", token, once))


def test_userinfo_without_a_token_offers_both_schemes(server: Server) -> None:
    """RFC 9449 §7.2 Figure 17: no error information, a Bearer and a DPoP challenge."""
    response = httpx.get(userinfo_url(server), timeout=30)
    assert challenge_of(response) == f'Bearer realm="tessera", DPoP realm="tessera", {DPOP_ALGS}'


def test_a_proof_at_the_par_endpoint(server: Server) -> None:
    """RFC 9449 §10.1: checked as at the token endpoint (`htu` the PAR endpoint); with a
    `dpop_jkt` of another key the push is refused."""
    app = server.demo["confidential_app"]
    url = par_url(server)
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": "openid",
    }
    key = new_key()

    def par(proof: str, **extra: str) -> httpx.Response:
        return httpx.post(
            url, data={**params, **extra}, auth=basic_auth(app), headers={"DPoP": proof}
        )

    assert par(make_proof(key, "POST", url)).status_code == 201
    wrong_htu = par(make_proof(key, "POST", token_url(server)))
    assert wrong_htu.status_code == 400 and wrong_htu.json()["error"] == "invalid_dpop_proof"
    other = par(make_proof(key, "POST", url), dpop_jkt=thumbprint(new_key()))
    assert other.status_code == 400 and other.json()["error"] == "invalid_dpop_proof"


def test_a_public_apps_refresh_token_needs_its_key(server: Server) -> None:
    """RFC 9449 §5: the demo public app's refresh family is bound to the key that redeemed the
    code; another key is refused without burning the token (its holder still refreshes)."""
    app, alice = server.demo["public_app"], server.demo["user"]
    pkce = Pkce()
    code = user_code(
        server.base_url,
        alice["username"],
        alice["password"],
        app,
        scope="openid offline_access",
        code_challenge=pkce.challenge,
        code_challenge_method="S256",
    )
    key, url = new_key(), token_url(server)

    def post(data: dict[str, str], proof: str | None) -> httpx.Response:
        headers = {"DPoP": proof} if proof is not None else {}
        return httpx.post(url, data={"client_id": app["client_id"], **data}, headers=headers)

    first = post(code_grant(app, code, code_verifier=pkce.verifier), make_proof(key, "POST", url))
    assert first.status_code == 200, first.text
    refresh = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    other = post(refresh, make_proof(new_key(), "POST", url))
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    assert post(refresh, None).json()["error"] == "invalid_grant"
    again = post(refresh, make_proof(key, "POST", url))
    assert again.status_code == 200, again.text
    assert claims(server, again.json()["access_token"])["cnf"] == {"jkt": thumbprint(key)}


def test_a_code_bound_with_dpop_jkt_needs_that_key(server: Server) -> None:
    """RFC 9449 §10: `dpop_jkt` at the authorization endpoint binds the code; redeemed with a
    proof of that key it gives a DPoP token of that key. With another key's proof it is
    refused with `invalid_grant`, and the code is spent: the right key cannot use it after."""
    app, alice = server.demo["confidential_app"], server.demo["user"]
    key, url = new_key(), token_url(server)

    def bound_code() -> str:
        return user_code(
            server.base_url,
            alice["username"],
            alice["password"],
            app,
            scope="openid",
            dpop_jkt=thumbprint(key),
        )

    redeemed = post_token(server, code_grant(app, bound_code()), make_proof(key, "POST", url))
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["token_type"] == "DPoP"
    assert claims(server, redeemed.json()["access_token"])["cnf"] == {"jkt": thumbprint(key)}

    stolen = bound_code()
    thief = post_token(server, code_grant(app, stolen), make_proof(new_key(), "POST", url))
    assert thief.status_code == 400 and thief.json()["error"] == "invalid_grant", thief.text
    late = post_token(server, code_grant(app, stolen), make_proof(key, "POST", url))
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant", late.text


def test_a_malformed_dpop_jkt_is_an_error_redirect(server: Server) -> None:
    """RFC 9449 §10: `dpop_jkt` must be a JWK SHA-256 thumbprint (43 base64url characters);
    anything else is `invalid_request`, sent back to the app's redirect URI with its state."""
    app, alice = server.demo["confidential_app"], server.demo["user"]
    browser = Browser(server.base_url)
    try:
        params = code_params(app, scope="openid", state="jkt", dpop_jkt="not a thumbprint")
        answer = browser.sign_in_and_authorize(alice["username"], alice["password"], **params)
    finally:
        browser.close()
    assert answer.status_code in (302, 303), answer.text[:300]
    location = answer.headers["location"]
    assert location.startswith(app["redirect_uri"] + "?"), location
    query = query_of(location)
    assert query["error"] == "invalid_request" and query["state"] == "jkt", query
    assert "code" not in query
