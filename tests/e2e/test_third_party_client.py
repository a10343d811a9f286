"""A third-party OAuth client library runs the whole flow against Tessera, from discovery.

Authlib's `OAuth2Client` (httpx) knows nothing of Tessera but the issuer URL: it reads
`/.well-known/openid-configuration`, builds the authorization URL with PKCE S256, redeems the
code from the callback URL, refreshes, and calls userinfo. Our `Browser` shares nothing with it
but the URLs: it plays the user who signs in and consents.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.flow import Browser
from tests.support.server import Server, free_port


@pytest.fixture
def discovery(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata = OpenIDProviderMetadata(response.json())
    metadata.validate()  # Authlib's own RFC 8414 / OIDC Discovery checks
    assert metadata["issuer"] == server.issuer
    return dict(metadata)


def user_signs_in_and_consents(server: Server, browser: Browser, authorization_url: str) -> str:
    """The user agent's part: open the URL, sign in, allow; return the callback URL."""
    alice = server.demo["user"]
    response = browser.http.get(authorization_url)
    if response.status_code == 200 and 'name="password"' in response.text:
        response = browser.follow(browser.login(response, alice["username"], alice["password"]))
    if response.status_code == 200 and 'value="allow"' in response.text:
        response = browser.consent(response)
    assert response.status_code in (302, 303), response.text[:500]
    return response.headers["location"]


def check_id_token(
    discovery: dict[str, Any], token: dict[str, Any], client_id: str, nonce: str
) -> dict[str, Any]:
    """Verify the ID token's signature with the discovered JWKS and its claims with Authlib."""
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"essential": True, "value": discovery["issuer"]}},
        params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)  # iss, aud, exp, iat, nonce, at_hash, auth_time
    return dict(claims)


def run_flow(
    server: Server,
    browser: Browser,
    discovery: dict[str, Any],
    client: OAuth2Client,
    redirect_uri: str,
) -> None:
    nonce = secrets.token_urlsafe(16)
    code_verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"],
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
        nonce=nonce,
    )
    assert "code_challenge_method=S256" in url

    callback = user_signs_in_and_consents(server, browser, url)
    assert callback.startswith(redirect_uri + "?")

    token = client.fetch_token(
        discovery["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
    )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["expires_at"] > 0  # Authlib understood the response
    id_claims = check_id_token(discovery, token, client.client_id, nonce)
    assert id_claims["sub"] == server.demo["user"]["sub"]

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(discovery["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != first_refresh
    assert client.token["access_token"] == refreshed["access_token"]

    userinfo = client.get(discovery["userinfo_endpoint"])  # Authlib adds the bearer token
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == server.demo["user"]["sub"]
    assert userinfo.json()["preferred_username"] == "alice"


def test_authlib_confidential_client_runs_the_whole_flow_from_discovery(
    server: Server, browser: Browser, discovery: dict[str, Any]
) -> None:
    app = server.demo["confidential_app"]
    with OAuth2Client(
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scope="openid profile " + server.demo["resource"]["scope"],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        run_flow(server, browser, discovery, client, app["redirect_uri"])


def test_authlib_public_client_runs_the_whole_flow_from_discovery(
    server: Server, browser: Browser, discovery: dict[str, Any]
) -> None:
    app = server.demo["public_app"]
    with OAuth2Client(
        client_id=app["client_id"],
        scope="openid profile offline_access " + server.demo["resource"]["scope"],
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        run_flow(server, browser, discovery, client, f"http://127.0.0.1:{free_port()}/callback")
