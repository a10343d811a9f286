"""The authorization code flow of a confidential app, end to end over real HTTP.

The seed's steps: the user signs in and consents, the app receives a code (with `state` and
`iss`, RFC 9207), exchanges it with its secret (RFC 6749 §2.3.1, both methods) for an RFC 9068
access token, an OIDC ID token and a refresh token; calls userinfo; refreshes (rotation, RFC 9700
§4.14); revokes (RFC 7009) and sees introspection (RFC 7662) answer inactive.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.flow import (
    Browser,
    basic_auth,
    code_from,
    code_grant,
    exchange_code,
    query_of,
    token_request,
)
from tests.support.server import Server, running_server

GRACE_SECONDS = 0.5
STATE = "state-Zx9_q"
NONCE = "nonce-4f1a"

_usernames = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain with a short refresh grace window, so a replay test need not wait 2 s."""
    grace = {"TESSERA_REFRESH_GRACE_SECONDS": str(GRACE_SECONDS)}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=grace) as srv:
        yield srv


# --- helpers -----------------------------------------------------------------------------------


def app(server: Server) -> dict[str, str]:
    return server.demo["confidential_app"]


def authorize_params(server: Server, **extra: str) -> dict[str, str]:
    demo = server.demo
    return {
        "response_type": "code",
        "client_id": demo["confidential_app"]["client_id"],
        "redirect_uri": demo["confidential_app"]["redirect_uri"],
        "scope": "openid profile " + demo["resource"]["scope"],
        "state": STATE,
        "nonce": NONCE,
        **extra,
    }


def alice_code(server: Server, browser: Browser, **extra: str) -> str:
    alice = server.demo["user"]
    response = browser.sign_in_and_authorize(
        alice["username"], alice["password"], **authorize_params(server, **extra)
    )
    return code_from(response)


def alice_tokens(server: Server, browser: Browser) -> dict[str, Any]:
    return exchange_code(server.base_url, app(server), alice_code(server, browser))


def refresh(server: Server, refresh_token: str) -> httpx.Response:
    return token_request(
        server.base_url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=basic_auth(app(server)),
    )


def introspect(server: Server, token: str, **extra: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": token, **extra},
        auth=basic_auth(app(server)),
    )
    assert response.status_code == 200, response.text
    return response.json()


def new_user(server: Server) -> tuple[str, str]:
    """A user who has never consented to anything."""
    username = f"reader{next(_usernames)}"
    password = "Correct-Horse-Battery-7431"
    server.cli_json("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    return username, password


def verify_jwt(server: Server, token: str, algorithms: list[str]) -> jwt.Token:
    keys = KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())
    return jwt.decode(token, keys, algorithms=algorithms)


def half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6: at_hash for an RS256 ID token."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def assert_token_response(body: dict[str, Any]) -> None:
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert {"access_token", "refresh_token", "id_token", "scope"} <= set(body)


# --- the flow ----------------------------------------------------------------------------------


def test_user_signs_in_consents_and_the_app_receives_a_code_with_state_and_iss(
    server: Server, browser: Browser
) -> None:
    username, password = new_user(server)

    login_page = browser.authorize(**authorize_params(server))
    assert login_page.status_code == 200
    assert 'name="password"' in login_page.text

    after_login = browser.login(login_page, username, password)
    assert after_login.status_code == 303
    consent_page = browser.follow(after_login)
    assert consent_page.status_code == 200
    assert 'value="allow"' in consent_page.text
    assert "Integration client (demo)" in consent_page.text  # the page names the app

    redirect = browser.consent(consent_page)
    assert redirect.status_code == 303
    location = redirect.headers["location"]
    assert location.startswith(app(server)["redirect_uri"] + "?")
    query = query_of(location)
    assert query["state"] == STATE
    assert query["iss"] == server.issuer
    assert len(query["code"]) >= 43  # 256 bits, base64url


def test_consent_is_remembered_so_a_second_authorization_skips_the_consent_page(
    server: Server, browser: Browser
) -> None:
    username, password = new_user(server)
    first = browser.sign_in_and_authorize(username, password, **authorize_params(server))
    code_from(first)

    second = browser.authorize(**authorize_params(server, state="second"))
    assert second.status_code == 302, second.text[:300]
    query = query_of(second.headers["location"])
    assert query["code"] and query["code"] != query_of(first.headers["location"])["code"]
    assert query["state"] == "second"
    assert query["iss"] == server.issuer


def test_code_exchange_with_client_secret_basic(server: Server, browser: Browser) -> None:
    code = alice_code(server, browser)
    response = token_request(
        server.base_url, code_grant(app(server), code), auth=basic_auth(app(server))
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert_token_response(body)
    assert body["scope"].split() == ["openid", "profile", "urn:opc:resource:consumer::all"]


def test_code_exchange_with_client_secret_post(server: Server, browser: Browser) -> None:
    code = alice_code(server, browser)
    response = token_request(
        server.base_url,
        code_grant(
            app(server),
            code,
            client_id=app(server)["client_id"],
            client_secret=app(server)["client_secret"],
        ),
    )
    assert response.status_code == 200, response.text
    assert_token_response(response.json())


def test_access_token_is_an_rfc9068_jwt_verified_with_the_published_keys(
    server: Server, browser: Browser
) -> None:
    before = int(time.time())
    body = alice_tokens(server, browser)
    token = verify_jwt(server, body["access_token"], ["ES256", "RS256"])
    header, claims = token.header, token.claims

    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert claims["iss"] == server.issuer
    assert claims["aud"] == server.demo["resource"]["audience"]
    assert claims["sub"] == server.demo["user"]["sub"]
    assert claims["user_id"] == server.demo["user"]["sub"]
    assert claims["client_id"] == app(server)["client_id"]
    assert claims["scope"].split() == ["openid", "profile", "urn:opc:resource:consumer::all"]
    assert claims["sub_type"] == "user"
    assert claims["user_displayname"] == "Alice Example"
    assert claims["exp"] - claims["iat"] == 3600
    assert before - 5 <= claims["iat"] <= time.time() + 5
    assert claims["nbf"] <= claims["iat"]
    assert claims["jti"]
    assert claims["sid"]
    assert isinstance(claims["auth_time"], int)
    assert claims["auth_time"] <= claims["iat"]


def test_id_token_is_rs256_for_the_app_with_nonce_and_at_hash(
    server: Server, browser: Browser
) -> None:
    body = alice_tokens(server, browser)
    id_token = verify_jwt(server, body["id_token"], ["RS256"])
    access = verify_jwt(server, body["access_token"], ["ES256"])
    claims = id_token.claims

    assert id_token.header["alg"] == "RS256"
    assert claims["iss"] == server.issuer
    assert claims["aud"] == app(server)["client_id"]
    assert claims["sub"] == server.demo["user"]["sub"]
    assert claims["nonce"] == NONCE
    assert claims["at_hash"] == half_hash(body["access_token"])
    assert claims["auth_time"] == access.claims["auth_time"]
    assert claims["exp"] > claims["iat"] >= claims["auth_time"]
    assert claims["name"] == "Alice Example"  # the profile scope
    assert claims["preferred_username"] == "alice"


def test_userinfo_answers_the_bearer_of_the_access_token(server: Server, browser: Browser) -> None:
    body = alice_tokens(server, browser)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    for response in (
        httpx.get(f"{server.base_url}/oauth2/v1/userinfo", headers=bearer),
        httpx.post(f"{server.base_url}/oauth2/v1/userinfo", headers=bearer),
    ):
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sub": server.demo["user"]["sub"],
            "name": "Alice Example",
            "preferred_username": "alice",
        }
    anonymous = httpx.get(f"{server.base_url}/oauth2/v1/userinfo")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


def test_refresh_gives_new_tokens_and_the_old_refresh_token_dies_after_the_grace_window(
    server: Server, browser: Browser
) -> None:
    first = alice_tokens(server, browser)

    rotated = refresh(server, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 3600
    assert second["scope"] == first["scope"]
    new_claims = verify_jwt(server, second["access_token"], ["ES256"]).claims
    old_claims = verify_jwt(server, first["access_token"], ["ES256"]).claims
    assert new_claims["sid"] == old_claims["sid"]  # the same grant
    assert new_claims["sub"] == server.demo["user"]["sub"]
    assert introspect(server, first["refresh_token"]) == {"active": False}
    assert introspect(server, second["refresh_token"])["active"] is True

    time.sleep(GRACE_SECONDS + 0.2)
    replay = refresh(server, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 9700 §4.14.2: the replay revoked the whole family.
    assert refresh(server, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(server, second["access_token"]) == {"active": False}


def test_revoking_the_refresh_token_makes_it_and_the_grants_access_tokens_inactive(
    server: Server, browser: Browser
) -> None:
    first = alice_tokens(server, browser)
    rotated = refresh(server, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert introspect(server, first["access_token"])["active"] is True
    assert introspect(server, second["access_token"])["active"] is True

    revoked = httpx.post(
        f"{server.base_url}/oauth2/v1/revoke",
        data={"token": second["refresh_token"], "token_type_hint": "refresh_token"},
        auth=basic_auth(app(server)),
    )
    assert revoked.status_code == 200, revoked.text

    assert introspect(server, second["refresh_token"]) == {"active": False}
    assert introspect(server, first["access_token"]) == {"active": False}
    assert introspect(server, second["access_token"]) == {"active": False}
    assert refresh(server, second["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = httpx.get(
        f"{server.base_url}/oauth2/v1/userinfo",
        headers={"Authorization": f"Bearer {second['access_token']}"},
    )
    assert userinfo.status_code == 401


def test_per_app_access_token_ttl_sets_expires_in(server: Server, browser: Browser) -> None:
    short = server.cli_json(
        "admin", "apps", "create",
        "--name", "Short-lived tokens",
        "--redirect-uri", "https://app.example.test/cb",
        "--allow-scope", "openid",
        "--allow-scope", server.demo["resource"]["scope"],
        "--access-token-ttl", "120",
    )  # fmt: skip
    alice = server.demo["user"]
    response = browser.sign_in_and_authorize(
        alice["username"],
        alice["password"],
        response_type="code",
        client_id=short["client_id"],
        redirect_uri="https://app.example.test/cb",
        scope="openid " + server.demo["resource"]["scope"],
        state=STATE,
    )
    assert urlsplit(response.headers["location"]).netloc == "app.example.test"
    code = code_from(response)
    body = exchange_code(
        server.base_url, {**short, "redirect_uri": "https://app.example.test/cb"}, code
    )
    assert body["expires_in"] == 120
    claims = verify_jwt(server, body["access_token"], ["ES256"]).claims
    assert claims["exp"] - claims["iat"] == 120
