"""A certified relying party, panva's `openid-client` (npm, tests/node), runs the FAPI-style flow
against Tessera: pushed authorization requests (RFC 9126) and `private_key_jwt` (RFC 7523 §2.2,
OIDC Core §9).

The client knows only the issuer URL, its client_id and its private key: it discovers the
endpoints, pushes the request with PKCE S256, state and nonce, and sends the browser to an
authorization URL holding nothing but client_id and request_uri. Our `Browser` plays the user
(sign in, consent) and hands the callback URL back; openid-client then checks `state` and `iss`
(RFC 9207), redeems the code, verifies the ID token and calls userinfo, and refreshes, every
request to the token and PAR endpoints authenticated with a fresh signed assertion.

The node script (tests/node/openid_client_flow.mjs) speaks one JSON line per step on
stdin/stdout. `make test` installs its pinned packages (`npm ci --prefix tests/node`); without
Node.js 20+ or them these tests fail, never skip.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from joserfc.jwk import ECKey

from tests.support.flow import Browser, query_of
from tests.support.server import Server

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "openid_client_flow.mjs"
SCOPE = "openid profile email"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"

_names = itertools.count(1)


# --- the node relying party --------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, 20 or later, with openid-client installed from tests/node's lock file."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("Node.js 20+ is required for the openid-client tests (tests/node)")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.fail(f"openid-client needs Node.js 20+, found {version.stdout.strip()}")
    if not (NODE_DIR / "node_modules" / "openid-client" / "package.json").is_file():
        pytest.fail("openid-client is not installed: run `make test` (npm ci --prefix tests/node)")
    return binary


class RelyingParty:
    """One openid-client configuration in a node process, driven step by step."""

    def __init__(self, node: str, log: Path, script: Path = SCRIPT) -> None:
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            [node, str(script)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, f"the node script exited {self._proc.poll()}; see {self._log.name}"
        return dict(json.loads(line))

    def ok(self, op: str, **args: Any) -> dict[str, Any]:
        answer = self.call(op, **args)
        assert answer["ok"], answer["error"]
        return answer

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


@pytest.fixture
def relying_party(node: str, tmp_path: Path) -> Iterator[Callable[[], RelyingParty]]:
    """Start openid-client processes for one test (each its own configuration)."""
    started: list[RelyingParty] = []

    def start() -> RelyingParty:
        rp = RelyingParty(node, tmp_path / f"node-{len(started)}.log")
        started.append(rp)
        return rp

    yield start
    for rp in started:
        rp.close()


# --- apps and keys -----------------------------------------------------------------------------


def signing_key(kid: str) -> ECKey:
    """A fresh P-256 key pair (ES256) of the app."""
    return ECKey.generate_key("P-256", {"kid": kid, "alg": "ES256", "use": "sig"}, private=True)


def register_app(server: Server, key: ECKey, redirect_uri: str, *options: str) -> dict[str, Any]:
    """An app that authenticates with private_key_jwt, its public key given as `jwks`."""
    jwks = {"keys": [key.as_dict(private=False)]}
    return dict(
        server.cli_json(
            *("admin", "apps", "create", "--name", f"openid-client app {next(_names)}"),
            *("--redirect-uri", redirect_uri),
            *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
            *(arg for scope in SCOPE.split() for arg in ("--allow-scope", scope)),
            *("--token-endpoint-auth-method", "private_key_jwt"),
            *("--jwks", json.dumps(jwks)),
            *options,
        )
    )


def discover(
    rp: RelyingParty,
    server: Server,
    app: dict[str, Any],
    key: ECKey,
    *,
    dpop: bool = False,
    **metadata: Any,
) -> dict[str, Any]:
    """`dpop`: openid-client sender-constrains every request with a DPoP key (RFC 9449)."""
    return rp.ok(
        "discover",
        issuer=server.issuer,
        client_id=app["client_id"],
        private_key_pem=key.as_pem(private=True).decode(),
        kid=key.kid,
        metadata={"token_endpoint_auth_method": "private_key_jwt", **metadata},
        dpop=dpop,
    )["server"]


# --- the user agent ----------------------------------------------------------------------------


def user_signs_in_and_consents(server: Server, browser: Browser, authorization_url: str) -> str:
    """Open the URL openid-client made, sign in as Alice, allow; return the callback URL."""
    alice = server.demo["user"]
    response = browser.http.get(authorization_url)
    if response.status_code == 200 and 'name="password"' in response.text:
        response = browser.follow(browser.login(response, alice["username"], alice["password"]))
    if response.status_code == 200 and 'value="allow"' in response.text:
        response = browser.consent(response)
    assert response.status_code in (302, 303), response.text[:500]
    return str(response.headers["location"])


def jose_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def pushed_authorization_url(server: Server, rp: RelyingParty, redirect_uri: str) -> dict[str, Any]:
    """PAR through openid-client; the URL it returns carries only client_id and request_uri."""
    pushed = rp.ok("par", params={"redirect_uri": redirect_uri, "scope": SCOPE})
    url = urlsplit(pushed["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{server.issuer}/oauth2/v1/authorize"
    query = query_of(pushed["url"])
    assert set(query) == {"client_id", "request_uri"}, query
    assert query["request_uri"].startswith(REQUEST_URI_PREFIX)
    return pushed


def run_code_flow(
    server: Server,
    browser: Browser,
    rp: RelyingParty,
    app: dict[str, Any],
    redirect_uri: str,
    token_type: str = "bearer",
) -> dict[str, Any]:
    """PAR → the user → callback (code, state, iss) → tokens, ID token, userinfo."""
    pushed = pushed_authorization_url(server, rp, redirect_uri)
    assert query_of(pushed["url"])["client_id"] == app["client_id"]
    callback = user_signs_in_and_consents(server, browser, pushed["url"])
    assert callback.startswith(redirect_uri + "?"), callback
    response = query_of(callback)
    assert set(response) == {"code", "state", "iss"}, response
    assert response["state"] == pushed["state"]
    assert response["iss"] == server.issuer  # RFC 9207; openid-client checks it too

    done = rp.ok("callback", url=callback)
    tokens, claims, userinfo = done["tokens"], done["claims"], done["userinfo"]
    assert tokens["token_type"] == token_type  # openid-client lower-cases it
    assert tokens["access_token"] and tokens["refresh_token"]
    alice = server.demo["user"]
    assert claims["iss"] == server.issuer
    assert claims["aud"] in (app["client_id"], [app["client_id"]])
    assert claims["sub"] == alice["sub"]
    assert claims["nonce"] == pushed["nonce"]
    assert userinfo["sub"] == alice["sub"]
    assert userinfo["preferred_username"] == alice["username"]
    assert userinfo["email"] == "alice@tessera.test"
    return dict(tokens)


# --- tests -------------------------------------------------------------------------------------


def test_openid_client_discovers_par_and_private_key_jwt(
    server: Server, relying_party: Callable[[], RelyingParty]
) -> None:
    key = signing_key("rp-discovery")
    app = register_app(server, key, "http://127.0.0.1:8765/cb")
    metadata = discover(relying_party(), server, app, key)
    assert metadata["issuer"] == server.issuer
    assert metadata["pushed_authorization_request_endpoint"] == f"{server.issuer}/oauth2/v1/par"
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "ES256" in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"RS256", "ES256"} <= set(metadata["id_token_signing_alg_values_supported"])


def test_par_and_private_key_jwt_code_flow_with_userinfo_and_refresh(
    server: Server, browser: Browser, relying_party: Callable[[], RelyingParty]
) -> None:
    redirect_uri = "http://127.0.0.1:8765/cb"
    key = signing_key("rp-par-1")
    app = register_app(server, key, redirect_uri, "--require-pushed-authorization-requests")
    assert app["token_endpoint_auth_method"] == "private_key_jwt"
    assert app["require_pushed_authorization_requests"] is True
    assert "client_secret" not in app  # nothing to leak: the app holds a private key
    rp = relying_party()
    discover(rp, server, app, key, id_token_signed_response_alg="RS256")

    tokens = run_code_flow(server, browser, rp, app, redirect_uri)
    assert jose_header(tokens["id_token"])["alg"] == "RS256"  # the OIDC default

    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])["tokens"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotation, RFC 9700 §4.14
    assert refreshed["token_type"] == "bearer"


def test_fapi2_profile_app_runs_the_flow_with_es256_id_tokens_and_dpop(
    server: Server, browser: Browser, relying_party: Callable[[], RelyingParty]
) -> None:
    redirect_uri = "https://rp.example.test/cb"
    key = signing_key("rp-fapi-1")
    app = register_app(
        server,
        key,
        redirect_uri,
        *("--profile", "fapi2", "--token-endpoint-auth-signing-alg", "ES256"),
        *("--id-token-signed-response-alg", "ES256"),
    )
    assert app["profile"] == "fapi2"
    assert app["id_token_signed_response_alg"] == "ES256"
    rp = relying_party()
    # openid-client refuses an ID token of any other alg than the one registered; FAPI 2.0
    # wants sender-constrained tokens: DPoP (RFC 9449).
    discover(rp, server, app, key, dpop=True, id_token_signed_response_alg="ES256")

    tokens = run_code_flow(server, browser, rp, app, redirect_uri, token_type="dpop")
    assert jose_header(tokens["id_token"])["alg"] == "ES256"
    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])["tokens"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["token_type"] == "dpop"


def test_a_wrong_private_key_is_refused_at_par_with_invalid_client(
    server: Server, relying_party: Callable[[], RelyingParty]
) -> None:
    registered = signing_key("rp-par-2")
    app = register_app(
        server, registered, "http://127.0.0.1:8765/cb", "--require-pushed-authorization-requests"
    )
    impostor = signing_key("rp-par-2")  # the registered kid, another key
    rp = relying_party()
    discover(rp, server, app, impostor)
    answer = rp.call("par", params={"redirect_uri": "http://127.0.0.1:8765/cb", "scope": SCOPE})
    assert not answer["ok"]
    error = answer["error"]
    assert error["error"] == "invalid_client", error
    assert error["status"] == 401, error
    assert "url" not in answer  # no request_uri issued
