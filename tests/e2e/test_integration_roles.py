"""Oracle Integration's roles end to end (issue 19): the real identity domain grants them and
puts them in access tokens (`roles`, RFC 9068 §2.2.3.1), the real integration service (`tessera
integration serve`) enforces them (docs/groups-and-roles.md).

Users sign in through the code flow with the demo's confidential app and every scope of the
integration resource, so roles alone make the difference: a Monitor lists runs but cannot
deploy; a Developer deploys but runs only once also an Invoker (at the next token); a role
taken away with revocation refuses the live token; a token for another resource carries none
of these roles."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from tessera.shared.integration_roles import (
    SERVICE_ADMINISTRATOR,
    SERVICE_DEVELOPER,
    SERVICE_INVOKER,
    SERVICE_MONITOR,
    SERVICE_USER,
)
from tests.support.flow import demo_auth, token_request, user_tokens
from tests.support.integration import (
    AUDIENCE,
    VERSION,
    Service,
    bearer,
    client_token,
    grant_roles,
    new_app,
    revoke_roles,
    whoami_document,
)
from tests.support.server import Server, create_resource

ALL = f"{AUDIENCE}:443urn:opc:resource:consumer::all"
MANAGE = f"{AUDIENCE}:443urn:tessera:integration:manage"
RUN = f"{AUDIENCE}:443urn:tessera:integration:run"
PASSWORD = "Amber-Kettle-Harbour-2026"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def new_user(server: Server, username: str, *roles: str) -> str:
    server.cli("admin", "users", "create", username, "--password-stdin", input=PASSWORD + "\n")
    if roles:
        grant_roles(server, "user", username, *roles)
    return username


def sign_in(server: Server, username: str) -> dict[str, Any]:
    """The user's tokens from the code flow: every scope of the integration resource."""
    return user_tokens(server, username, PASSWORD, scope=f"{ALL} {MANAGE}")


def refreshed(server: Server, tokens: dict[str, Any]) -> str:
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    answer = token_request(server.base_url, data, auth=demo_auth(server))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def deploy(service: Service, token: str, code: str) -> httpx.Response:
    created = httpx.post(
        service.url("/integrations"), json=whoami_document(code), headers=bearer(token)
    )
    if created.status_code != 201:
        return created
    return httpx.post(service.url(f"/integrations/{code}|{VERSION}/activate"), headers=bearer(token))


def run(service: Service, token: str, code: str) -> httpx.Response:
    return httpx.get(service.url(f"/flows/rest/{code}/{VERSION}/whoami"), headers=bearer(token))


def assert_needs(answer: httpx.Response, *roles: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["detail"] == "needs one of the roles " + ", ".join(roles)
    assert problem["required_roles"] == list(roles)
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


@pytest.fixture(scope="module")
def deployed(server: Server, service: Service) -> str:
    """ROLES_BASE, deployed by the demo app (a ServiceAdministrator) and run once."""
    admin = client_token(server, demo_auth(server), f"{ALL} {MANAGE}")
    assert deploy(service, admin, "ROLES_BASE").status_code == 200
    assert run(service, admin, "ROLES_BASE").status_code == 200
    return "ROLES_BASE"


def test_the_demo_users_token_carries_her_roles(server: Server) -> None:
    alice = server.demo["user"]
    tokens = user_tokens(server, alice["username"], alice["password"], scope=f"{ALL} {MANAGE}")
    roles = claims_of(tokens["access_token"])["roles"]
    assert roles == [SERVICE_DEVELOPER, SERVICE_INVOKER, SERVICE_MONITOR]


def test_a_monitor_lists_runs_but_cannot_deploy_or_run(
    server: Server, service: Service, deployed: str
) -> None:
    token = sign_in(server, new_user(server, "mona", SERVICE_MONITOR))["access_token"]
    assert claims_of(token)["roles"] == [SERVICE_MONITOR]
    runs = httpx.get(service.url("/monitoring/instances"), headers=bearer(token))
    assert runs.status_code == 200 and runs.json()["total"] >= 1
    assert httpx.get(service.url("/integrations"), headers=bearer(token)).status_code == 200
    assert_needs(deploy(service, token, "MONA"), SERVICE_DEVELOPER, SERVICE_ADMINISTRATOR)
    assert_needs(run(service, token, deployed), SERVICE_INVOKER, SERVICE_USER, SERVICE_ADMINISTRATOR)


def test_a_developer_deploys_and_runs_once_also_an_invoker(
    server: Server, service: Service
) -> None:
    tokens = sign_in(server, new_user(server, "devon", SERVICE_DEVELOPER))
    token = tokens["access_token"]
    assert deploy(service, token, "DEVON").status_code == 200
    assert_needs(run(service, token, "DEVON"), SERVICE_INVOKER, SERVICE_USER, SERVICE_ADMINISTRATOR)
    # A role granted reaches the next token, not the one already issued.
    grant_roles(server, "user", "devon", SERVICE_INVOKER)
    assert run(service, token, "DEVON").status_code == 403
    fresh = refreshed(server, tokens)
    assert claims_of(fresh)["roles"] == [SERVICE_DEVELOPER, SERVICE_INVOKER]
    answer = run(service, fresh, "DEVON")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sub": claims_of(fresh)["sub"]}


def test_a_role_taken_away_with_revocation_refuses_the_live_token(
    server: Server, service: Service, deployed: str
) -> None:
    tokens = sign_in(server, new_user(server, "ursula", SERVICE_USER))
    token = tokens["access_token"]
    assert run(service, token, deployed).status_code == 200
    revoke_roles(server, "user", "ursula", SERVICE_USER, revoke_tokens=True)
    deadline = time.monotonic() + 5
    while (answer := run(service, token, deployed)).status_code == 200:
        assert time.monotonic() < deadline, "the revocation did not reach the integration service"
        time.sleep(0.1)
    assert answer.status_code == 401
    # The refresh token went with the grant: no new token to come back with.
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert token_request(server.base_url, data, auth=demo_auth(server)).status_code == 400


def test_an_apps_own_token_carries_the_apps_roles(
    server: Server, service: Service, deployed: str
) -> None:
    invoker = new_app(server, "Roles invoker", RUN, roles=(SERVICE_INVOKER,))
    token = client_token(server, invoker, RUN)
    assert claims_of(token)["roles"] == [SERVICE_INVOKER]
    assert run(service, token, deployed).status_code == 200
    bare = client_token(server, new_app(server, "Roles nobody", RUN), RUN)
    assert "roles" not in claims_of(bare)
    assert_needs(run(service, bare, deployed), SERVICE_INVOKER, SERVICE_USER, SERVICE_ADMINISTRATOR)


def test_a_token_for_another_resource_carries_none_of_these_roles(server: Server) -> None:
    other = "https://ledger.roles.test"
    ledger = f"{other}:443urn:opc:resource:consumer::all"
    create_resource(server, "Ledger (roles)", other, "urn:opc:resource:consumer::all")
    # An app that is a ServiceAdministrator of the integration resource, and its user Alice (a
    # Developer, Invoker and Monitor there): their tokens for the ledger carry no role.
    redirect = "http://127.0.0.1:8080/ledger-callback"
    app = server.cli_json(
        "admin", "apps", "create", "--name", "Ledger and integration client",
        "--redirect-uri", redirect, "--grant-type", "authorization_code",
        "--grant-type", "client_credentials", "--allow-scope", ledger, "--allow-scope", RUN,
    )  # fmt: skip
    grant_roles(server, "app", app["client_id"], SERVICE_ADMINISTRATOR)
    creds = (app["client_id"], app["client_secret"])
    assert claims_of(client_token(server, creds, RUN))["roles"] == [SERVICE_ADMINISTRATOR]
    assert "roles" not in claims_of(client_token(server, creds, ledger))
    alice = server.demo["user"]
    browser_app = {**creds_dict(app), "redirect_uri": redirect}
    user = user_tokens(server, alice["username"], alice["password"], scope=ledger, app=browser_app)
    assert "roles" not in claims_of(user["access_token"])


def creds_dict(app: dict[str, Any]) -> dict[str, str]:
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}
