"""The integration service takes DPoP-bound tokens (RFC 9449): its real app in process (its
migrations, validator, guards) against the loopback issuer of tests/unit/resource/conftest.py.
A bound token works with its proof, on the management API and on a flow's trigger; as Bearer it
is refused; the settings pin the public URL, require DPoP, turn on nonces, or share the replay
memory in Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from tessera.integration.scopes import SCOPE_MANAGE, SCOPE_MONITOR
from tessera.integration.settings import IntegrationConfigError, load_settings
from tessera.resource import MemoryProofReplay, RedisProofReplay
from tessera.shared.integration_roles import SERVICE_MONITOR
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.support.integration import API
from tests.unit import test_config
from tests.unit.integration.conftest import service
from tests.unit.resource.conftest import Idp

DPOP_INVALID_TOKEN = 'DPoP realm="api", error="invalid_token"'
clean_env = test_config.clean_env  # no TESSERA_ variable from the shell; an empty cwd


def dpop(key: ECKey, token: str, method: str, url: str, nonce: str | None = None) -> dict[str, str]:
    proof = make_proof(key, method, url, access_token=token, nonce=nonce)
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def test_a_bound_token_works_with_its_proof_and_not_as_bearer(issuer: Idp, tmp_path: Path) -> None:
    key = new_key()
    token = issuer.token(
        scope=f"{SCOPE_MANAGE} {SCOPE_MONITOR}", roles=[SERVICE_MONITOR], cnf={"jkt": thumbprint(key)}
    )
    url = f"http://testserver{API}/integrations"
    with service(issuer, tmp_path) as client:
        answer = client.get(f"{API}/integrations", headers=dpop(key, token, "GET", url))
        assert answer.status_code == 200, answer.text
        answer = client.get(f"{API}/integrations", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith(DPOP_INVALID_TOKEN)
        # A proof for another URL of the service does not do.
        other = dpop(key, token, "GET", f"http://testserver{API}/monitoring/instances")
        answer = client.get(f"{API}/integrations", headers=other)
        assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]
        # A bound token without the scope: 403 with the DPoP challenge alone.
        weak = issuer.token(scope="other", roles=[SERVICE_MONITOR], cnf={"jkt": thumbprint(key)})
        answer = client.get(f"{API}/integrations", headers=dpop(key, weak, "GET", url))
        assert answer.status_code == 403
        assert answer.headers["www-authenticate"].startswith(
            'DPoP realm="api", error="insufficient_scope"'
        )


def test_the_settings_pin_the_url_require_dpop_and_ask_for_nonces(
    issuer: Idp, tmp_path: Path
) -> None:
    public = "https://integration.example.test"
    key = new_key()
    token = issuer.token(scope=SCOPE_MONITOR, roles=[SERVICE_MONITOR], cnf={"jkt": thumbprint(key)})
    url = f"{public}{API}/integrations"
    settings = {"public_url": public, "dpop_required": True, "dpop_nonces": True}
    with service(issuer, tmp_path, **settings) as client:
        plain = {"Authorization": f"Bearer {issuer.token(scope=SCOPE_MONITOR, roles=[SERVICE_MONITOR])}"}
        answer = client.get(f"{API}/integrations", headers=plain)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith(DPOP_INVALID_TOKEN)
        answer = client.get(f"{API}/integrations", headers=dpop(key, token, "GET", url))
        assert answer.status_code == 401
        assert 'error="use_dpop_nonce"' in answer.headers["www-authenticate"]
        nonce = answer.headers["dpop-nonce"]
        answer = client.get(f"{API}/integrations", headers=dpop(key, token, "GET", url, nonce))
        assert answer.status_code == 200, answer.text
        local = dpop(key, token, "GET", f"http://testserver{API}/integrations", nonce)
        answer = client.get(f"{API}/integrations", headers=local)
        assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]


def test_the_replay_memory_is_redis_when_configured(clean_env: None) -> None:
    settings = load_settings(issuer="https://id.example.test")
    assert isinstance(settings.dpop_policy.replay, MemoryProofReplay)
    assert settings.dpop_policy.nonces is None and not settings.dpop_policy.required
    settings = load_settings(issuer="https://id.example.test", redis_url="redis://cache:6379/0")
    assert isinstance(settings.dpop_policy.replay, RedisProofReplay)
    # Two replicas with one SECRET_KEY accept each other's nonces.
    one, two = (
        load_settings(issuer="https://id.example.test", dpop_nonces=True, secret_key="s" * 32)
        for _ in range(2)
    )
    assert one.dpop_policy.nonces is not None and two.dpop_policy.nonces is not None
    now = time.time()
    assert two.dpop_policy.nonces.is_valid(one.dpop_policy.nonces.current(now), now)


def test_a_bad_public_url_is_a_config_error(clean_env: None) -> None:
    with pytest.raises(IntegrationConfigError, match="^TESSERA_INTEGRATION_PUBLIC_URL: "):
        load_settings(issuer="https://id.example.test", public_url="integration.example.test")
