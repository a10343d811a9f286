"""JWT client authentication over real HTTP (RFC 7523 §2.2, OIDC Core §9) at every endpoint
that authenticates apps: token, introspection, revocation, the revocation feed; the app's
`token_endpoint_auth_method` enforced; keys from `jwks` or a `jwks_uri` (a rotated key picked
up); a `jti` used once across two nodes on one database. docs/client-authentication.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from tests.support.admin import admin_client, console_token
from tests.support.jwks import JwksEndpoint, public_jwks, serving_jwks
from tests.support.server import Server, running_server, start_server

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(
    client_id: str,
    key: ECKey | RSAKey | OctKey,
    aud: str,
    *,
    alg: str = "ES256",
    kid: str | None = "k1",
    **changes: Any,
) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60}
    claims.update({"jti": uuid.uuid4().hex, **changes})
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    body = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(header, body, key, algorithms=[alg])


def auth_form(value: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def create_app(server: Server, name: str, *options: str) -> dict[str, Any]:
    app: dict[str, Any] = server.cli_json(
        "admin",
        "apps",
        "create",
        "--name",
        f"{name} {uuid.uuid4().hex[:6]}",
        "--grant-type",
        "client_credentials",
        "--allow-scope",
        server.demo["resource"]["scope"],
        *options,
    )
    return app


def token(server: Server, form: dict[str, str], **kw: Any) -> httpx.Response:
    body = {"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"]}
    body.update(form)
    return httpx.post(f"{server.base_url}/oauth2/v1/token", data=body, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain; a rotated key at a jwks_uri is fetched at once (the refetch rate limit
    is tested in tests/unit/oauth/test_client_jwks.py)."""
    env = {"TESSERA_JWKS_REFETCH_INTERVAL": "0"}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1"})


@pytest.fixture(scope="module")
def key_app(server: Server, key: ECKey) -> dict[str, Any]:
    return create_app(
        server,
        "Key app",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks",
        json.dumps(public_jwks(key)),
        "--resource-server-for",
        server.demo["resource"]["audience"],
    )


def test_a_private_key_jwt_app_gets_a_token(
    server: Server, key_app: dict[str, Any], key: ECKey
) -> None:
    client_id = key_app["client_id"]
    assert "client_secret" not in key_app or key_app["client_secret"] is None
    response = token(server, auth_form(assertion(client_id, key, server.issuer)))
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], _server_keys(server)).claims
    assert claims["client_id"] == client_id and claims["sub_type"] == "client"
    # The token endpoint's URL is an accepted audience too (RFC 7523 §3 item 3).
    url_aud = assertion(client_id, key, f"{server.issuer}/oauth2/v1/token")
    assert token(server, auth_form(url_aud)).status_code == 200


def _server_keys(server: Server) -> KeySet:
    return KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("wrong aud", {"aud": "https://elsewhere.example"}),
        ("expired", {"exp": int(time.time()) - 600, "iat": int(time.time()) - 660}),
        ("too far ahead", {"exp": int(time.time()) + 7200}),
        ("no jti", {"jti": None}),
        ("iss is another app", {"iss": "someone-else"}),
    ],
)
def test_assertions_breaking_a_rule_get_invalid_client(
    server: Server, key_app: dict[str, Any], key: ECKey, name: str, changes: dict[str, Any]
) -> None:
    aud = changes.pop("aud", server.issuer)
    value = assertion(key_app["client_id"], key, aud, **changes)
    form = {**auth_form(value), "client_id": key_app["client_id"]}
    response = token(server, form)
    assert response.status_code == 401, name
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()
    # No Basic challenge: the app did not use that scheme (RFC 6749 §5.2).
    assert "www-authenticate" not in response.headers


def test_a_replayed_jti_is_refused(server: Server, key_app: dict[str, Any], key: ECKey) -> None:
    value = assertion(key_app["client_id"], key, server.issuer)
    assert token(server, auth_form(value)).status_code == 200
    again = token(server, auth_form(value))
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


def test_alg_none_and_hs256_with_the_public_key_are_refused(
    server: Server, key_app: dict[str, Any], key: ECKey
) -> None:
    client_id = key_app["client_id"]
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": server.issuer, "exp": now + 60}
    unsigned = jwt.encode({"alg": "none"}, {**claims, "jti": uuid.uuid4().hex}, None,
                          algorithms=["none"])  # fmt: skip
    assert token(server, auth_form(unsigned)).json()["error"] == "invalid_client"
    # The classic confusion: the public key's bytes used as an HMAC secret (signed by hand:
    # joserfc, rightly, will not make such a key).
    header = _b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    body = _b64(json.dumps({**claims, "jti": uuid.uuid4().hex}).encode())
    mac = hmac.new(key.as_pem(private=False), f"{header}.{body}".encode(), hashlib.sha256)
    confused = f"{header}.{body}.{_b64(mac.digest())}"
    refused = token(server, auth_form(confused))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_a_private_key_jwt_app_cannot_fall_back_to_a_secret(
    server: Server, key_app: dict[str, Any]
) -> None:
    response = token(server, {}, auth=(key_app["client_id"], "any-secret-at-all"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # The same words as for an unknown app: nobody learns which apps exist or their method.
    assert response.json()["error_description"] == "unknown client or bad credentials"


def test_a_secret_app_cannot_use_an_assertion(server: Server) -> None:
    app = create_app(server, "Secret app")
    secret_key = OctKey.import_key(app["client_secret"].encode())
    value = assertion(app["client_id"], secret_key, server.issuer, alg="HS256", kid=None)
    response = token(server, auth_form(value))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_client_secret_jwt(server: Server) -> None:
    app = create_app(server, "HMAC app", "--token-endpoint-auth-method", "client_secret_jwt")
    secret_key = OctKey.import_key(app["client_secret"].encode())
    value = assertion(app["client_id"], secret_key, server.issuer, alg="HS256", kid=None)
    assert token(server, auth_form(value)).status_code == 200
    # ... and never the secret itself.
    plain = token(server, {}, auth=(app["client_id"], app["client_secret"]))
    assert plain.status_code == 401


def test_introspection_revocation_and_the_feed_take_assertions(
    server: Server, key_app: dict[str, Any], key: ECKey
) -> None:
    client_id = key_app["client_id"]
    issued = token(server, auth_form(assertion(client_id, key, server.issuer))).json()
    access = issued["access_token"]
    introspected = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": access, **auth_form(assertion(client_id, key, server.issuer))},
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    feed = httpx.get(
        f"{server.base_url}/oauth2/v1/revocations",
        params={"since": "0", "wait": "0", **auth_form(assertion(client_id, key, server.issuer))},
    )
    assert feed.status_code == 200, feed.text
    revoked = httpx.post(
        f"{server.base_url}/oauth2/v1/revoke",
        data={"token": access, **auth_form(assertion(client_id, key, server.issuer))},
    )
    assert revoked.status_code == 200
    after = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": access, **auth_form(assertion(client_id, key, server.issuer))},
    )
    assert after.json() == {"active": False}
    # Without client authentication: refused (RFC 7662 §2.1).
    bare = httpx.post(f"{server.base_url}/oauth2/v1/introspect", data={"token": access})
    assert bare.status_code == 401


# --- jwks_uri ----------------------------------------------------------------------------------


@pytest.fixture
def jwks_server() -> Iterator[JwksEndpoint]:
    with serving_jwks() as served:
        yield served


def test_a_key_rotated_at_the_jwks_uri_is_picked_up(
    server: Server, jwks_server: JwksEndpoint
) -> None:
    old = ECKey.generate_key("P-256", parameters={"kid": "old"})
    new = RSAKey.generate_key(2048, parameters={"kid": "new"})
    jwks_server.document = public_jwks(old)
    app = create_app(
        server, "Rotating app", "--token-endpoint-auth-method", "private_key_jwt",
        "--jwks-uri", jwks_server.url,
    )  # fmt: skip
    client_id = app["client_id"]
    first = assertion(client_id, old, server.issuer, kid="old")
    assert token(server, auth_form(first)).status_code == 200
    jwks_server.document = public_jwks(new)  # the app rotates: an unknown kid makes us refetch
    rotated = assertion(client_id, new, server.issuer, alg="PS256", kid="new")
    response = token(server, auth_form(rotated))
    assert response.status_code == 200, response.text
    assert jwks_server.hits == 2


# --- two nodes ---------------------------------------------------------------------------------


def test_two_nodes_share_the_jti_replay_state(
    server: Server, key_app: dict[str, Any], key: ECKey
) -> None:
    """Node B on the same database refuses an assertion node A accepted."""
    node_b = start_server(server.data_dir, env=server.env, issuer=server.issuer, demo=False)
    try:
        value = assertion(key_app["client_id"], key, server.issuer)
        assert token(server, auth_form(value)).status_code == 200
        replayed = token(node_b, auth_form(value))
        assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
        # ... and the other way round.
        other = assertion(key_app["client_id"], key, server.issuer)
        assert token(node_b, auth_form(other)).status_code == 200
        assert token(server, auth_form(other)).status_code == 401
    finally:
        node_b.stop()


def test_a_self_registered_app_cannot_point_its_jwks_uri_at_internal_addresses(
    server: Server, key: ECKey
) -> None:
    """Server-side request forgery through registration: the cloud metadata address is never
    fetched for an app that registered itself (docs/client-authentication.md)."""
    initial = server.cli_json("admin", "registration-tokens", "create", "--max-uses", "1")
    registered = httpx.post(
        f"{server.base_url}/oauth2/v1/register",
        headers={"Authorization": f"Bearer {initial['token']}"},
        json={
            "client_name": "Metadata prober",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://169.254.169.254/latest/meta-data/jwks.json",
        },
    )
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    response = token(server, auth_form(assertion(client_id, key, server.issuer)))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # Refused before any connection, and the audit log says why.
    admin = console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")["access_token"]
    with admin_client(server.base_url, admin) as api:
        events = api.get("/audit", params={"type": "token.refused", "limit": 50})
    reasons = [e["details"].get("reason", "") for e in events.json()["events"]]
    assert any("link-local address, which is refused" in r for r in reasons), reasons
