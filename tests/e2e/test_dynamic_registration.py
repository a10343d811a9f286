"""Dynamic client registration (RFC 7591) and management (RFC 7592) over real HTTP: initial
access tokens from the CLI and the admin API, a registered app that signs a user in, the
client configuration endpoint (read, replace, delete; the registration access token rotates on
read and update), and what is refused, each with the RFC's error and nothing created: no token,
an unknown, expired, revoked or used-up token (RFC 6750 §3.1 `invalid_token`), bad metadata
(RFC 7591 §3.2.2 `invalid_client_metadata` / `invalid_redirect_uri`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tessera.domain.admin import admin_scope
from tests.support.admin import admin_client, console_token
from tests.support.domains import create_domain, domain_cli
from tests.support.flow import Browser, Pkce, code_from, token_request
from tests.support.server import Server

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
ALICE_PASSWORD = "Wonderland-Demo-2026"
REDIRECT = "https://registered.example.test/cb"


def mint(server: Server, *args: str) -> dict[str, Any]:
    created: dict[str, Any] = server.cli_json("admin", "registration-tokens", "create", *args)
    return created


def register(
    base: str, token: str | None, metadata: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if metadata is None:
        metadata = {"redirect_uris": [REDIRECT]}
    return httpx.post(
        f"{base}/oauth2/v1/register", json=metadata, headers=headers, timeout=30, **kwargs
    )


def configure(method: str, answer: dict[str, Any], token: str | None = None, **kw: Any) -> Any:
    token = token or answer["registration_access_token"]
    return httpx.request(
        method,
        answer["registration_client_uri"],
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kw,
    )


def app_ids(server: Server) -> set[str]:
    return {a["client_id"] for a in server.cli_json("admin", "apps", "list")}


def uses(server: Server, token_id: str) -> int:
    tokens = server.cli_json("admin", "registration-tokens", "list")
    found: int = next(t["uses"] for t in tokens if t["id"] == token_id)
    return found


@pytest.fixture(scope="module")
def minted(server: Server) -> dict[str, Any]:
    """A token with uses to spare, for the tests that register successfully."""
    return mint(server, "--max-uses", "50", "--description", "e2e")


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.issuer, token) as client:
        yield client


def test_discovery_advertises_the_registration_endpoint(server: Server) -> None:
    doc = httpx.get(f"{server.base_url}/.well-known/openid-configuration", timeout=10).json()
    assert doc["registration_endpoint"] == f"{server.issuer}/oauth2/v1/register"


def test_cli_token_and_a_registered_app_signs_a_user_in(
    server: Server, minted: dict[str, Any]
) -> None:
    assert minted["token"] and minted["id"] and minted["max_uses"] == 50
    assert minted["expires_at"] is not None  # a day by default
    scope = f"openid profile {server.demo['resource']['scope']}"
    response = register(
        server.base_url,
        minted["token"],
        {
            "client_name": "Registered orders app",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": scope,
            "client_uri": "https://registered.example.test/",
            "contacts": ["ops@registered.example.test"],
            "unknown_member": {"ignored": True},
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    app = response.json()
    assert app["client_secret"] and app["client_secret_expires_at"] == 0
    assert app["token_endpoint_auth_method"] == "client_secret_basic"
    assert app["client_name"] == "Registered orders app"
    assert app["redirect_uris"] == [REDIRECT]
    assert app["scope"].split()[:2] == ["openid", "profile"] and len(app["scope"].split()) == 3
    assert app["client_uri"] == "https://registered.example.test/"
    assert app["contacts"] == ["ops@registered.example.test"]
    assert "unknown_member" not in app
    assert app["registration_client_uri"] == (
        f"{server.issuer}/oauth2/v1/register/{app['client_id']}"
    )
    assert uses(server, minted["id"]) >= 1

    pkce = Pkce()
    with Browser(server.base_url) as browser:
        code = code_from(
            browser.sign_in_and_authorize(
                "alice",
                ALICE_PASSWORD,
                response_type="code",
                client_id=app["client_id"],
                redirect_uri=REDIRECT,
                scope="openid profile",
                state="s",
                code_challenge=pkce.challenge,
                code_challenge_method="S256",
            )
        )
    tokens = token_request(
        server.base_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier,
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]


def test_public_and_private_key_jwt_apps_get_no_secret(
    server: Server, minted: dict[str, Any]
) -> None:
    public = register(
        server.base_url,
        minted["token"],
        {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"},
    )
    assert public.status_code == 201, public.text
    assert "client_secret" not in public.json()
    assert public.json()["token_endpoint_auth_method"] == "none"

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    keyed = register(
        server.base_url,
        minted["token"],
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "scope": server.demo["resource"]["scope"],
        },
    )
    assert keyed.status_code == 201, keyed.text
    body = keyed.json()
    assert "client_secret" not in body
    assert body["response_types"] == [] and body["redirect_uris"] == []
    assert body["jwks"]["keys"][0]["kid"] == "k1"


def _refused_token(response: httpx.Response, error_in_header: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is error_in_header


def test_registration_without_a_valid_initial_access_token(server: Server) -> None:
    before = app_ids(server)
    _refused_token(register(server.base_url, None), error_in_header=False)  # RFC 6750 §3.1
    _refused_token(register(server.base_url, "not-a-token"))

    revoked = mint(server)
    server.cli_json("admin", "registration-tokens", "revoke", revoked["id"])
    _refused_token(register(server.base_url, revoked["token"]))

    once = mint(server, "--max-uses", "1")
    assert register(server.base_url, once["token"]).status_code == 201
    _refused_token(register(server.base_url, once["token"]))
    assert uses(server, once["id"]) == 1

    expired = mint(server, "--expires-in", "1")
    time.sleep(1.5)
    _refused_token(register(server.base_url, expired["token"]))
    assert uses(server, expired["id"]) == 0

    assert len(app_ids(server) - before) == 1  # the one registration with a usable token
    states = {t["id"]: t["state"] for t in server.cli_json("admin", "registration-tokens", "list")}
    assert states[revoked["id"]] == "revoked"
    assert states[once["id"]] == "used up"
    assert states[expired["id"]] == "expired"


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://evil.example.test/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example.test/cb#x"]}, "invalid_redirect_uri"),
        ({}, "invalid_redirect_uri"),  # the code grant needs a redirect URI
        ({"redirect_uris": [REDIRECT], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "grant_types": ["password"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "scope": "openid no-such"}, "invalid_client_metadata"),
        (
            {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "none"},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": [REDIRECT], "tessera_profile": "fapi2"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "client_name": 7}, "invalid_client_metadata"),
    ],
)
def test_bad_metadata_is_refused_and_burns_no_use(
    server: Server, admin: httpx.Client, metadata: dict[str, Any], error: str
) -> None:
    # Through the admin API rather than the CLI: ten cases, no process start each.
    token = admin.post("/registration-tokens", json={"max_uses": 1}).json()
    before = {a["client_id"] for a in admin.get("/apps").json()}
    response = register(server.base_url, token["token"], metadata)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert "www-authenticate" not in response.headers
    assert {a["client_id"] for a in admin.get("/apps").json()} == before
    listed = admin.get("/registration-tokens").json()
    assert next(t["uses"] for t in listed if t["id"] == token["id"]) == 0


def test_admin_scopes_cannot_be_registered(server: Server, minted: dict[str, Any]) -> None:
    metadata = {"redirect_uris": [REDIRECT], "scope": f"openid {admin_scope(server.issuer)}"}
    response = register(server.base_url, minted["token"], metadata)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"[1, 2]", {"Content-Type": "application/json"}),
        (b"redirect_uris=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)
def test_a_body_that_is_not_a_json_object(
    server: Server, minted: dict[str, Any], content: bytes, headers: dict[str, str]
) -> None:
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/register",
        content=content,
        headers={**headers, "Authorization": f"Bearer {minted['token']}"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def introspect(app: dict[str, Any], token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{app['issuer']}/oauth2/v1/introspect",
        data={"token": token},
        auth=(app["client_id"], app["client_secret"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def resource_server(server: Server) -> dict[str, Any]:
    """The demo resource's resource server, which may introspect its tokens (RFC 7662 §4)."""
    created = server.cli_json(
        "admin", "apps", "create", "--name", "DCR test resource server",
        "--grant-type", "client_credentials",
        "--resource-server-for", server.demo["resource"]["audience"],
    )  # fmt: skip
    return {**created, "issuer": server.issuer}


def test_read_replace_and_delete(
    server: Server, minted: dict[str, Any], resource_server: dict[str, Any]
) -> None:
    app = register(
        server.base_url,
        minted["token"],
        {
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": server.demo["resource"]["scope"],
            "post_logout_redirect_uris": ["https://registered.example.test/bye"],
        },
    ).json()
    first_token = app["registration_access_token"]

    read = configure("GET", app)
    assert read.status_code == 200, read.text
    info = read.json()
    assert info["client_id"] == app["client_id"] and "client_secret" not in info
    assert info["registration_access_token"] != first_token  # rotated (RFC 7592 §3)
    _refused_token(configure("GET", app, first_token))

    # RFC 7592 §2.2: the whole metadata, client_id included; left out means removed.
    new_redirect = "https://registered.example.test/other"
    replaced = configure(
        "PUT",
        info,
        json={**info, "redirect_uris": [new_redirect], "post_logout_redirect_uris": None},
    )
    assert replaced.status_code == 200, replaced.text
    current = replaced.json()
    assert current["redirect_uris"] == [new_redirect]
    assert "post_logout_redirect_uris" not in current

    wrong_id = configure("PUT", current, json={**current, "client_id": "someone-else"})
    assert wrong_id.status_code == 400
    assert wrong_id.json()["error"] == "invalid_client_metadata"
    bad_uri = configure(
        "PUT", current, json={**current, "redirect_uris": ["http://evil.example.test/"]}
    )
    assert bad_uri.json()["error"] == "invalid_redirect_uri"

    issued = token_request(
        server.base_url,
        {"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    access_token = issued.json()["access_token"]
    assert introspect(resource_server, access_token)["active"] is True
    _refused_token(configure("DELETE", current, "wrong-token"))

    deleted = configure("DELETE", current)
    assert deleted.status_code == 204
    assert app["client_id"] not in app_ids(server)
    _refused_token(configure("GET", current))
    assert introspect(resource_server, access_token)["active"] is False  # revoked with the app


def test_admin_created_apps_cannot_be_managed(server: Server) -> None:
    demo_app = server.demo["confidential_app"]["client_id"]
    response = httpx.get(
        f"{server.base_url}/oauth2/v1/register/{demo_app}",
        headers={"Authorization": "Bearer anything"},
        timeout=30,
    )
    _refused_token(response)


def test_admin_api_mints_lists_and_revokes(server: Server, admin: httpx.Client) -> None:
    created = admin.post(
        "/registration-tokens", json={"expires_in": 600, "max_uses": 2, "description": "api"}
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert token["token"] and token["max_uses"] == 2 and token["state"] == "active"
    listed = admin.get("/registration-tokens").json()
    assert any(t["id"] == token["id"] for t in listed)
    assert all("token" not in t for t in listed)
    assert register(server.base_url, token["token"]).status_code == 201

    revoked = admin.post(f"/registration-tokens/{token['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    _refused_token(register(server.base_url, token["token"]))
    assert admin.post("/registration-tokens/rt_nope/revoke").status_code == 404
    assert admin.post("/registration-tokens", json={"max_uses": 0}).status_code == 400

    events = {e["type"] for e in admin.get("/audit", params={"limit": 200}).json()["events"]}
    assert {
        "registration_token.created",
        "registration_token.revoked",
        "registration.created",
        "registration.read",
        "registration.updated",
        "registration.deleted",
    } <= events


def test_registration_in_another_domain(server: Server) -> None:
    domain = create_domain(server, "dcr-acme")
    token = domain_cli(server, "dcr-acme", "registration-tokens", "create")["token"]
    issuer = domain["issuer"]
    # The default domain's token is not this domain's, nor the other way round.
    _refused_token(register(server.base_url, token))
    response = register(issuer, token)
    assert response.status_code == 201, response.text
    app = response.json()
    assert app["registration_client_uri"] == f"{issuer}/oauth2/v1/register/{app['client_id']}"
    assert configure("GET", app).status_code == 200


# --- the scopes an initial access token allows ------------------------------------------------


def test_a_token_bounds_the_scopes_of_the_apps_it_registers(server: Server) -> None:
    resource_scope = server.demo["resource"]["scope"]
    token = mint(server, "--max-uses", "2", "--allow-scope", "openid", "--allow-scope", "profile")
    assert token["allowed_scopes"] == ["openid", "profile"]
    listed = server.cli_json("admin", "registration-tokens", "list")
    assert next(t for t in listed if t["id"] == token["id"])["allowed_scopes"] == [
        "openid",
        "profile",
    ]
    before = app_ids(server)
    for scope in ("openid email", f"openid {resource_scope}"):
        refused = register(
            server.base_url, token["token"], {"redirect_uris": [REDIRECT], "scope": scope}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_client_metadata"
        assert repr(scope.split()[-1]) in refused.json()["error_description"]
    assert app_ids(server) == before
    assert uses(server, token["id"]) == 0

    response = register(
        server.base_url, token["token"], {"redirect_uris": [REDIRECT], "scope": "profile openid"}
    )
    assert response.status_code == 201, response.text
    app = response.json()
    assert app["scope"] == "profile openid"
    assert uses(server, token["id"]) == 1

    # RFC 7592 §2.2: an update stays within the app's scopes, hence within the token's.
    widened = configure(
        "PUT",
        app,
        json={"client_id": app["client_id"], "redirect_uris": [REDIRECT], "scope": "openid email"},
    )
    assert widened.status_code == 400, widened.text
    assert widened.json()["error"] == "invalid_client_metadata"
    current = configure("GET", app).json()
    assert current["scope"] == "profile openid"
    narrowed = configure(
        "PUT",
        current,
        json={"client_id": app["client_id"], "redirect_uris": [REDIRECT], "scope": "openid"},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "openid"


def test_an_omitted_scope_without_openid_allowed_is_the_token_s_scopes(server: Server) -> None:
    resource_scope = server.demo["resource"]["scope"]
    token = mint(server, "--allow-scope", resource_scope)
    (canonical,) = token["allowed_scopes"]
    response = register(
        server.base_url,
        token["token"],
        {"grant_types": ["client_credentials"], "client_name": "Scoped machine"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["scope"] == canonical


def test_minting_refuses_unknown_and_admin_scopes(server: Server, admin: httpx.Client) -> None:
    for scope in ("no-such-scope", admin_scope(server.issuer)):
        failed = server.cli(
            "admin", "registration-tokens", "create", "--allow-scope", scope, "--json", check=False
        )
        assert failed.returncode != 0
        refused = admin.post("/registration-tokens", json={"allowed_scopes": ["openid", scope]})
        assert refused.status_code == 400, refused.text
    created = admin.post("/registration-tokens", json={"allowed_scopes": ["email", "email"]})
    assert created.status_code == 201, created.text
    assert created.json()["allowed_scopes"] == ["email"]
    listed = admin.get("/registration-tokens").json()
    assert next(t for t in listed if t["id"] == created.json()["id"])["allowed_scopes"] == ["email"]
