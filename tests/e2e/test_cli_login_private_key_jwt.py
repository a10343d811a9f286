"""`tessera login --private-key` against a real server: an app registered for `private_key_jwt`
with its public key, the sign-in request pushed (PAR, RFC 9126, which the server advertises),
the user's browser played by httpx (tests/support/flow.py), then `tessera call`, refreshes
(each with a new assertion: the server takes a `jti` once) and `tessera logout`, all signed
with the key whose path, never the key itself, is in the token cache.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey, RSAKey

from tests.browser.support import LoginProcess, client_env, tessera
from tests.support.flow import demo_loopback_sign_in
from tests.support.server import Server

LOOPBACK = "http://127.0.0.1/callback"


def ec_pem(path: Path) -> ECKey:
    """A new P-256 key written to `path` as PKCS#8 PEM (0600); returns it for its public part."""
    native = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        native.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return ECKey.import_key(native)


def register(server: Server, name: str, public_jwk: dict[str, Any], *options: str) -> str:
    """An app that authenticates with `private_key_jwt` and this public key; its client id."""
    app = server.cli_json(
        *("admin", "apps", "create", "--name", f"{name} {uuid.uuid4().hex[:6]}"),
        *("--redirect-uri", LOOPBACK),
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *("--allow-scope", "openid", "--allow-scope", "profile"),
        *("--token-endpoint-auth-method", "private_key_jwt"),
        *("--jwks", json.dumps({"keys": [public_jwk]})),
        *options,
    )
    assert not app.get("client_secret"), app  # nothing to leak: the app holds a key
    return str(app["client_id"])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def ec_app(server: Server, keys: Path) -> tuple[str, Path, ECKey]:
    """An EC P-256 app registered with a kid-less JWK: the server names it by its RFC 7638
    thumbprint, which is also the client's default kid."""
    key = ec_pem(keys / "app-key.pem")
    client_id = register(server, "CLI key app", key.as_dict(private=False))
    return client_id, keys / "app-key.pem", key


def login(server: Server, env: dict[str, str], client_id: str, *extra: str) -> dict[str, Any]:
    """`tessera login … --json` through the browser; its JSON summary."""
    process = LoginProcess(env, "--issuer", server.issuer, "--client-id", client_id, *extra)
    url = process.url()
    page = demo_loopback_sign_in(server, url)
    assert page.status_code == 200, page.text[:300]
    code, out, err = process.finish()
    assert code == 0, err
    summary: dict[str, Any] = json.loads(out.partition("\n")[2])
    summary["_url"] = url
    summary["_stderr"] = err
    return summary


def test_login_with_a_key_file_pushes_the_request_then_calls_refreshes_and_logs_out(
    server: Server, tmp_path: Path, ec_app: tuple[str, Path, ECKey]
) -> None:
    client_id, key_file, key = ec_app
    env = client_env(tmp_path)
    summary = login(server, env, client_id, "--private-key", str(key_file), "--json")

    # PAR: the browser was sent with the pushed request's handle only (RFC 9126 §4).
    query = {k: v[0] for k, v in parse_qs(urlsplit(summary["_url"]).query).items()}
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert summary["pushed_authorization_request"] is True
    assert summary["client_authentication"] == "private_key_jwt"
    assert summary["confidential"] is True
    assert summary["private_key"] == {
        "path": os.path.abspath(key_file),
        "kid": key.thumbprint(),
        "alg": "ES256",
    }
    assert summary["subject"] == server.demo["user"]["sub"]
    assert summary["refresh_token"] is True
    assert "warning" not in summary["_stderr"]  # the key file is 0600

    # The cache keeps where the key is, never the key.
    cached = Path(summary["cache_file"]).read_text()
    assert json.loads(cached)["private_key"]["path"] == os.path.abspath(key_file)
    assert key.as_dict(private=True)["d"] not in cached
    assert "PRIVATE KEY" not in cached

    called = tessera(env, "call", "GET", f"{server.issuer}/oauth2/v1/userinfo", "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["body"]["sub"] == server.demo["user"]["sub"]

    # Each refresh signs a new assertion; a repeated jti would be refused (invalid_client).
    refresh_env = {**env, "TESSERA_CLIENT_REFRESH_MARGIN": "86400"}
    seen = {json.loads(Path(summary["cache_file"]).read_text())["tokens"]["access_token"]}
    for _ in range(2):
        refreshed = tessera(refresh_env, "token", "--json")
        assert refreshed.returncode == 0, refreshed.stderr
        data = json.loads(refreshed.stdout)
        assert data["refreshed"] is True
        assert data["access_token"] not in seen
        seen.add(data["access_token"])

    out = tessera(env, "logout", "--json")  # RFC 7009 with the key too
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["revoked"] is True


def test_an_rsa_jwk_file_with_a_registered_kid_signs_with_ps256(
    server: Server, tmp_path: Path, keys: Path
) -> None:
    rsa = RSAKey.generate_key(2048)
    jwk_file = keys / "app-key.jwk"
    jwk_file.write_text(json.dumps(rsa.as_dict(private=True)))  # no kid in the file
    jwk_file.chmod(0o600)
    client_id = register(
        server, "RSA key app", {**rsa.as_dict(private=False), "kid": "rsa-2026", "use": "sig"}
    )
    summary = login(
        server,
        client_env(tmp_path),
        client_id,
        *("--private-key", str(jwk_file), "--key-id", "rsa-2026", "--json"),
    )
    assert summary["private_key"]["kid"] == "rsa-2026"
    assert summary["private_key"]["alg"] == "PS256"  # the server lists PS256
    refreshed = tessera(
        client_env(tmp_path, TESSERA_CLIENT_REFRESH_MARGIN="86400"), "token", "--json"
    )
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["refreshed"] is True


def test_no_par_sends_a_plain_request_and_warns_about_a_readable_key_file(
    server: Server, tmp_path: Path, keys: Path
) -> None:
    key_file = keys / "shared-key.pem"
    key = ec_pem(key_file)
    key_file.chmod(0o644)
    client_id = register(server, "Plain request app", key.as_dict(private=False))
    summary = login(
        server, client_env(tmp_path), client_id, "--private-key", str(key_file), "--no-par", "--json"
    )
    assert summary["pushed_authorization_request"] is False
    assert "code_challenge" in parse_qs(urlsplit(summary["_url"]).query)
    assert "warning:" in summary["_stderr"]
    # Rich wraps long lines (a long temporary path): compare with the whitespace folded.
    stderr = " ".join(summary["_stderr"].split())
    assert f"chmod 600 {os.path.abspath(key_file)}" in stderr


def test_an_app_requiring_par_is_refused_a_plain_request(
    server: Server, tmp_path: Path, keys: Path
) -> None:
    key_file = keys / "par-key.pem"
    key = ec_pem(key_file)
    client_id = register(
        server,
        "PAR-only app",
        key.as_dict(private=False),
        "--require-pushed-authorization-requests",
    )
    refused = tessera(
        client_env(tmp_path),
        *("login", "--issuer", server.issuer, "--client-id", client_id),
        *("--private-key", str(key_file), "--no-par", "--no-browser"),
        timeout=30,
    )
    assert refused.returncode == 1, refused.stderr
    assert "refused the sign-in request" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "tokens").exists()
    # With PAR (the default) the same app signs in.
    summary = login(server, client_env(tmp_path), client_id, "--private-key", str(key_file), "--json")
    assert summary["pushed_authorization_request"] is True


@pytest.mark.parametrize("how", ["without a key", "with another key"])
def test_the_push_of_a_key_app_without_its_key_is_refused_invalid_client(
    server: Server, tmp_path: Path, ec_app: tuple[str, Path, ECKey], how: str
) -> None:
    client_id = ec_app[0]
    extra: list[str] = []
    if how == "with another key":
        ec_pem(tmp_path / "other.pem")
        extra = ["--private-key", str(tmp_path / "other.pem")]
    result = tessera(
        client_env(tmp_path / "config"),
        *("login", "--issuer", server.issuer, "--client-id", client_id, "--no-browser"),
        *extra,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "refused the pushed authorization request (invalid_client" in result.stderr
    assert "--private-key" in result.stderr  # the hint: how the app authenticates
    assert "Open this URL" not in result.stderr  # nobody was sent to the browser
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "config" / "tokens").exists()


# --- PAR for every app, and its errors instead of the plain request's preflight ----------------


def test_a_public_app_pushes_its_request_with_its_client_id(server: Server, tmp_path: Path) -> None:
    summary = login(server, client_env(tmp_path), server.demo["public_app"]["client_id"], "--json")
    assert summary["pushed_authorization_request"] is True
    assert summary["client_authentication"] == "none"
    assert set(parse_qs(urlsplit(summary["_url"]).query)) == {"client_id", "request_uri"}


@pytest.mark.parametrize(
    ("case", "error", "hint"),
    [
        ("unknown client", "invalid_client", "--client-id"),
        ("unregistered redirect URI", "invalid_request", "http://127.0.0.1/callback"),
        ("unknown scope", "invalid_scope", "--scope"),
    ],
)
def test_a_refused_push_fails_at_once_with_the_oauth_error(
    server: Server, tmp_path: Path, case: str, error: str, hint: str
) -> None:
    public = server.demo["public_app"]["client_id"]
    confidential = server.demo["confidential_app"]  # registers its web callback only
    args, secret = {
        "unknown client": (["--client-id", "no-such-client"], None),
        "unregistered redirect URI": (
            ["--client-id", confidential["client_id"], "--client-secret-stdin"],
            confidential["client_secret"] + "\n",
        ),
        "unknown scope": (
            ["--client-id", public, "--scope", "https://nowhere.tessera.testurn:no:such"],
            None,
        ),
    }[case]
    result = tessera(
        client_env(tmp_path),
        *("login", "--issuer", server.issuer, "--no-browser", *args),
        input=secret,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert f"refused the pushed authorization request ({error}" in result.stderr
    assert hint in result.stderr
    assert "Open this URL" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tokens").exists()


# --- bad options: exit 2 before any request ------------------------------------------------------


def test_a_key_and_a_secret_together_are_refused(tmp_path: Path) -> None:
    ec_pem(tmp_path / "k.pem")
    result = tessera(
        client_env(tmp_path),
        *("login", "--issuer", "http://127.0.0.1:9", "--client-id", "x"),
        *("--private-key", str(tmp_path / "k.pem"), "--client-secret-stdin"),
        input="s\n",
    )
    assert result.returncode == 2
    assert "exclude each other" in result.stderr


def test_an_unusable_key_file_fails_before_contacting_the_issuer(tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = tessera(
        client_env(tmp_path),
        *("login", "--issuer", "http://127.0.0.1:9", "--client-id", "x", "--json"),
        *("--private-key", str(public)),
    )
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert "holds a public key or certificate, not the private key" in error["error"]
    assert "cannot reach" not in result.stderr  # the key was read before any request
