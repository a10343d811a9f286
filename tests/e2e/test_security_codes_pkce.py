"""docs/security.md rules 11-15: authorization codes and PKCE.

alice signs in once per module and consents to the demo apps; each test then gets fresh codes
from the authorization endpoint and redeems them at the token endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.flow import (
    Browser,
    Pkce,
    code_from,
    code_grant,
    code_params,
    demo_app,
    demo_auth,
    query_of,
    race,
    token_request,
)
from tests.support.server import Server, start_server

ALICE = ("alice", "Wonderland-Demo-2026")
STATE = "st-codes"
CODE_TTL = 5


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Browser]:
    b = signed_in(server)
    try:
        yield b
    finally:
        b.close()


def signed_in(server: Server) -> Browser:
    """A browser where alice is signed in and has consented to both demo apps."""
    b = Browser(server.base_url)
    code_from(b.sign_in_and_authorize(*ALICE, **conf_params(server)))
    response = b.authorize(**pub_params(server, Pkce()))
    if response.status_code == 200:
        response = b.consent(response)
    code_from(response)
    return b


@pytest.fixture(scope="module")
def other_app(server: Server) -> dict[str, Any]:
    """A second confidential app with the same redirect URI as the demo app."""
    return server.cli_json(
        "admin", "apps", "create", "--name", "Another confidential app",
        "--redirect-uri", server.demo["confidential_app"]["redirect_uri"],
        "--allow-scope", "openid", "--allow-scope", "profile",
    )  # fmt: skip


def conf_params(server: Server, **extra: str) -> dict[str, str]:
    scope = "openid profile " + server.demo["resource"]["scope"]
    return {**code_params(demo_app(server), scope=scope, state=STATE), **extra}


def pub_params(server: Server, pkce: Pkce | None, **extra: str) -> dict[str, str]:
    p = server.demo["public_app"]
    params = {
        "response_type": "code",
        "client_id": p["client_id"],
        "redirect_uri": p["redirect_uri"],
        "scope": "openid " + server.demo["resource"]["scope"],
        "state": STATE,
    }
    if pkce is not None:
        params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    params.update(extra)
    return params


def conf_code(server: Server, b: Browser, **extra: str) -> str:
    return code_from(b.authorize(**conf_params(server, **extra)))


def pub_code(server: Server, b: Browser, pkce: Pkce, **extra: str) -> str:
    return code_from(b.authorize(**pub_params(server, pkce, **extra)))


def redeem_conf(server: Server, code: str, **extra: str) -> httpx.Response:
    data = code_grant(demo_app(server), code, **extra)
    return token_request(server.base_url, data, auth=demo_auth(server))


def redeem_pub(server: Server, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    p = server.demo["public_app"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": p["redirect_uri"],
        "client_id": p["client_id"],
        **extra,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return token_request(server.base_url, data)


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == error, body
    assert "access_token" not in body
    assert response.headers["cache-control"] == "no-store"


def introspect(server: Server, token: str) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + "/oauth2/v1/introspect", data={"token": token}, auth=demo_auth(server)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_error_redirect(
    server: Server, response: httpx.Response, redirect_uri: str, error: str
) -> None:
    assert response.status_code == 302, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.split("?")[0] == redirect_uri
    query = query_of(location)
    assert query["error"] == error, query
    assert query["state"] == STATE
    assert query["iss"] == server.issuer
    assert "code" not in query


# --- item 11 -----------------------------------------------------------------------------------


def test_item11_pkce_s256_with_the_right_verifier_succeeds(server: Server, alice: Browser) -> None:
    pkce = Pkce()
    public = redeem_pub(server, pub_code(server, alice, pkce), pkce.verifier)
    assert public.status_code == 200, public.text
    assert public.json()["access_token"]
    pkce = Pkce()  # a confidential app may use PKCE too
    confidential = redeem_conf(
        server, conf_code(server, alice, code_challenge=pkce.challenge, code_challenge_method="S256"),
        code_verifier=pkce.verifier,
    )  # fmt: skip
    assert confidential.status_code == 200, confidential.text


@pytest.mark.parametrize("app", ["public", "confidential"])
@pytest.mark.parametrize(
    "verifier",
    [
        None,
        "wrong-verifier-" + "x" * 40,
        "short",
        "c" * 129,
        "the-challenge-itself",
        "the-verifier-with-a-suffix",
    ],
    ids=[
        "missing",
        "wrong",
        "too-short",
        "too-long",
        "challenge-as-verifier",
        "verifier-plus-suffix",
    ],
)
def test_item11_missing_or_wrong_code_verifier_gets_invalid_grant(
    server: Server, alice: Browser, app: str, verifier: str | None
) -> None:
    pkce = Pkce()
    if verifier == "the-challenge-itself":
        verifier = pkce.challenge  # what a `plain` downgrade would send
    elif verifier == "the-verifier-with-a-suffix":
        verifier = pkce.verifier + "A"
    if app == "public":
        response = redeem_pub(server, pub_code(server, alice, pkce), verifier)
    else:
        code = conf_code(server, alice, code_challenge=pkce.challenge, code_challenge_method="S256")
        extra = {} if verifier is None else {"code_verifier": verifier}
        response = redeem_conf(server, code, **extra)
    assert_oauth_error(response, "invalid_grant")


def test_item11_a_failed_verifier_burns_the_code(server: Server, alice: Browser) -> None:
    pkce = Pkce()
    code = pub_code(server, alice, pkce)
    assert_oauth_error(redeem_pub(server, code, Pkce().verifier), "invalid_grant")
    # An attacker who guessed wrong cannot have the victim's code redeemed afterwards either.
    assert_oauth_error(redeem_pub(server, code, pkce.verifier), "invalid_grant")


# --- item 12 -----------------------------------------------------------------------------------


def test_item12_verifier_for_a_code_issued_without_challenge_gets_invalid_grant(
    server: Server, alice: Browser
) -> None:
    code = conf_code(server, alice)  # no code_challenge
    assert_oauth_error(redeem_conf(server, code, code_verifier=Pkce().verifier), "invalid_grant")


@pytest.mark.parametrize("app", ["public", "confidential"])
@pytest.mark.parametrize(
    "challenge",
    ["plain", "no-method", "lowercase-s256", "unknown-method", "malformed-challenge"],
)
def test_item12_plain_and_other_challenge_methods_are_refused(
    server: Server, alice: Browser, app: str, challenge: str
) -> None:
    pkce = Pkce()
    values = {
        "plain": {"code_challenge": pkce.verifier, "code_challenge_method": "plain"},
        "no-method": {"code_challenge": pkce.verifier},  # RFC 7636 defaults to plain
        "lowercase-s256": {"code_challenge": pkce.challenge, "code_challenge_method": "s256"},
        "unknown-method": {"code_challenge": pkce.challenge, "code_challenge_method": "S512"},
        "malformed-challenge": {"code_challenge": "a b", "code_challenge_method": "S256"},
    }[challenge]
    if app == "public":
        params = pub_params(server, None, **values)
        redirect_uri = server.demo["public_app"]["redirect_uri"]
    else:
        params = conf_params(server, **values)
        redirect_uri = demo_app(server)["redirect_uri"]
    response = alice.authorize(**params)
    assert_error_redirect(server, response, redirect_uri, "invalid_request")


def test_item12_public_clients_must_send_a_challenge(server: Server, alice: Browser) -> None:
    response = alice.authorize(**pub_params(server, None))
    assert_error_redirect(
        server, response, server.demo["public_app"]["redirect_uri"], "invalid_request"
    )
    # Nor can a public app skip PKCE at the token endpoint for a code that had a challenge.
    pkce = Pkce()
    assert_oauth_error(redeem_pub(server, pub_code(server, alice, pkce), None), "invalid_grant")


def test_item12_metadata_offers_only_s256(server: Server) -> None:
    doc = httpx.get(server.base_url + "/.well-known/openid-configuration").json()
    assert doc["code_challenge_methods_supported"] == ["S256"]


# --- item 13 -----------------------------------------------------------------------------------


def test_item13_a_code_works_once_and_a_replay_revokes_its_tokens(
    server: Server, alice: Browser
) -> None:
    code = conf_code(server, alice)
    first = redeem_conf(server, code)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert introspect(server, tokens["access_token"])["active"] is True
    assert introspect(server, tokens["refresh_token"])["active"] is True

    assert_oauth_error(redeem_conf(server, code), "invalid_grant")

    assert introspect(server, tokens["access_token"]) == {"active": False}
    assert introspect(server, tokens["refresh_token"]) == {"active": False}
    # The resource server we run (userinfo) answers 401.
    userinfo = httpx.get(
        server.base_url + "/oauth2/v1/userinfo",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
    )
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["www-authenticate"]
    refreshed = token_request(
        server.base_url,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=demo_auth(server),
    )
    assert_oauth_error(refreshed, "invalid_grant")


def test_item13_a_replay_by_the_public_app_revokes_too(server: Server, alice: Browser) -> None:
    pkce = Pkce()
    code = pub_code(server, alice, pkce)
    first = redeem_pub(server, code, pkce.verifier)
    assert first.status_code == 200, first.text
    assert_oauth_error(redeem_pub(server, code, pkce.verifier), "invalid_grant")
    assert introspect(server, first.json()["access_token"]) == {"active": False}


def test_item13_parallel_redemptions_of_one_code_give_exactly_one_success(
    server: Server, alice: Browser
) -> None:
    n = 20
    code = conf_code(server, alice)
    data = code_grant(demo_app(server), code)
    responses = race(
        n,
        lambda client: client.post(
            server.base_url + "/oauth2/v1/token", data=data, auth=demo_auth(server)
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == n - 1, statuses
    for r in responses:
        if r.status_code == 400:
            assert r.json()["error"] == "invalid_grant"


# --- item 14 -----------------------------------------------------------------------------------


def test_item14_a_code_redeemed_by_another_client_gets_invalid_grant(
    server: Server, alice: Browser, other_app: dict[str, Any]
) -> None:
    code = conf_code(server, alice, scope="openid profile")
    stolen = token_request(
        server.base_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": demo_app(server)["redirect_uri"],
        },
        auth=(other_app["client_id"], other_app["client_secret"]),
    )
    assert_oauth_error(stolen, "invalid_grant")
    # The public app (no secret) cannot redeem the confidential app's code either.
    code = conf_code(server, alice)
    p = server.demo["public_app"]
    as_public = token_request(
        server.base_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": p["client_id"],
            "redirect_uri": demo_app(server)["redirect_uri"],
            "code_verifier": Pkce().verifier,
        },
    )
    assert_oauth_error(as_public, "invalid_grant")
    # And a public app's code is not the confidential app's.
    pkce = Pkce()
    code = pub_code(server, alice, pkce)
    as_confidential = redeem_conf(
        server, code, redirect_uri=p["redirect_uri"], code_verifier=pkce.verifier
    )
    assert_oauth_error(as_confidential, "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/other",
        "http://127.0.0.1:8081/callback",
        "https://127.0.0.1:8080/callback",
    ],
)
def test_item14_a_code_redeemed_with_another_redirect_uri_gets_invalid_grant(
    server: Server, alice: Browser, redirect_uri: str
) -> None:
    code = conf_code(server, alice)
    assert_oauth_error(redeem_conf(server, code, redirect_uri=redirect_uri), "invalid_grant")


def test_item14_a_loopback_code_redeemed_with_another_port_gets_invalid_grant(
    server: Server, alice: Browser
) -> None:
    pkce = Pkce()
    code = pub_code(server, alice, pkce, redirect_uri="http://127.0.0.1:5000/callback")
    response = redeem_pub(
        server, code, pkce.verifier, redirect_uri="http://127.0.0.1:5001/callback"
    )
    assert_oauth_error(response, "invalid_grant")


def test_item14_a_code_after_its_lifetime_gets_invalid_grant(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = start_server(
        Path(tmp_path_factory.mktemp("idp-code-ttl")),
        extra_env={"TESSERA_CODE_TTL": str(CODE_TTL)},
    )
    b = Browser(srv.base_url)
    try:
        code_from(b.sign_in_and_authorize(*ALICE, **conf_params(srv)))
        fresh = conf_code(srv, b)
        stale = conf_code(srv, b)
        assert redeem_conf(srv, fresh).status_code == 200  # within its lifetime it works
        # The stale code was issued before this sleep starts. The expiry rule itself, to the
        # second, is tested on the injected clock in tests/unit/oauth/test_authorize.py; this
        # test checks that the server honours TESSERA_CODE_TTL (5 s at least).
        time.sleep(CODE_TTL + 0.2)
        assert_oauth_error(redeem_conf(srv, stale), "invalid_grant")
    finally:
        b.close()
        srv.stop()


# --- item 15 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response_type",
    [
        "token",
        "id_token",
        "id_token token",
        "code token",
        "code id_token",
        "code id_token token",
        "token code",
        "TOKEN",
    ],
)
def test_item15_response_types_returning_tokens_get_unsupported_response_type(
    server: Server, alice: Browser, response_type: str
) -> None:
    # alice is signed in and has consented: nothing but the error may come back.
    response = alice.authorize(**conf_params(server, response_type=response_type, nonce="n"))
    assert_error_redirect(
        server, response, demo_app(server)["redirect_uri"], "unsupported_response_type"
    )
    location = response.headers["location"]
    assert "#" not in location
    assert "access_token" not in location and "id_token=" not in location


def test_item15_password_grant_gets_unsupported_grant_type(server: Server) -> None:
    data = {"grant_type": "password", "username": ALICE[0], "password": ALICE[1], "scope": "openid"}
    with_auth = token_request(server.base_url, data, auth=demo_auth(server))
    assert_oauth_error(with_auth, "unsupported_grant_type")
    without_auth = token_request(server.base_url, data)
    assert without_auth.status_code == 400
    assert without_auth.json()["error"] == "unsupported_grant_type"
    public = token_request(
        server.base_url, {**data, "client_id": server.demo["public_app"]["client_id"]}
    )
    assert_oauth_error(public, "unsupported_grant_type")
    implicit = token_request(server.base_url, {"grant_type": "implicit"}, auth=demo_auth(server))
    assert_oauth_error(implicit, "unsupported_grant_type")


def test_item15_metadata_offers_neither_password_nor_implicit(server: Server) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = httpx.get(server.base_url + path).json()
        assert "password" not in doc["grant_types_supported"]
        assert "implicit" not in doc["grant_types_supported"]
        assert doc["response_types_supported"] == ["code"]
