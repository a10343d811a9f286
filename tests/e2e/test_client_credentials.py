"""The client credentials grant (RFC 6749 §4.4) over real HTTP, and what the token endpoint
refuses around it: public apps, bad secrets (§5.2: 401 with `WWW-Authenticate`), scopes the app
may not have, and the password grant (RFC 9700 §2.4)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.flow import token_request
from tests.support.server import Server

RESOURCE_SCOPE = "urn:opc:resource:consumer::all"


def confidential(server: Server) -> tuple[str, str]:
    app = server.demo["confidential_app"]
    return (app["client_id"], app["client_secret"])


def verified_claims(server: Server, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
    assert decoded.header["typ"] == "at+jwt"
    return decoded.claims


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(
            {"scope": "https://integration.tessera.test:443" + RESOURCE_SCOPE}, id="oracle-scope"
        ),
        pytest.param(
            {"scope": RESOURCE_SCOPE, "resource": "https://integration.tessera.test"}, id="rfc8707"
        ),
    ],
)
def test_client_credentials_token_names_the_app_as_a_client_subject(
    server: Server, params: dict[str, str]
) -> None:
    client_id, _ = confidential(server)
    response = token_request(
        server.base_url, {"grant_type": "client_credentials", **params}, auth=confidential(server)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == RESOURCE_SCOPE
    assert "refresh_token" not in body and "id_token" not in body

    claims = verified_claims(server, body["access_token"])
    assert claims["iss"] == server.issuer
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["sub_type"] == "client"
    assert claims["aud"] == server.demo["resource"]["audience"]
    assert claims["scope"] == RESOURCE_SCOPE
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 30
    assert "user_id" not in claims and "user_displayname" not in claims


def test_client_credentials_with_client_secret_post(server: Server) -> None:
    client_id, secret = confidential(server)
    response = token_request(
        server.base_url,
        {
            "grant_type": "client_credentials",
            "scope": server.demo["resource"]["scope"],
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.text
    assert verified_claims(server, response.json()["access_token"])["sub_type"] == "client"


def test_public_app_cannot_use_client_credentials(server: Server) -> None:
    response = token_request(
        server.base_url,
        {
            "grant_type": "client_credentials",
            "scope": server.demo["resource"]["scope"],
            "client_id": server.demo["public_app"]["client_id"],
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unauthorized_client"
    assert "access_token" not in response.json()


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_wrong_client_secret_is_401_invalid_client_with_www_authenticate(
    server: Server, method: str
) -> None:
    client_id, secret = confidential(server)
    wrong = secret + "x"
    data = {"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"]}
    if method == "client_secret_basic":
        response = token_request(server.base_url, data, auth=(client_id, wrong))
    else:
        response = token_request(
            server.base_url, {**data, "client_id": client_id, "client_secret": wrong}
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"]
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    "scope",
    [
        "https://integration.tessera.test:443urn:tessera:integration:monitor",  # not allowed
        "https://integration.tessera.test:443urn:no:such:scope",  # does not exist
        "openid",  # needs a user
    ],
)
def test_a_scope_the_app_is_not_allowed_is_invalid_scope(server: Server, scope: str) -> None:
    response = token_request(
        server.base_url,
        {"grant_type": "client_credentials", "scope": scope},
        auth=confidential(server),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


def test_password_grant_is_unsupported_and_not_in_metadata(server: Server) -> None:
    alice = server.demo["user"]
    response = token_request(
        server.base_url,
        {"grant_type": "password", "username": alice["username"], "password": alice["password"]},
        auth=confidential(server),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"

    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = httpx.get(server.base_url + path).json()
        assert "client_credentials" in metadata["grant_types_supported"]
        assert "password" not in metadata["grant_types_supported"]
