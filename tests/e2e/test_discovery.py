"""`make run` serves discovery and a JWKS whose keys verify what the server signs."""

from __future__ import annotations

import httpx

from tests.support.server import Server


def test_discovery_names_the_configured_issuer_exactly(server: Server) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = httpx.get(server.base_url + path).json()
        assert doc["issuer"] == server.issuer
        assert doc["jwks_uri"] == server.issuer + "/oauth2/v1/keys"
        assert doc["response_types_supported"] == ["code"]


def test_jwks_publishes_next_and_active_keys_of_both_algorithms(server: Server) -> None:
    keys = httpx.get(server.base_url + "/oauth2/v1/keys").json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "RS256", "RS256"]
    for key in keys:
        assert "d" not in key and "p" not in key  # never a private part
        assert key["use"] == "sig" and key["kid"]


def test_health_endpoints(server: Server) -> None:
    assert httpx.get(server.base_url + "/health/live").json() == {"status": "ok"}
    assert httpx.get(server.base_url + "/health/ready").json()["database"] == "ok"


def test_the_jwks_verifies_what_the_server_signs(server: Server) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    app = server.demo["confidential_app"]
    token = httpx.post(f"{server.base_url}/oauth2/v1/token",
                       auth=(app["client_id"], app["client_secret"]),
                       data={"grant_type": "client_credentials"}).json()["access_token"]
    keys = KeySet.import_key_set(httpx.get(server.base_url + "/oauth2/v1/keys").json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["iss"] == server.issuer
    assert decoded.claims["sub"] == app["client_id"]
