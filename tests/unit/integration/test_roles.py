"""Oracle Integration's application roles at the integration service (issue 19): the rule table
of `tessera.shared.integration_roles`, and the service's real app in process (migrations,
validator, guards) against the loopback issuer of tests/unit/resource/conftest.py, with tokens
signed there carrying a `roles` claim (RFC 9068 §2.2.3.1).

Each route class takes exactly its roles; the scope is checked first; a denial is a 403 problem
naming the roles with the `insufficient_scope` challenge (the DPoP one for a bound token); with
`TESSERA_INTEGRATION_ENFORCE_ROLES=false` the scope alone does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.integration.scopes import SCOPE_ALL, SCOPE_MANAGE, SCOPE_MONITOR, SCOPE_RUN
from tessera.integration.settings import load_settings
from tessera.shared.integration_roles import (
    ALLOWED,
    INTEGRATION_ROLES,
    SERVICE_ADMINISTRATOR,
    SERVICE_DEVELOPER,
    SERVICE_INVOKER,
    SERVICE_MONITOR,
    SERVICE_USER,
    SERVICE_VIEWER,
    Action,
    allows,
)
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.support.integration import API, VERSION, whoami_document
from tests.unit import test_config
from tests.unit.integration.conftest import TestClient, service
from tests.unit.resource.conftest import DROP, Idp

clean_env = test_config.clean_env  # no TESSERA_ variable from the shell; an empty cwd

EVERY_SCOPE = f"{SCOPE_ALL} {SCOPE_MANAGE} {SCOPE_MONITOR} {SCOPE_RUN}"
ROLES = [role.name for role in INTEGRATION_ROLES]
WHOAMI = "WHOAMI%7C" + VERSION
FLOW = f"{API}/flows/rest/WHOAMI/{VERSION}/whoami"


def bearer(issuer: Idp, *roles: str, scope: str = EVERY_SCOPE, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(scope=scope, roles=list(roles), **claims)}"}


def deploy_and_run(client: TestClient, issuer: Idp) -> None:
    """As an administrator: WHOAMI deployed and activated, and run once (run 1)."""
    admin = bearer(issuer, SERVICE_ADMINISTRATOR)
    created = client.post(f"{API}/integrations", json=whoami_document("WHOAMI"), headers=admin)
    assert created.is_success
    assert client.post(f"{API}/integrations/{WHOAMI}/activate", headers=admin).is_success
    assert client.get(FLOW, headers=admin).status_code == 200


# Every request of the service by route class, with the status it answers when allowed (in this
# order: OTHER is created, activated, deactivated, replaced, deleted).
REQUESTS: list[tuple[Action, str, str, int]] = [
    (Action.READ, "GET", f"{API}/integrations", 200),
    (Action.READ, "GET", f"{API}/integrations/{WHOAMI}", 200),
    (Action.MONITOR, "GET", f"{API}/monitoring/instances", 200),
    (Action.MONITOR, "GET", f"{API}/monitoring/instances/1", 200),
    (Action.RUN, "GET", FLOW, 200),
    (Action.MANAGE, "POST", f"{API}/integrations", 201),
    (Action.MANAGE, "POST", f"{API}/integrations/OTHER%7C{VERSION}/activate", 200),
    (Action.MANAGE, "POST", f"{API}/integrations/OTHER%7C{VERSION}/deactivate", 200),
    (Action.MANAGE, "PUT", f"{API}/integrations/OTHER%7C{VERSION}", 200),
    (Action.MANAGE, "DELETE", f"{API}/integrations/OTHER%7C{VERSION}", 204),
]


def send(client: TestClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    sends_body = method in ("POST", "PUT") and "activate" not in path
    body = whoami_document("OTHER") if sends_body else None
    return client.request(method, path, headers=headers, json=body)


def assert_role_denied(answer: httpx.Response, action: Action) -> None:
    """The 403 problem naming the roles of `action`, with the `insufficient_scope` challenge."""
    needed = ", ".join(ALLOWED[action])
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:tessera:integration:problem:insufficient-role",
        "title": "Forbidden",
        "status": 403,
        "detail": f"needs one of the roles {needed}",
        "error": "insufficient_scope",
        "required_roles": list(ALLOWED[action]),
    }
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="insufficient_scope"')
    assert f'error_description="needs one of the roles {needed}"' in challenge
    assert "scope=" not in challenge


# --- the rule table ------------------------------------------------------------------------------


MAY: dict[str, set[Action]] = {
    SERVICE_ADMINISTRATOR: {Action.MANAGE, Action.READ, Action.MONITOR, Action.RUN},
    SERVICE_DEVELOPER: {Action.MANAGE, Action.READ, Action.MONITOR},
    SERVICE_MONITOR: {Action.READ, Action.MONITOR},
    SERVICE_USER: {Action.READ, Action.RUN},
    SERVICE_INVOKER: {Action.RUN},
    SERVICE_VIEWER: {Action.READ},
}


def test_the_rule_table() -> None:
    assert ROLES == [
        SERVICE_ADMINISTRATOR,
        SERVICE_DEVELOPER,
        SERVICE_MONITOR,
        SERVICE_USER,
        SERVICE_INVOKER,
        SERVICE_VIEWER,
    ]
    assert all(role.description for role in INTEGRATION_ROLES)
    for role, actions in MAY.items():
        for action in Action:
            assert allows({role}, action) is (action in actions), (role, action)
    assert not any(allows(set(), action) for action in Action)
    assert allows({SERVICE_DEVELOPER, SERVICE_INVOKER}, Action.RUN)
    assert allows({"SomethingElse", SERVICE_VIEWER}, Action.READ)
    assert not allows({"serviceadministrator"}, Action.READ)  # role names are exact
    assert ALLOWED[Action.MANAGE] == (SERVICE_DEVELOPER, SERVICE_ADMINISTRATOR)


# --- the service -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_route_class_takes_exactly_its_roles(issuer: Idp, tmp_path: Path, role: str) -> None:
    with service(issuer, tmp_path) as client:
        deploy_and_run(client, issuer)
        headers = bearer(issuer, role)
        for action, method, path, allowed in REQUESTS:
            answer = send(client, method, path, headers)
            if action in MAY[role]:
                assert answer.status_code == allowed, (role, method, path, answer.text)
            else:
                assert_role_denied(answer, action)


def test_a_monitor_lists_runs_but_cannot_deploy(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path) as client:
        deploy_and_run(client, issuer)
        monitor = bearer(issuer, SERVICE_MONITOR)
        runs = client.get(f"{API}/monitoring/instances", headers=monitor)
        assert runs.status_code == 200 and runs.json()["total"] == 1
        refused = client.post(f"{API}/integrations", json=whoami_document("MINE"), headers=monitor)
        assert_role_denied(refused, Action.MANAGE)
        assert client.get(f"{API}/integrations/MINE%7C{VERSION}", headers=monitor).status_code == 404


def test_a_developer_deploys_but_runs_only_when_also_an_invoker(
    issuer: Idp, tmp_path: Path
) -> None:
    with service(issuer, tmp_path) as client:
        developer = bearer(issuer, SERVICE_DEVELOPER)
        created = client.post(
            f"{API}/integrations", json=whoami_document("WHOAMI"), headers=developer
        )
        assert created.status_code == 201, created.text
        activate = client.post(f"{API}/integrations/{WHOAMI}/activate", headers=developer)
        assert activate.status_code == 200
        assert_role_denied(client.get(FLOW, headers=developer), Action.RUN)
        both = bearer(issuer, SERVICE_DEVELOPER, SERVICE_INVOKER)
        assert client.get(FLOW, headers=both).json() == {"sub": "user-42"}
        # The refused call was not a run; the one that ran is.
        runs = client.get(f"{API}/monitoring/instances", headers=developer).json()
        assert runs["total"] == 1


def test_an_apps_own_roles_count_as_a_users_do(issuer: Idp, tmp_path: Path) -> None:
    """A client-credentials token carries the roles granted to the app itself."""
    with service(issuer, tmp_path) as client:
        deploy_and_run(client, issuer)
        app = {"sub": "app-7", "sub_type": "client", "user_displayname": DROP}
        invoker = bearer(issuer, SERVICE_INVOKER, **app)
        assert client.get(FLOW, headers=invoker).status_code == 200
        assert_role_denied(client.get(f"{API}/integrations", headers=invoker), Action.READ)


def test_the_scope_comes_first_and_a_role_does_not_replace_it(
    issuer: Idp, tmp_path: Path
) -> None:
    with service(issuer, tmp_path) as client:
        deploy_and_run(client, issuer)
        # An administrator's token with only the run scope: 403 insufficient_scope, with scope=.
        admin = bearer(issuer, SERVICE_ADMINISTRATOR, scope=SCOPE_RUN)
        for action, method, path, _ in REQUESTS:
            if action is Action.RUN:
                continue
            answer = send(client, method, path, admin)
            assert answer.status_code == 403, (method, path)
            assert answer.json()["error"] == "insufficient_scope"
            assert "scope=" in answer.headers["www-authenticate"], (method, path)
            assert "detail" not in answer.json()  # the RFC 6750 body, not the role problem
        # Neither scope nor role: the scope is what the answer names.
        nothing = bearer(issuer, scope=SCOPE_RUN)
        answer = client.post(f"{API}/integrations", json=whoami_document("X"), headers=nothing)
        assert f'scope="{SCOPE_MANAGE}"' in answer.headers["www-authenticate"]


def test_a_flow_that_does_not_exist_is_403_without_a_run_role(
    issuer: Idp, tmp_path: Path
) -> None:
    """A token that could run nothing learns nothing about which integrations exist."""
    with service(issuer, tmp_path) as client:
        deploy_and_run(client, issuer)
        developer = bearer(issuer, SERVICE_DEVELOPER)
        missing = f"{API}/flows/rest/NOPE/{VERSION}/whoami"
        assert_role_denied(client.get(missing, headers=developer), Action.RUN)
        assert_role_denied(client.get(FLOW, headers=developer), Action.RUN)
        user = bearer(issuer, SERVICE_USER)
        assert client.get(missing, headers=user).status_code == 404


@pytest.mark.parametrize("claim", ["ServiceAdministrator", {"ServiceAdministrator": True}, 1, DROP])
def test_a_missing_or_malformed_roles_claim_grants_nothing(
    issuer: Idp, tmp_path: Path, claim: Any
) -> None:
    with service(issuer, tmp_path) as client:
        token = issuer.token(scope=EVERY_SCOPE, roles=claim)
        answer = client.get(f"{API}/integrations", headers={"Authorization": f"Bearer {token}"})
        assert_role_denied(answer, Action.READ)


def test_a_dpop_bound_token_without_the_role_gets_the_dpop_challenge(
    issuer: Idp, tmp_path: Path
) -> None:
    key = new_key()
    token = issuer.token(scope=EVERY_SCOPE, roles=[SERVICE_VIEWER], cnf={"jkt": thumbprint(key)})
    url = f"http://testserver{API}/monitoring/instances"
    proof = make_proof(key, "GET", url, access_token=token)
    with service(issuer, tmp_path) as client:
        answer = client.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert answer.status_code == 403
        assert answer.json()["required_roles"] == list(ALLOWED[Action.MONITOR])
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith('DPoP realm="api", error="insufficient_scope"')
        assert "Bearer" not in challenge


def test_without_enforcement_the_scope_alone_does(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path, enforce_roles=False) as client:
        plain = {"Authorization": f"Bearer {issuer.token(scope=EVERY_SCOPE)}"}
        created = client.post(f"{API}/integrations", json=whoami_document("WHOAMI"), headers=plain)
        assert created.is_success
        assert client.post(f"{API}/integrations/{WHOAMI}/activate", headers=plain).is_success
        assert client.get(FLOW, headers=plain).status_code == 200
        assert client.get(f"{API}/monitoring/instances", headers=plain).status_code == 200
        # The scope is still required.
        monitor = bearer(issuer, SERVICE_ADMINISTRATOR, scope=SCOPE_MONITOR)
        answer = client.get(FLOW, headers=monitor)
        assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"


def test_the_setting_defaults_to_enforcing_and_is_read_from_the_environment(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(issuer="https://id.example.test").enforce_roles is True
    monkeypatch.setenv("TESSERA_INTEGRATION_ISSUER", "https://id.example.test")
    monkeypatch.setenv("TESSERA_INTEGRATION_ENFORCE_ROLES", "false")
    assert load_settings().enforce_roles is False


def test_the_openapi_description_names_the_roles(issuer: Idp, tmp_path: Path) -> None:
    with service(issuer, tmp_path) as client:
        described = client.get(f"{API}/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, item in described["paths"].items()
        for method, operation in item.items()
    }
    runs = operations["GET", f"{API}/monitoring/instances"]["description"]
    assert "`ServiceMonitor`, `ServiceDeveloper`, `ServiceAdministrator`" in runs
    create = operations["POST", f"{API}/integrations"]["description"]
    assert "`ServiceDeveloper`, `ServiceAdministrator`" in create
    run = operations["GET", f"{API}/flows/rest/{{code}}/{{version}}/{{path}}"]["description"]
    assert "`ServiceInvoker`, `ServiceUser`, `ServiceAdministrator`" in run
    forbidden = operations["GET", f"{API}/integrations"]["responses"]["403"]["content"]
    assert set(forbidden) == {"application/json", "application/problem+json"}
    assert "ServiceViewer" in described["info"]["description"]
