"""Integrations call backends on behalf of their caller (issue 18; RFC 8693): an `invoke` step
with `auth: {type: oauth_token_exchange, …}` exchanges the token of the user who ran the
integration for a token for the backend's audience, with the integration service's own app as
the actor. The backend, protected by `tessera.resource` on loopback, sees the user's `sub` and
the service's app in `act`; monitoring shows both; an app's own token (no user) is not
exchanged. The real identity domain and the real service (`tessera integration serve`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.backend import Backend
from tests.support.flow import demo_auth, user_tokens
from tests.support.integration import Service, bearer, client_token, running_service
from tests.support.server import Server, create_resource

CONSUMER = "urn:opc:resource:consumer::all"
ORDERS = "https://orders.tessera.test"
AUDIENCE = "https://integration.tessera.test"
MANAGE = f"{AUDIENCE}:443urn:tessera:integration:manage"
ALL = f"{AUDIENCE}:443{CONSUMER}"


@pytest.fixture(scope="module")
def service_app(server: Server) -> dict[str, Any]:
    """The integration service's app (the demo's), allowed to exchange for the backend."""
    app = server.demo["confidential_app"]
    create_resource(server, "Orders", ORDERS, CONSUMER)
    current = server.cli_json("admin", "apps", "show", app["client_id"])
    scopes = [*current["allowed_scopes"], f"{ORDERS}{CONSUMER}"]
    server.cli_json("admin", "apps", "update", app["client_id"],
                    *[arg for scope in scopes for arg in ("--allow-scope", scope)])  # fmt: skip
    server.cli_json("admin", "apps", "token-exchange", app["client_id"], "--audience", ORDERS)
    return dict(app)


@pytest.fixture(scope="module")
def backend(server: Server) -> Iterator[Backend]:
    found = Backend(server.issuer, ORDERS).start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def service(
    server: Server, tmp_path_factory: pytest.TempPathFactory, service_app: dict[str, Any]
) -> Iterator[Service]:
    with running_service(server, tmp_path_factory.mktemp("integration"), "127.0.0.1") as svc:
        yield svc


def obo_document(
    backend: Backend, service_app: dict[str, Any], token_url: str, code: str = "OBO_ORDERS"
) -> dict[str, Any]:
    auth = {
        "type": "oauth_token_exchange",
        "token_url": token_url,
        "client_id": service_app["client_id"],
        "client_secret": service_app["client_secret"],
        "audience": ORDERS,
        "scope": CONSUMER,
    }
    return {
        "code": code,
        "version": "01.00.0000",
        "name": "Orders on behalf of the caller",
        "trigger": {"method": "GET", "path": "/orders/{id}"},
        "steps": [
            {"type": "invoke", "method": "GET", "url": f"{backend.url}/orders/{{id}}",
             "auth": auth},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def deployed(
    server: Server, service: Service, backend: Backend, service_app: dict[str, Any]
) -> str:
    """An activated integration whose `invoke` calls the backend on behalf of the caller."""
    document = obo_document(backend, service_app, f"{server.issuer}/oauth2/v1/token")
    token = client_token(server, demo_auth(server), f"{ALL} {MANAGE}")
    created = httpx.post(service.url("/integrations"), json=document, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["document"]["steps"][0]["auth"]["client_secret"] == "********"
    activate = service.url("/integrations/OBO_ORDERS|01.00.0000/activate")
    assert httpx.post(activate, headers=bearer(token)).status_code == 200
    return service.url("/flows/rest/OBO_ORDERS/01.00.0000/orders/7")


def test_the_backend_sees_the_user_as_sub_and_the_service_in_act(
    server: Server, service: Service, deployed: str, service_app: dict[str, Any]
) -> None:
    alice = user_tokens(server, "alice", "Wonderland-Demo-2026", scope=ALL)["access_token"]
    for _ in range(2):  # the second run uses the cached exchanged token
        answer = httpx.get(deployed, headers=bearer(alice))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "sub": server.demo["user"]["sub"],
            "sub_type": "user",
            "client_id": service_app["client_id"],
            "act": {"sub": service_app["client_id"]},
            "scope": [CONSUMER],
            "jkt": None,
        }
    # Monitoring shows both identities: the caller and the app that acted for it.
    monitor = client_token(server, demo_auth(server), ALL)
    run_id = answer.headers["Tessera-Instance-Id"]
    run = httpx.get(service.url(f"/monitoring/instances/{run_id}"), headers=bearer(monitor))
    assert run.status_code == 200, run.text
    assert run.json()["caller"]["sub"] == server.demo["user"]["sub"]
    assert run.json()["caller"]["sub_type"] == "user"
    assert run.json()["acting_clients"] == [service_app["client_id"]]
    # The caller's token never reaches the run record or the service's log.
    assert alice not in run.text and alice not in service.logs()


def test_an_apps_own_token_has_no_user_to_act_for(
    server: Server, service: Service, deployed: str
) -> None:
    own = client_token(server, demo_auth(server), ALL)
    answer = httpx.get(deployed, headers=bearer(own))
    assert answer.status_code == 502, answer.text
    assert "HTTP 400" in answer.json()["detail"]


def test_a_callers_token_goes_only_to_the_trusted_issuers_token_endpoint(
    server: Server, service: Service, backend: Backend, service_app: dict[str, Any]
) -> None:
    """docs/security.md rule 57: a document naming another token endpoint is refused, and
    nothing is stored."""
    token = client_token(server, demo_auth(server), f"{ALL} {MANAGE}")
    foreign = obo_document(backend, service_app, "http://127.0.0.1:9/oauth2/v1/token", "OBO_EVIL")
    refused = httpx.post(service.url("/integrations"), json=foreign, headers=bearer(token))
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["errors"] == [
        {
            "field": "steps[0].auth.token_url",
            "problem": f"http://127.0.0.1:9/oauth2/v1/token is not the token endpoint "
            f"{server.issuer}/oauth2/v1/token",
        }
    ]
    stored = httpx.get(service.url("/integrations/OBO_EVIL|01.00.0000"), headers=bearer(token))
    assert stored.status_code == 404, stored.text
