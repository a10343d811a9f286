"""An app's client metadata through `tessera admin apps` and the admin API, on a real server
(RFC 7591 §2 names): `private_key_jwt` apps with `--jwks` (text or @file) or `--jwks-uri` (http
only to loopback, and only for a loopback issuer) and no secret, `client_secret_jwt` apps whose
secret is kept sealed (never stored in clear), switching methods, the FAPI 2.0 profile and its
refusals, DPoP-bound apps (RFC 9449 §5.2), informational details; an app registered here authenticates
at the token endpoint with the method it was given. The rules one by one:
tests/unit/test_app_metadata.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from tests.support.admin import console_token
from tests.support.server import Server, run_cli, stored_data

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = ECKey.generate_key("P-256", parameters={"kid": "app-key-1"})
JWKS = {"keys": [KEY.as_dict(private=False)]}
REDIRECT = "https://app.example.test/callback"


def name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def create(server: Server, prefix: str, *options: str) -> dict[str, Any]:
    app: dict[str, Any] = server.cli_json(
        *("admin", "apps", "create", "--name", name(prefix)), *options
    )
    return app


def refused(server: Server, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `tessera admin apps … --json`, refused as bad input (exit 2); the message."""
    result = run_cli(env or server.env, "admin", "apps", *args, "--json", check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    return str(json.loads(result.stderr.strip().splitlines()[-1])["error"])


def eventually(check: Callable[[], bool]) -> None:
    """Nodes cache apps for about two seconds (`tessera.caching`): a change made by the CLI
    reaches the server within that time."""
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, "the node did not see the change"
        time.sleep(0.2)


def client_credentials(server: Server, form: dict[str, str], **kw: Any) -> httpx.Response:
    body = {"grant_type": "client_credentials", "scope": server.demo["resource"]["scope"], **form}
    return httpx.post(f"{server.base_url}/oauth2/v1/token", data=body, timeout=30, **kw)


def assertion(client_id: str, key: ECKey | OctKey, aud: str, alg: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60}
    claims["jti"] = uuid.uuid4().hex
    header = {"alg": alg, **({"kid": key.kid} if key.kid else {})}
    signed = jwt.encode(header, claims, key, algorithms=[alg])
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


@pytest.fixture(scope="module")
def admin(server: Server) -> httpx.Client:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    return httpx.Client(
        base_url=f"{server.base_url}/admin/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_private_key_jwt_with_a_jwks_file(server: Server, tmp_path: Path) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(JWKS))
    app = create(
        server,
        "Keyed",
        *("--grant-type", "client_credentials"),
        *("--allow-scope", server.demo["resource"]["scope"]),
        *("--token-endpoint-auth-method", "private_key_jwt", "--jwks", f"@{jwks_file}"),
        *("--token-endpoint-auth-signing-alg", "ES256"),
    )
    assert "client_secret" not in app and app["secrets"] == []
    assert app["token_endpoint_auth_method"] == "private_key_jwt"
    assert app["token_endpoint_auth_signing_alg"] == "ES256"
    assert app["jwks"] == JWKS and app["jwks_uri"] is None
    assert app["id_token_signed_response_alg"] == "RS256" and app["profile"] is None
    shown = server.cli_json("admin", "apps", "show", app["client_id"])
    assert shown["jwks"] == JWKS and "client_secret" not in shown
    # The keys it registered authenticate it; no secret could.
    client_id = app["client_id"]
    answer = client_credentials(server, assertion(client_id, KEY, server.issuer, "ES256"))
    assert answer.status_code == 200, answer.text
    basic = client_credentials(server, {}, auth=(client_id, "not-a-secret"))
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"


def test_cli_human_output_says_there_is_no_secret(server: Server) -> None:
    result = server.cli(
        *("admin", "apps", "create", "--name", name("Quiet"), "--redirect-uri", REDIRECT),
        *("--token-endpoint-auth-method", "private_key_jwt", "--jwks", json.dumps(JWKS)),
    )
    assert "No client secret: the app authenticates with private_key_jwt" in result.stdout
    assert "Client secret:" not in result.stdout


def test_cli_jwks_uri_over_http_only_to_loopback_for_a_loopback_issuer(server: Server) -> None:
    uri = "http://127.0.0.1:9/jwks.json"
    method = ("--redirect-uri", REDIRECT, "--token-endpoint-auth-method", "private_key_jwt")
    app = create(server, "Loopback keys", *method, "--jwks-uri", uri)
    assert app["jwks_uri"] == uri and app["jwks"] is None
    message = refused(
        server, "create", "--name", name("Far keys"), *method, "--jwks-uri", "http://keys.test/j"
    )
    assert "the jwks_uri must be an https URL" in message
    production = {**server.env, "TESSERA_ISSUER": "https://id.example.test"}
    message = refused(
        server, "create", "--name", name("Dev keys"), *method, "--jwks-uri", uri, env=production
    )
    assert "the jwks_uri must be an https URL" in message


def test_cli_keys_need_the_method_and_the_method_needs_keys(
    server: Server, tmp_path: Path
) -> None:
    base = ("create", "--name", name("K"), "--redirect-uri", REDIRECT)
    message = refused(server, *base, "--jwks-uri", "https://k.test/j")
    assert "jwks and jwks_uri are the keys of private_key_jwt apps" in message
    message = refused(server, *base, "--token-endpoint-auth-method", "private_key_jwt")
    assert "give exactly one of jwks (the JWK Set) and jwks_uri" in message
    message = refused(server, *base, "--jwks", "@/nonexistent/jwks.json")
    assert "cannot read the JWK Set file /nonexistent/jwks.json" in message
    latin1 = tmp_path / "jwks.json"
    latin1.write_bytes(b'{"keys": [], "note": "caf\xe9"}')
    message = refused(server, *base, "--jwks", f"@{latin1}")
    assert f"cannot read the JWK Set file {latin1}: it is not UTF-8 text" in message
    private = json.dumps({"keys": [KEY.as_dict(private=True)]})
    message = refused(
        server, *base, "--token-endpoint-auth-method", "private_key_jwt", "--jwks", private
    )
    assert "private or symmetric key material" in message


def test_cli_fapi2_profile(server: Server) -> None:
    app = create(
        server,
        "Bank",
        *("--redirect-uri", REDIRECT, "--profile", "fapi2"),
        *("--jwks-uri", "https://bank.example.test/jwks.json"),
    )
    assert app["profile"] == "fapi2" and "client_secret" not in app
    assert app["token_endpoint_auth_method"] == "private_key_jwt"
    assert app["id_token_signed_response_alg"] == "ES256"
    assert app["require_pushed_authorization_requests"] is True
    base = ("create", "--name", name("Bank"), "--profile", "fapi2", "--redirect-uri", REDIRECT)
    keys = ("--jwks-uri", "https://bank.example.test/jwks.json")
    rs256 = refused(server, *base, *keys, "--id-token-signed-response-alg", "RS256")
    assert "FAPI 2.0 forbids RS256 ID tokens (Security Profile §5.4.1)" in rs256
    no_par = refused(server, *base, *keys, "--no-require-pushed-authorization-requests")
    assert "FAPI 2.0 requires pushed authorization requests" in no_par
    secret = refused(server, *base, "--token-endpoint-auth-method", "client_secret_basic")
    assert "FAPI 2.0 apps authenticate with private_key_jwt, not client_secret_basic" in secret
    public = refused(server, *base, "--public")
    assert "FAPI 2.0 has no public apps" in public
    assert "unsupported profile 'fapi1'" in refused(
        server, "create", "--name", name("B"), "--redirect-uri", REDIRECT, "--profile", "fapi1"
    )
    # Off again: the app keeps PAR until told otherwise.
    off = server.cli_json("admin", "apps", "update", app["client_id"], "--profile", "none")
    assert off["profile"] is None and off["require_pushed_authorization_requests"] is True


def test_cli_dpop_bound_access_tokens(server: Server) -> None:
    app = create(server, "D", "--redirect-uri", REDIRECT, "--dpop-bound-access-tokens")
    assert app["dpop_bound_access_tokens"] is True
    off = server.cli_json(
        "admin", "apps", "update", app["client_id"], "--no-dpop-bound-access-tokens"
    )
    assert off["dpop_bound_access_tokens"] is False


def test_cli_client_secret_jwt_secret_is_sealed_never_stored_in_clear(server: Server) -> None:
    app = create(
        server,
        "HMAC",
        *("--grant-type", "client_credentials"),
        *("--allow-scope", server.demo["resource"]["scope"]),
        *("--token-endpoint-auth-method", "client_secret_jwt"),
    )
    secret = app["client_secret"]
    assert app["token_endpoint_auth_method"] == "client_secret_jwt"
    key = OctKey.import_key(secret.encode())
    answer = client_credentials(server, assertion(app["client_id"], key, server.issuer, "HS256"))
    assert answer.status_code == 200, answer.text
    for where, content in stored_data(server.env, server.data_dir).items():
        assert secret.encode() not in content, where


def test_cli_switching_to_client_secret_jwt_goes_through_rotation(server: Server) -> None:
    app = create(
        server,
        "Switcher",
        *("--grant-type", "client_credentials"),
        *("--allow-scope", server.demo["resource"]["scope"]),
    )
    client_id = app["client_id"]
    message = refused(
        server, "update", client_id, "--token-endpoint-auth-method", "client_secret_jwt"
    )
    assert "client_secret_jwt needs it recoverable" in message
    assert "rotate the secret with --token-endpoint-auth-method client_secret_jwt" in message
    rotated = server.cli_json(
        *("admin", "apps", "rotate-secret", client_id, "--grace", "0"),
        *("--token-endpoint-auth-method", "client_secret_jwt"),
    )
    assert rotated["token_endpoint_auth_method"] == "client_secret_jwt"
    assert len(rotated["secrets"]) == 1
    key = OctKey.import_key(rotated["client_secret"].encode())
    answer = client_credentials(server, assertion(client_id, key, server.issuer, "HS256"))
    assert answer.status_code == 200, answer.text
    # Back to a plain secret: the same secret, sent in the form.
    post = server.cli_json(
        "admin", "apps", "update", client_id, "--token-endpoint-auth-method", "client_secret_post"
    )
    assert post["token_endpoint_auth_method"] == "client_secret_post"
    form = {"client_id": client_id, "client_secret": rotated["client_secret"]}
    eventually(lambda: client_credentials(server, form).status_code == 200)


def test_cli_a_private_key_jwt_app_has_no_secret_to_rotate(server: Server) -> None:
    app = create(
        server,
        "Keys only",
        *("--redirect-uri", REDIRECT, "--token-endpoint-auth-method", "private_key_jwt"),
        *("--jwks", json.dumps(JWKS)),
    )
    message = refused(server, "rotate-secret", app["client_id"])
    assert "authenticates with private_key_jwt, without a secret" in message
    back = server.cli_json(
        *("admin", "apps", "rotate-secret", app["client_id"]),
        *("--token-endpoint-auth-method", "client_secret_basic"),
    )
    assert back["client_secret"] and back["jwks"] is None
    assert back["token_endpoint_auth_method"] == "client_secret_basic"


def test_cli_update_options(server: Server) -> None:
    app = create(
        server,
        "Updated",
        *("--redirect-uri", REDIRECT, "--token-endpoint-auth-method", "private_key_jwt"),
        *("--jwks", json.dumps(JWKS), "--token-endpoint-auth-signing-alg", "ES256"),
    )
    client_id = app["client_id"]
    updated = server.cli_json(
        *("admin", "apps", "update", client_id, "--jwks-uri", "https://k.example.test/jwks"),
        *("--require-pushed-authorization-requests", "--id-token-signed-response-alg", "ES256"),
        *("--token-endpoint-auth-signing-alg", "any"),
    )
    assert updated["jwks"] is None and updated["jwks_uri"] == "https://k.example.test/jwks"
    assert updated["require_pushed_authorization_requests"] is True
    assert updated["id_token_signed_response_alg"] == "ES256"
    assert updated["token_endpoint_auth_signing_alg"] is None
    assert "use one of RS256, ES256" in refused(
        server, "update", client_id, "--id-token-signed-response-alg", "HS256"
    )
    dpop = server.cli_json("admin", "apps", "update", client_id, "--dpop-bound-access-tokens")
    assert dpop["dpop_bound_access_tokens"] is True


# --- the admin API -----------------------------------------------------------------------------


def test_api_create_private_key_jwt_and_fapi2(server: Server, admin: httpx.Client) -> None:
    response = admin.post(
        "/apps",
        json={
            "name": name("API keyed"),
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": JWKS,
            "client_uri": "https://app.example.test/",
            "contacts": ["ops@example.test"],
        },
    )
    assert response.status_code == 201, response.text
    app = response.json()
    assert "client_secret" not in app and app["secrets"] == []
    assert app["jwks"] == JWKS and app["token_endpoint_auth_method"] == "private_key_jwt"
    assert app["client_uri"] == "https://app.example.test/"
    assert app["contacts"] == ["ops@example.test"]
    assert app["dynamically_registered"] is False

    fapi = admin.patch(f"/apps/{app['client_id']}", json={"profile": "fapi2"})
    assert fapi.status_code == 200, fapi.text
    body = fapi.json()
    assert body["profile"] == "fapi2" and body["id_token_signed_response_alg"] == "ES256"
    assert body["require_pushed_authorization_requests"] is True
    assert body["client_uri"] == "https://app.example.test/"  # details kept

    details = admin.patch(
        f"/apps/{app['client_id']}", json={"client_uri": None, "logo_uri": "https://a.test/l.png"}
    )
    assert details.status_code == 200, details.text
    assert details.json()["client_uri"] is None
    assert details.json()["logo_uri"] == "https://a.test/l.png"
    assert details.json()["contacts"] == ["ops@example.test"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"token_endpoint_auth_method": "private_key_jwt"}, "give exactly one of jwks"),
        ({"token_endpoint_auth_method": "none"}, "none is for public apps"),
        ({"public": True, "token_endpoint_auth_method": "client_secret_basic"}, "public app"),
        ({"jwks_uri": "https://k.test/j"}, "keys of private_key_jwt apps"),
        ({"profile": "fapi2", "jwks": JWKS, "dpop_bound_access_tokens": False}, "§5.3.2.1"),
        ({"profile": "fapi2", "jwks": JWKS, "id_token_signed_response_alg": "RS256"}, "RS256"),
        ({"token_endpoint_auth_signing_alg": "HS256"}, "applies to private_key_jwt"),
        ({"logo_uri": "http://app.example.test/l.png"}, "logo_uri must be an https URL"),
    ],
)
def test_api_refuses_bad_metadata(admin: httpx.Client, body: dict[str, Any], why: str) -> None:
    before = len(admin.get("/apps").json())
    answer = admin.post("/apps", json={"name": name("Bad"), "redirect_uris": [REDIRECT], **body})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert why in answer.json()["detail"]
    assert len(admin.get("/apps").json()) == before


def test_api_a_misspelt_field_is_refused(admin: httpx.Client) -> None:
    answer = admin.post("/apps", json={"name": name("Typo"), "jwks_url": "https://k.test/j"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_api_rotate_secret_switches_to_client_secret_jwt(
    server: Server, admin: httpx.Client
) -> None:
    created = admin.post(
        "/apps",
        json={
            "name": name("API HMAC"),
            "grant_types": ["client_credentials"],
            "allowed_scopes": [server.demo["resource"]["scope"]],
        },
    ).json()
    client_id = created["client_id"]
    switch = admin.patch(f"/apps/{client_id}", json={"token_endpoint_auth_method": "client_secret_jwt"})
    assert switch.status_code == 400 and "rotate the secret" in switch.json()["detail"]
    rotated = admin.post(
        f"/apps/{client_id}/rotate-secret",
        json={"grace_seconds": 0, "token_endpoint_auth_method": "client_secret_jwt"},
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["token_endpoint_auth_method"] == "client_secret_jwt"
    key = OctKey.import_key(rotated.json()["client_secret"].encode())
    answer = client_credentials(server, assertion(client_id, key, server.issuer, "HS256"))
    assert answer.status_code == 200, answer.text
    # The old secret (basic) no longer authenticates: the method is enforced.
    old = client_credentials(server, {}, auth=(client_id, created["client_secret"]))
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
