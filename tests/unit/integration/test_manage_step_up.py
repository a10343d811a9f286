"""`TESSERA_INTEGRATION_MANAGE_ACR` / `_MANAGE_MAX_AGE`: the routes that change integrations
require a level or a recent sign-in (RFC 9470), reading, monitoring and running flows do not.
The service runs in-process (its real app, migrations and validator) against the loopback
issuer of tests/unit/resource/conftest.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tessera.integration.cli import _step_up_hint
from tessera.integration.scopes import SCOPE_ALL, SCOPE_MANAGE, SCOPE_MONITOR
from tessera.integration.settings import IntegrationConfigError, load_settings
from tessera.shared.acr import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT
from tessera.shared.integration_roles import SERVICE_ADMINISTRATOR
from tests.support.integration import API
from tests.unit import test_config
from tests.unit.integration.conftest import service
from tests.unit.resource.conftest import Idp

ACTIVATE = f"{API}/integrations/ECHO%7C01.00.0000/activate"
clean_env = test_config.clean_env  # no TESSERA_ variable from the shell; an empty cwd


def bearer(
    issuer: Idp, acr: str | None, scope: str = SCOPE_MANAGE, **claims: object
) -> dict[str, str]:
    """A token of `acr` (signed in 30 s ago unless `auth_time` says otherwise), of a
    ServiceAdministrator unless `roles` says otherwise."""
    extra: dict[str, object] = {"acr": acr, "auth_time": int(time.time()) - 30} if acr else {}
    extra["roles"] = [SERVICE_ADMINISTRATOR]
    return {"Authorization": f"Bearer {issuer.token(scope=scope, **{**extra, **claims})}"}


# --- the settings ------------------------------------------------------------------------------


def test_the_setting_is_off_by_default() -> None:
    settings = load_settings(issuer="https://id.example.test")
    assert settings.manage_acr is None and settings.manage_max_age is None
    assert not settings.manage_requirement


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_INTEGRATION_ISSUER", "https://id.example.test")
    monkeypatch.setenv("TESSERA_INTEGRATION_MANAGE_ACR", f" {ACR_PHISHING_RESISTANT}  {ACR_MFA} ")
    monkeypatch.setenv("TESSERA_INTEGRATION_MANAGE_MAX_AGE", "900")
    needed = load_settings().manage_requirement
    assert needed.acr_values == (ACR_PHISHING_RESISTANT, ACR_MFA)
    assert needed.max_age == 900


@pytest.mark.parametrize(
    ("name", "value"),
    [("MANAGE_ACR", 'urn:"quoted"'), ("MANAGE_MAX_AGE", "-1"), ("MANAGE_MAX_AGE", "soon")],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("TESSERA_INTEGRATION_ISSUER", "https://id.example.test")
    monkeypatch.setenv(f"TESSERA_INTEGRATION_{name}", value)
    with pytest.raises(IntegrationConfigError, match=f"^TESSERA_INTEGRATION_{name}: "):
        load_settings()


# --- the routes --------------------------------------------------------------------------------


def test_managing_needs_the_level_and_answers_the_rfc9470_challenge(
    issuer: Idp, tmp_path: Path
) -> None:
    with service(issuer, tmp_path, manage_acr=ACR_MFA) as client:
        refused = client.post(ACTIVATE, headers=bearer(issuer, ACR_PASSWORD))
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert 'error="insufficient_user_authentication"' in challenge
        assert f'acr_values="{ACR_MFA}"' in challenge
        # `tessera integration deploy` says how to get the level.
        assert f"tessera login --issuer URL --client-id ID --acr {ACR_MFA}" in _step_up_hint(refused)
        writes = (("DELETE", ACTIVATE.removesuffix("/activate")), ("POST", f"{API}/integrations"))
        for method, path in writes:
            answer = client.request(method, path, headers=bearer(issuer, ACR_PASSWORD))
            assert answer.status_code == 401, (method, path, answer.text)
        # Strong enough: past the check, on to the store (no such integration).
        for acr in (ACR_MFA, ACR_PHISHING_RESISTANT):
            assert client.post(ACTIVATE, headers=bearer(issuer, acr)).status_code == 404


def test_reading_monitoring_and_running_flows_need_no_step_up(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path, manage_acr=ACR_MFA) as client:
        weak = bearer(issuer, ACR_PASSWORD, scope=f"{SCOPE_MANAGE} {SCOPE_ALL}")
        assert client.get(f"{API}/integrations", headers=weak).status_code == 200
        assert client.get(f"{API}/monitoring/instances", headers=weak).status_code == 200
        flow = client.post(f"{API}/flows/rest/ECHO/01.00.0000/x", headers=weak, json={})
        assert flow.status_code == 404  # no such integration, not a step-up


def test_a_missing_scope_is_403_before_the_level(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path, manage_acr=ACR_MFA) as client:
        answer = client.post(ACTIVATE, headers=bearer(issuer, ACR_PASSWORD, scope=SCOPE_MONITOR))
        assert answer.status_code == 403
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


def test_a_client_token_cannot_manage_when_a_level_is_required(
    issuer: Idp, tmp_path: Path
) -> None:
    with service(issuer, tmp_path, manage_acr=ACR_MFA) as client:
        machine = bearer(issuer, None, sub="app-7", sub_type="client")
        answer = client.post(ACTIVATE, headers=machine)
        assert answer.status_code == 401
        assert "insufficient_user_authentication" in answer.headers["www-authenticate"]


def test_max_age_alone_asks_for_a_recent_sign_in(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path, manage_max_age=60) as client:
        recent = bearer(issuer, ACR_PASSWORD)  # signed in 30 s ago
        assert client.post(ACTIVATE, headers=recent).status_code == 404
        old = bearer(issuer, ACR_MFA, auth_time=int(time.time()) - 3600)
        answer = client.post(ACTIVATE, headers=old)
        assert answer.status_code == 401
        assert 'max_age="60"' in answer.headers["www-authenticate"]


def test_without_the_setting_any_level_may_manage(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path) as client:
        assert client.post(ACTIVATE, headers=bearer(issuer, ACR_PASSWORD)).status_code == 404
        assert client.post(ACTIVATE, headers=bearer(issuer, None)).status_code == 404
