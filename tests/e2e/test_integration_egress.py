"""The integration service's egress policy end to end (issue 12): with the default policy, an
integration cannot make the service read what only loopback may read (the identity domain's
`/metrics`), and deploys aimed at internal literal addresses are refused with a problem.

The service here runs with the default policy (no `TESSERA_INTEGRATION_EGRESS_ALLOW`), unlike
test_integration_service.py, which allows loopback for its backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.flow import demo_auth
from tests.support.integration import API, Service, bearer, client_token, running_service
from tests.support.server import Server

AUDIENCE = "https://integration.tessera.test"
ADMIN_SCOPES = f"{AUDIENCE}:443urn:opc:resource:consumer::all {AUDIENCE}:443urn:tessera:integration:manage"


@pytest.fixture(scope="module")
def service(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(server, tmp_path_factory.mktemp("egress")) as svc:
        yield svc


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return client_token(server, demo_auth(server), ADMIN_SCOPES)


def _document(code: str, url: str, **auth: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "invoke", "url": url, "method": "GET", "timeout_seconds": 5}
    if auth:
        step["auth"] = auth
    return {
        "code": code,
        "version": "01.00.0000",
        "name": f"Egress {code}",
        "trigger": {"method": "GET", "path": "/read"},
        "steps": [step],
    }


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_an_integration_cannot_read_the_identity_domains_loopback_metrics(
    server: Server, service: Service, token: str
) -> None:
    port = urlsplit(server.base_url).port
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text  # what SSRF was after

    # A name that resolves to loopback passes the deploy check; the connection is refused.
    doc = _document("READ_METRICS", f"http://localhost:{port}/metrics")
    created = httpx.post(service.url("/integrations"), json=doc, headers=bearer(token))
    assert created.status_code == 201, created.text
    activated = httpx.post(
        service.url("/integrations/READ_METRICS|01.00.0000/activate"), headers=bearer(token)
    )
    assert activated.status_code == 200, activated.text
    response = httpx.get(
        f"{service.base_url}{API}/flows/rest/READ_METRICS/01.00.0000/read", headers=bearer(token)
    )
    problem = _problem(response, 502)
    assert problem["type"].endswith("invoke-failed")
    assert "egress policy" in problem["detail"]
    assert "# TYPE" not in response.text and "tessera_" not in response.text

    # The same URL with the literal loopback address is refused when deployed.
    doc = _document("READ_METRICS2", f"http://127.0.0.1:{port}/metrics")
    refused = httpx.post(service.url("/integrations"), json=doc, headers=bearer(token))
    problem = _problem(refused, 400)
    assert problem["type"].endswith("egress-refused") and "loopback" in problem["detail"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]:{port}/metrics", "loopback"),
        ("http://2130706433:{port}/metrics", "loopback"),
    ],
)
def test_deploys_aimed_at_metadata_mapped_or_decimal_loopback_addresses_are_refused(
    server: Server, service: Service, token: str, url: str, reason: str
) -> None:
    port = urlsplit(server.base_url).port
    doc = _document("AIMED_INSIDE", url.format(port=port))
    response = httpx.post(service.url("/integrations"), json=doc, headers=bearer(token))
    problem = _problem(response, 400)
    assert problem["type"].endswith("egress-refused")
    assert reason in problem["detail"]
    assert problem["errors"][0]["field"] == "steps[0].url"
    missing = httpx.get(service.url("/integrations/AIMED_INSIDE|01.00.0000"), headers=bearer(token))
    assert missing.status_code == 404  # nothing half-written


def test_a_token_endpoint_on_loopback_is_refused_at_deploy(
    server: Server, service: Service, token: str
) -> None:
    auth = {
        "type": "oauth_client_credentials",
        "token_url": f"{server.issuer}/oauth2/v1/token",
        "client_id": "x",
        "client_secret": "y",
    }
    doc = _document("LOOPBACK_TOKEN", "https://backend.example.com/x", **auth)
    response = httpx.post(service.url("/integrations"), json=doc, headers=bearer(token))
    problem = _problem(response, 400)
    assert problem["errors"][0]["field"] == "steps[0].auth.token_url"
