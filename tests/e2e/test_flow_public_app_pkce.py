"""The authorization code flow of a public (native) app with PKCE, end to end over real HTTP.

RFC 7636 with S256 only (RFC 9700 §2.1.1), a loopback redirect URI whose port may vary
(RFC 8252 §7.3), and client identification by `client_id` alone (RFC 6749 §3.2.1).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.flow import Browser, Pkce, code_from, query_of, token_request
from tests.support.server import Server, free_port

STATE = "pkce-state-81"


@pytest.fixture
def redirect_uri() -> str:
    """The registered `http://127.0.0.1/callback` with the port a native app happened to get."""
    return f"http://127.0.0.1:{free_port()}/callback"


def client_id(server: Server) -> str:
    return server.demo["public_app"]["client_id"]


def authorize_params(server: Server, redirect_uri: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id(server),
        "redirect_uri": redirect_uri,
        "scope": "openid offline_access " + server.demo["resource"]["scope"],
        "state": STATE,
        **extra,
    }


def pkce_code(server: Server, browser: Browser, redirect_uri: str, pkce: Pkce) -> str:
    alice = server.demo["user"]
    response = browser.sign_in_and_authorize(
        alice["username"],
        alice["password"],
        **authorize_params(
            server, redirect_uri, code_challenge=pkce.challenge, code_challenge_method="S256"
        ),
    )
    location = response.headers.get("location", "")
    assert location.startswith(redirect_uri + "?"), (response.status_code, location)
    assert query_of(location)["state"] == STATE
    assert query_of(location)["iss"] == server.issuer
    return code_from(response)


def redeem(server: Server, code: str, redirect_uri: str, **extra: str) -> httpx.Response:
    return token_request(
        server.base_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id(server),
            **extra,
        },
    )


def introspect(server: Server, token: str) -> dict[str, Any]:
    """Introspection is for confidential clients (RFC 7662 §2.1): the demo resource's app asks."""
    confidential = server.demo["confidential_app"]
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": token},
        auth=(confidential["client_id"], confidential["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_error_redirect(
    server: Server, response: httpx.Response, redirect_uri: str, error: str
) -> None:
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == STATE
    assert query["iss"] == server.issuer
    assert "code" not in query


# --- the flow ----------------------------------------------------------------------------------


def test_public_app_with_pkce_s256_on_a_loopback_redirect_with_any_port(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    pkce = Pkce()
    code = pkce_code(server, browser, redirect_uri, pkce)

    exchanged = redeem(server, code, redirect_uri, code_verifier=pkce.verifier)
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert tokens["token_type"] == "Bearer"
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    claims = introspect(server, tokens["access_token"])
    assert claims["active"] is True
    assert claims["client_id"] == client_id(server)
    assert claims["sub"] == server.demo["user"]["sub"]
    assert claims["sub_type"] == "user"

    userinfo = httpx.get(
        f"{server.base_url}/oauth2/v1/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == server.demo["user"]["sub"]


def test_public_app_refreshes_with_client_id_only_and_revokes(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    pkce = Pkce()
    code = pkce_code(server, browser, redirect_uri, pkce)
    first = redeem(server, code, redirect_uri, code_verifier=pkce.verifier).json()

    refreshed = token_request(
        server.base_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": client_id(server),
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert introspect(server, second["access_token"])["active"] is True

    revoked = httpx.post(
        f"{server.base_url}/oauth2/v1/revoke",
        data={"token": second["refresh_token"], "client_id": client_id(server)},
    )
    assert revoked.status_code == 200, revoked.text
    assert introspect(server, second["refresh_token"]) == {"active": False}
    assert introspect(server, second["access_token"]) == {"active": False}
    assert introspect(server, first["access_token"]) == {"active": False}


def test_missing_code_verifier_is_invalid_grant(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    code = pkce_code(server, browser, redirect_uri, Pkce())
    response = redeem(server, code, redirect_uri)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    code = pkce_code(server, browser, redirect_uri, Pkce())
    response = redeem(server, code, redirect_uri, code_verifier=Pkce().verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_public_app_authorize_without_code_challenge_is_an_invalid_request_redirect(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    response = browser.authorize(**authorize_params(server, redirect_uri))
    assert_error_redirect(server, response, redirect_uri, "invalid_request")


def test_plain_code_challenge_method_is_refused(
    server: Server, browser: Browser, redirect_uri: str
) -> None:
    pkce = Pkce()
    for method in ("plain", None):  # an absent method means plain (RFC 7636 §4.3)
        params = authorize_params(server, redirect_uri, code_challenge=pkce.verifier)
        if method:
            params["code_challenge_method"] = method
        response = browser.authorize(**params)
        assert_error_redirect(server, response, redirect_uri, "invalid_request")
