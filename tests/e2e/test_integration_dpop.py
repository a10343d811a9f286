"""DPoP (RFC 9449) end to end with the integration service: the real identity domain issues a
DPoP-bound client-credentials token (`cnf.jkt`, `token_type: DPoP`), the real service
(`tessera integration serve`) takes it with a proof per request and refuses it as a bearer
token or with a replayed proof, drops it once revoked (the revocation feed), an `invoke` step
with `dpop: true` calls a backend protected by `tessera.resource` that requires DPoP, and
`tessera integration deploy` uses a DPoP-bound `tessera login` with proofs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tests.support.backend import Backend
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.support.flow import demo_auth
from tests.support.integration import Service, new_app, revoke_until_refused
from tests.support.server import Server

AUDIENCE = "https://integration.tessera.test"
ALL = f"{AUDIENCE}:443urn:opc:resource:consumer::all"
MANAGE = f"{AUDIENCE}:443urn:tessera:integration:manage"
MONITOR = f"{AUDIENCE}:443urn:tessera:integration:monitor"


@pytest.fixture(scope="module")
def backend(server: Server) -> Iterator[Backend]:
    found = Backend(server.issuer, AUDIENCE, require_dpop=True).start()
    try:
        yield found
    finally:
        found.stop()


# --- DPoP-bound tokens and calls ---------------------------------------------------------------


def bound_token(server: Server, creds: tuple[str, str], scope: str, key: ECKey) -> str:
    """A client-credentials token bound to `key` (RFC 9449 §5), the nonce handled if asked."""
    url = f"{server.issuer}/oauth2/v1/token"
    data = {"grant_type": "client_credentials", "scope": scope}
    nonce = None
    for _ in range(2):
        proof = make_proof(key, "POST", url, nonce=nonce)
        response = httpx.post(url, data=data, auth=creds, headers={"DPoP": proof})
        nonce = response.headers.get("dpop-nonce")
        if response.status_code != 400 or response.json().get("error") != "use_dpop_nonce":
            break
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    return str(body["access_token"])


def dpop_call(
    method: str, url: str, token: str, key: ECKey, proof: str | None = None, **kwargs: Any
) -> httpx.Response:
    proof = proof or make_proof(key, method, url, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    return httpx.request(method, url, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def key() -> ECKey:
    return new_key()


@pytest.fixture(scope="module")
def token(server: Server, key: ECKey) -> str:
    return bound_token(server, demo_auth(server), f"{ALL} {MANAGE}", key)


# --- tests -------------------------------------------------------------------------------------


def test_a_bound_token_calls_the_service_with_proofs_and_not_as_bearer(
    service: Service, token: str, key: ECKey
) -> None:
    url = service.url("/integrations")
    proof = make_proof(key, "GET", url, access_token=token)
    assert dpop_call("GET", url, token, key, proof).status_code == 200
    # The same proof again: §11.1.
    replayed = dpop_call("GET", url, token, key, proof)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    # The token copied out as a bearer token is useless (§7.2).
    stolen = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert stolen.status_code == 401, stolen.text
    challenge = stolen.headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="api", error="invalid_token"')
    assert 'algs="ES256 PS256 RS256 EdDSA"' in challenge
    # And with a proof of another key (a thief's own).
    thief = dpop_call("GET", url, token, new_key())
    assert thief.status_code == 401
    assert 'error="invalid_token"' in thief.headers["www-authenticate"]


def test_an_invoke_with_dpop_client_credentials_calls_a_backend_requiring_dpop(
    server: Server, service: Service, backend: Backend, token: str, key: ECKey
) -> None:
    caller = new_app(server, "DPoP backend caller", MONITOR)
    for code, dpop in (("DPOP_BACKEND", True), ("BEARER_BACKEND", False)):
        auth = {
            "type": "oauth_client_credentials",
            "token_url": f"{server.issuer}/oauth2/v1/token",
            "client_id": caller[0],
            "client_secret": caller[1],
            "scope": MONITOR,
            "dpop": dpop,
        }
        doc = {
            "code": code,
            "version": "01.00.0000",
            "name": f"Test {code}",
            "trigger": {"method": "POST", "path": "/orders/{id}"},
            "steps": [{"type": "invoke", "url": f"{backend.url}/orders/{{id}}", "auth": auth}],
        }
        created = dpop_call("POST", service.url("/integrations"), token, key, json=doc)
        assert created.status_code == 201, created.text
        activate = service.url(f"/integrations/{code}|01.00.0000/activate")
        assert dpop_call("POST", activate, token, key).status_code == 200
    before = len(backend.seen)
    for _ in range(2):  # the second run reuses the cached bound token
        run = service.url("/flows/rest/DPOP_BACKEND/01.00.0000/orders/7")
        answer = dpop_call("POST", run, token, key, json={"n": 1})
        assert answer.status_code == 200, answer.text
        assert answer.json()["client_id"] == caller[0] and answer.json()["jkt"]
    assert backend.seen[before:] == ["DPoP "] * 2
    # Without `dpop`, the backend refuses the bearer token: 502 for the caller.
    run = service.url("/flows/rest/BEARER_BACKEND/01.00.0000/orders/7")
    answer = dpop_call("POST", run, token, key, json={"n": 1})
    assert answer.status_code == 502, answer.text
    assert "HTTP 401" in answer.json()["detail"]


def test_a_revoked_bound_token_is_refused_through_the_revocation_feed(
    server: Server, service: Service
) -> None:
    key = new_key()
    revocable = bound_token(server, demo_auth(server), ALL, key)
    url = service.url("/integrations")
    assert dpop_call("GET", url, revocable, key).status_code == 200
    answer = revoke_until_refused(
        server, revocable, lambda: dpop_call("GET", url, revocable, key), demo_auth(server)
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('DPoP realm="api", error="invalid_token"')
    assert thumbprint(key)  # the key itself was fine: the token is what was revoked


def test_deploy_with_a_dpop_bound_login_sends_proofs(
    server: Server, service: Service, tmp_path: Path
) -> None:
    from tessera.client.cache import CacheEntry, TokenCache
    from tessera.client.dpop import DPoPKey
    from tessera.client.tokens import Endpoints, TokenSet

    login_key = DPoPKey.generate()
    jwk: dict[str, Any] = dict(login_key.to_json())
    key = ECKey.import_key(jwk)  # the login's own key signs the token request's proof
    bound = bound_token(server, demo_auth(server), MANAGE, key)
    TokenCache(tmp_path).save(
        CacheEntry(
            profile="dpop",
            client_id=demo_auth(server)[0],
            endpoints=Endpoints(server.issuer, f"{server.issuer}/oauth2/v1/token"),
            tokens=TokenSet(access_token=bound, token_type="DPoP", expires_at=time.time() + 600),
            dpop_key=login_key,
        )
    )
    doc = {
        "code": "FROM_DPOP_LOGIN",
        "version": "01.00.0000",
        "name": "Deployed with a DPoP login",
        "trigger": {"method": "POST", "path": "/orders/{id}"},
        "steps": [{"type": "respond"}],
    }
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_CONFIG_DIR"] = str(tmp_path)
    deployed = subprocess.run(
        [sys.executable, "-m", "tessera", "integration", "deploy", str(path),
         "--url", service.base_url, "--profile", "dpop", "--activate"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["state"] == "activated"
    # The same token given as --token goes as Bearer: refused.
    again = subprocess.run(
        [sys.executable, "-m", "tessera", "integration", "deploy", str(path),
         "--url", service.base_url, "--token", bound],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2 and "HTTP 401" in again.stderr, again.stderr
