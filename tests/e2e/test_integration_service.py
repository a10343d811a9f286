"""The integration service end to end: the real identity domain, the real service in its own
process (`tessera integration serve`), and a real backend HTTP server for `invoke`, all on
loopback.

The seed's steps 7 and 8: a client calls the integration service with
`Authorization: Bearer <access token>` and the operation runs; every request is authorised by
`tessera.resource` (RFC 6750: 401 with a challenge, 403 `insufficient_scope` with `scope=`,
400 for a token in the query string), every run is recorded with the caller's identity, and a
failed `invoke` answers 502 problem details (RFC 9457).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import httpx
import pytest

from tessera.shared.integration_roles import SERVICE_INVOKER, SERVICE_MONITOR
from tests.support.flow import demo_auth, user_tokens
from tests.support.integration import (
    API,
    Service,
    bearer,
    client_token,
    new_app,
    revoke_until_refused,
)
from tests.support.server import Server, create_resource, free_port

AUDIENCE = "https://integration.tessera.test"
ALL = "urn:opc:resource:consumer::all"
MONITOR = "urn:tessera:integration:monitor"
RUN = "urn:tessera:integration:run"
MANAGE = "urn:tessera:integration:manage"


# --- a real backend for `invoke` ---------------------------------------------------------------


@dataclass
class Backend:
    """A loopback HTTP server that records each request and echoes it as JSON."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Backend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                backend.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if self.path.startswith("/fail"):
                    status, answer = 500, {"oops": "backend failure"}
                else:
                    status, answer = 200, {"echo": body, "path": self.path, "method": self.command}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- the integration service in its own process ------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    b = Backend().start()
    try:
        yield b
    finally:
        b.stop()


# --- tokens ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_token(server: Server) -> str:
    """A user-less client-credentials token with the instance and the manage scopes."""
    return client_token(server, demo_auth(server), f"{AUDIENCE}:443{ALL} {AUDIENCE}:443{MANAGE}")


@pytest.fixture(scope="module")
def monitor_app(server: Server) -> tuple[str, str]:
    return new_app(
        server, "Monitoring only", f"{AUDIENCE}:443{MONITOR}", roles=(SERVICE_MONITOR,)
    )


@pytest.fixture(scope="module")
def monitor_token(server: Server, monitor_app: tuple[str, str]) -> str:
    return client_token(server, monitor_app, f"{AUDIENCE}:443{MONITOR}")


# --- helpers -----------------------------------------------------------------------------------


def document(code: str, steps: list[dict[str, Any]], **trigger: str) -> dict[str, Any]:
    return {
        "code": code,
        "version": "01.00.0000",
        "name": f"Test {code}",
        "trigger": {"method": "POST", "path": "/orders/{id}", **trigger},
        "steps": steps,
    }


def deploy(
    service: Service, token: str, doc: dict[str, Any], activate: bool = True
) -> dict[str, Any]:
    created = httpx.post(service.url("/integrations"), json=doc, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/integrations/{doc['code']}|{doc['version']}"
    if not activate:
        return created.json()
    activated = httpx.post(
        service.url(f"/integrations/{doc['code']}|{doc['version']}/activate"), headers=bearer(token)
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["state"] == "activated"
    return activated.json()


def flow_url(service: Service, code: str, path: str) -> str:
    return service.url(f"/flows/rest/{code}/01.00.0000{path}")


def run(service: Service, run_id: str, token: str) -> dict[str, Any]:
    response = httpx.get(service.url(f"/monitoring/instances/{run_id}"), headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


# --- tests -------------------------------------------------------------------------------------


def test_health_and_openapi_are_served_without_a_token(server: Server, service: Service) -> None:
    assert httpx.get(f"{service.base_url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{service.base_url}/health/ready").json()
    assert ready == {"status": "ok", "database": "ok", "revocation": "feed"}
    spec = httpx.get(service.url("/openapi.json")).json()
    # The OAuth 2.0 scheme of the identity domain, with every scope the service knows, so
    # Swagger UI's "Authorize" signs in with the code flow and tools find the scope names.
    scheme = spec["components"]["securitySchemes"]["tessera"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{server.issuer}/oauth2/v1/authorize"
    assert flow["tokenUrl"] == f"{server.issuer}/oauth2/v1/token"
    assert {ALL, MONITOR, RUN, MANAGE} <= set(flow["scopes"])
    assert f"{API}/integrations/{{ident}}/activate" in spec["paths"]
    assert f"{API}/flows/rest/{{code}}/{{version}}/{{path}}" in spec["paths"]
    listing = spec["paths"][f"{API}/monitoring/instances"]["get"]
    assert listing["security"] == [{"tessera": []}]
    assert MONITOR in listing["description"] and ALL in listing["description"]
    assert RUN in spec["info"]["description"]
    assert "IntegrationDocument" in spec["components"]["schemas"]


def test_create_activate_and_run_map_invoke_respond_with_a_client_token(
    server: Server, service: Service, backend: Backend, admin_token: str
) -> None:
    doc = document(
        "ORDER_SYNC",
        [
            {
                "type": "map",
                "name": "order",
                "output": {
                    "orderId": "path.id",
                    "priority": "query.priority",
                    "skus": "body.lines[].sku",
                    "who": {"client": "caller.client_id", "type": "caller.sub_type"},
                },
            },
            {
                "type": "invoke",
                "name": "backend",
                "url": f"{backend.url}/orders/{{id}}",
                "method": "PUT",
                "headers": {"X-Source": "tessera"},
            },
            {
                "type": "respond",
                "status": 201,
                "headers": {"X-Integration": "ORDER_SYNC"},
                "body": "{sent: steps.order, backendSaw: last.path}",
            },
        ],
    )
    created = deploy(service, admin_token, doc, activate=False)
    assert created["state"] == "configured"
    assert created["endpoint"] == f"{API}/flows/rest/ORDER_SYNC/01.00.0000/orders/{{id}}"
    # Not yet activated: nothing answers.
    response = httpx.post(
        flow_url(service, "ORDER_SYNC", "/orders/1"), json={}, headers=bearer(admin_token)
    )
    assert_problem(response, 404)
    # `|` may arrive percent-encoded.
    activated = httpx.post(
        service.url("/integrations/ORDER_SYNC%7C01.00.0000/activate"), headers=bearer(admin_token)
    )
    assert activated.json()["state"] == "activated"

    before = len(backend.seen)
    response = httpx.post(
        flow_url(service, "ORDER_SYNC", "/orders/A-17?priority=high"),
        json={"lines": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 1}]},
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-integration"] == "ORDER_SYNC"
    client_id = demo_auth(server)[0]
    mapped = {
        "orderId": "A-17",
        "priority": "high",
        "skus": ["X1", "Y2"],
        "who": {"client": client_id, "type": "client"},
    }
    assert response.json() == {"sent": mapped, "backendSaw": "/orders/A-17"}

    # The backend received the mapped document, as JSON, with the step's headers.
    (call,) = backend.seen[before:]
    assert call["method"] == "PUT" and call["path"] == "/orders/A-17"
    assert call["body"] == mapped
    assert call["headers"]["X-Source"] == "tessera"
    assert call["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in call["headers"]  # the caller's token is never forwarded

    # The run is recorded with the caller's client, newest first.
    instance = run(service, response.headers["tessera-instance-id"], admin_token)
    assert instance["integration"] == "ORDER_SYNC|01.00.0000"
    assert instance["status"] == "succeeded" and instance["http_status"] == 201
    assert instance["caller"] == {
        "sub": client_id,
        "sub_type": "client",
        "client_id": client_id,
        "user_displayname": None,
    }
    assert instance["duration_ms"] > 0 and instance["error"] is None
    listing = httpx.get(
        service.url("/monitoring/instances"),
        params={"code": "ORDER_SYNC", "limit": 1},
        headers=bearer(admin_token),
    ).json()
    assert listing["items"][0]["id"] == instance["id"]
    assert listing["limit"] == 1 and listing["total"] >= 1


def test_sample_integration_with_a_users_token_from_the_code_flow(
    server: Server, service: Service, admin_token: str
) -> None:
    sample = resources.files("tessera.integration").joinpath("samples/echo_order.yaml")
    deployed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tessera",
            "integration",
            "deploy",
            str(sample),
            "--activate",
            "--token-stdin",
            "--url",
            service.base_url,
        ],
        input=admin_token,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["state"] == "activated"

    demo = server.demo
    tokens = user_tokens(
        server,
        demo["user"]["username"],
        demo["user"]["password"],
        scope="openid profile " + demo["resource"]["scope"],
        state="s-1",
        nonce="n-1",
    )
    user_token = tokens["access_token"]

    # The management API and the sample integration both accept the user's token.
    assert httpx.get(service.url("/integrations"), headers=bearer(user_token)).status_code == 200
    response = httpx.post(
        flow_url(service, "ECHO_ORDER", "/orders/42"),
        json={"lines": [{"sku": "A-1", "qty": 2}]},
        headers=bearer(user_token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orderId"] == "42" and body["lineCount"] == 1 and body["channel"] == "api"
    assert body["requestedBy"]["name"] == "Alice Example"
    assert body["requestedBy"]["type"] == "user"
    assert body["requestedBy"]["sub"] == demo["user"]["sub"]
    instance = run(service, response.headers["tessera-instance-id"], user_token)
    assert instance["caller"]["user_displayname"] == "Alice Example"
    assert instance["caller"]["client_id"] == demo["confidential_app"]["client_id"]


def test_invoke_authenticates_with_basic_or_a_cached_client_credentials_token(
    server: Server,
    service: Service,
    backend: Backend,
    admin_token: str,
    monitor_app: tuple[str, str],
) -> None:
    client_id, secret = monitor_app
    doc = document(
        "OUTBOUND_AUTH",
        [
            {
                "type": "invoke",
                "url": f"{backend.url}/basic",
                "auth": {"type": "basic", "username": "svc", "password": "basic-pass-123"},
            },
            {
                "type": "invoke",
                "url": f"{backend.url}/oauth",
                "auth": {
                    "type": "oauth_client_credentials",
                    "token_url": f"{server.issuer}/oauth2/v1/token",
                    "client_id": client_id,
                    "client_secret": secret,
                    "scope": f"{AUDIENCE}:443{MONITOR}",
                },
            },
        ],
    )
    deploy(service, admin_token, doc)
    before = len(backend.seen)
    for _ in range(2):
        response = httpx.post(
            flow_url(service, "OUTBOUND_AUTH", "/orders/9"),
            json={"n": 1},
            headers=bearer(admin_token),
        )
        assert response.status_code == 200, response.text
    calls = backend.seen[before:]
    assert [c["path"] for c in calls] == ["/basic", "/oauth", "/basic", "/oauth"]
    assert (
        calls[0]["headers"]["Authorization"]
        == "Basic " + base64.b64encode(b"svc:basic-pass-123").decode()
    )
    first, second = calls[1]["headers"]["Authorization"], calls[3]["headers"]["Authorization"]
    assert first.startswith("Bearer ") and first.count(".") == 2
    assert first == second  # the outbound token is cached until it expires

    # Connection secrets never come back out of the API.
    shown = httpx.get(
        service.url("/integrations/OUTBOUND_AUTH|01.00.0000"), headers=bearer(admin_token)
    )
    assert shown.status_code == 200
    assert secret not in shown.text and "basic-pass-123" not in shown.text


def test_a_failed_invoke_answers_502_problem_and_is_recorded_as_failed(
    service: Service, backend: Backend, admin_token: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for code, url in (
        ("DOWN_BACKEND", f"{closed}/orders/{{id}}"),
        ("FAILING_BACKEND", f"{backend.url}/fail"),
    ):
        deploy(
            service,
            admin_token,
            document(code, [{"type": "invoke", "url": url, "timeout_seconds": 5}]),
        )
        response = httpx.post(
            flow_url(service, code, "/orders/5"), json={"a": 1}, headers=bearer(admin_token)
        )
        problem = assert_problem(response, 502)
        assert problem["title"] == "Bad gateway"
        assert ("could not be reached" if code == "DOWN_BACKEND" else "HTTP 500") in problem[
            "detail"
        ]
        assert (
            "127.0.0.1" not in problem["detail"]
        )  # the connection's address is for monitoring only
        instance = run(service, response.headers["tessera-instance-id"], admin_token)
        assert instance["status"] == "failed" and instance["http_status"] == 502
        assert "127.0.0.1" in instance["error"]
    failed = httpx.get(
        service.url("/monitoring/instances"),
        params={"status": "failed"},
        headers=bearer(admin_token),
    ).json()
    assert {"DOWN_BACKEND", "FAILING_BACKEND"} <= {i["code"] for i in failed["items"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/integrations"),
        ("POST", "/integrations"),
        ("GET", "/monitoring/instances"),
        ("POST", "/flows/rest/ECHO_ORDER/01.00.0000/orders/1"),
    ],
)
def test_no_token_is_401_with_a_bearer_challenge(service: Service, method: str, path: str) -> None:
    response = httpx.request(method, service.url(path), json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json() == {"error": "invalid_token"}


def test_a_token_for_another_audience_is_401(server: Server, service: Service) -> None:
    create_resource(server, "Other API", "https://other.tessera.test", ALL)
    other = new_app(server, "Other API client", f"https://other.tessera.test:443{ALL}")
    token = client_token(server, other, f"https://other.tessera.test:443{ALL}")
    response = httpx.get(service.url("/integrations"), headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"


def test_a_malformed_or_tampered_token_is_refused(service: Service, admin_token: str) -> None:
    head, payload, signature = admin_token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert httpx.get(service.url("/integrations"), headers=bearer(tampered)).status_code == 401
    response = httpx.get(service.url("/integrations"), headers={"Authorization": "Basic abc"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_a_monitor_only_token_reads_but_cannot_write_or_run(
    service: Service, admin_token: str, monitor_token: str
) -> None:
    for path in ("/monitoring/instances", "/integrations", "/integrations/ECHO_ORDER|01.00.0000"):
        response = httpx.get(service.url(path), headers=bearer(monitor_token))
        assert response.status_code == 200, (path, response.text)

    response = httpx.post(
        service.url("/integrations"),
        json=document("SNEAKY", [{"type": "respond"}]),
        headers=bearer(monitor_token),
    )
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and f'scope="{MANAGE}"' in challenge
    assert response.json()["error"] == "insufficient_scope"

    for call in (
        lambda: httpx.post(
            service.url("/integrations/ECHO_ORDER|01.00.0000/deactivate"),
            headers=bearer(monitor_token),
        ),
        lambda: httpx.delete(
            service.url("/integrations/ECHO_ORDER|01.00.0000"), headers=bearer(monitor_token)
        ),
    ):
        assert call().status_code == 403

    for code in ("ECHO_ORDER", "NO_SUCH_THING"):  # 403 either way: it learns nothing of what exists
        response = httpx.post(
            flow_url(service, code, "/orders/1"), json={}, headers=bearer(monitor_token)
        )
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert RUN in response.headers["www-authenticate"]


def test_a_run_scope_token_runs_integrations_but_cannot_read_them(
    server: Server, service: Service
) -> None:
    runner = new_app(server, "Runner", f"{AUDIENCE}:443{RUN}", roles=(SERVICE_INVOKER,))
    token = client_token(server, runner, f"{AUDIENCE}:443{RUN}")
    response = httpx.post(
        flow_url(service, "ECHO_ORDER", "/orders/7"), json={}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert httpx.get(service.url("/monitoring/instances"), headers=bearer(token)).status_code == 403


def test_a_token_in_the_query_string_is_400(service: Service, admin_token: str) -> None:
    for path in ("/integrations", "/flows/rest/ECHO_ORDER/01.00.0000/orders/1"):
        response = httpx.get(service.url(path), params={"access_token": admin_token})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_lifecycle_deactivated_is_404_and_activated_cannot_be_replaced(
    service: Service, admin_token: str
) -> None:
    doc = document("LIFECYCLE", [{"type": "map", "output": {"v": "'one'"}}])
    deploy(service, admin_token, doc)
    url = flow_url(service, "LIFECYCLE", "/orders/1")
    assert httpx.post(url, headers=bearer(admin_token)).json() == {"v": "one"}
    ident = service.url("/integrations/LIFECYCLE|01.00.0000")

    again = httpx.post(service.url("/integrations"), json=doc, headers=bearer(admin_token))
    assert assert_problem(again, 409)["detail"].startswith("LIFECYCLE|01.00.0000 exists")
    doc["steps"][0]["output"]["v"] = "'two'"
    assert_problem(httpx.put(ident, json=doc, headers=bearer(admin_token)), 409)
    assert_problem(httpx.delete(ident, headers=bearer(admin_token)), 409)

    deactivated = httpx.post(f"{ident}/deactivate", headers=bearer(admin_token))
    assert deactivated.json()["state"] == "deactivated"
    assert_problem(httpx.post(url, headers=bearer(admin_token)), 404)

    replaced = httpx.put(
        ident,
        content=json.dumps(doc),
        headers={**bearer(admin_token), "Content-Type": "application/json"},
    )
    assert replaced.status_code == 200, replaced.text
    httpx.post(f"{ident}/activate", headers=bearer(admin_token))
    assert httpx.post(url, headers=bearer(admin_token)).json() == {"v": "two"}

    httpx.post(f"{ident}/deactivate", headers=bearer(admin_token))
    assert httpx.delete(ident, headers=bearer(admin_token)).status_code == 204
    assert_problem(httpx.get(ident, headers=bearer(admin_token)), 404)
    listing = httpx.get(
        service.url("/integrations"), params={"state": "activated"}, headers=bearer(admin_token)
    ).json()
    assert "LIFECYCLE|01.00.0000" not in {i["id"] for i in listing["items"]}
    assert all(i["state"] == "activated" for i in listing["items"])


def test_trigger_method_and_path_must_match(service: Service, admin_token: str) -> None:
    wrong_method = httpx.get(
        flow_url(service, "ECHO_ORDER", "/orders/1"), headers=bearer(admin_token)
    )
    assert assert_problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"
    assert_problem(
        httpx.post(flow_url(service, "ECHO_ORDER", "/customers/1"), headers=bearer(admin_token)),
        404,
    )
    assert_problem(
        httpx.post(flow_url(service, "ECHO_ORDER", ""), headers=bearer(admin_token)), 404
    )
    bad_json = httpx.post(
        flow_url(service, "ECHO_ORDER", "/orders/1"),
        content=b"{broken",
        headers={**bearer(admin_token), "Content-Type": "application/json"},
    )
    assert_problem(bad_json, 400)
    not_json = httpx.post(
        flow_url(service, "ECHO_ORDER", "/orders/1"),
        content=b"a=b",
        headers={**bearer(admin_token), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(not_json, 415)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"code": "lower", "version": "01.00.0000"}', "application/json", 400, "code"),
        (b"{broken", "application/json", 400, "not valid JSON"),
        (b"code: [", "application/yaml", 400, "not valid YAML"),
        (
            b"code: BADSTEP\nversion: '01.00.0000'\nname: x\ntrigger: {method: GET, path: /}\n"
            b"steps: [{type: map, output: {a: 'path.[['}}]\n",
            "application/yaml",
            400,
            "steps[0].output",
        ),
        (b"<doc/>", "application/xml", 415, "application/yaml"),
    ],
)
def test_bad_documents_are_400_problem_details(
    service: Service, admin_token: str, body: bytes, content_type: str, status: int, fragment: str
) -> None:
    response = httpx.post(
        service.url("/integrations"),
        content=body,
        headers={**bearer(admin_token), "Content-Type": content_type},
    )
    problem = assert_problem(response, status)
    assert fragment in problem["detail"]


def test_bad_parameters_are_400_problem_details(service: Service, admin_token: str) -> None:
    assert_problem(
        httpx.get(service.url("/monitoring/instances?limit=abc"), headers=bearer(admin_token)), 400
    )
    assert_problem(
        httpx.get(service.url("/integrations/NO_PIPE"), headers=bearer(admin_token)), 400
    )
    assert_problem(
        httpx.get(service.url("/monitoring/instances/999999999"), headers=bearer(admin_token)), 404
    )


def test_a_revoked_token_is_refused_through_the_revocation_feed(
    server: Server, service: Service
) -> None:
    token = client_token(server, demo_auth(server), f"{AUDIENCE}:443{ALL}")
    assert httpx.get(service.url("/integrations"), headers=bearer(token)).status_code == 200
    answer = revoke_until_refused(
        server,
        token,
        lambda: httpx.get(service.url("/integrations"), headers=bearer(token)),
        demo_auth(server),
    )
    assert answer.status_code == 401


def test_no_secret_reaches_the_service_log(
    service: Service, server: Server, admin_token: str
) -> None:
    logs = service.logs()
    assert admin_token not in logs
    assert server.demo["confidential_app"]["client_secret"] not in logs
    assert "basic-pass-123" not in logs


# --- issue 12: deploying needs the manage scope; path parameters; the login cache ---------------


def test_an_ordinary_users_consumer_scope_token_cannot_deploy_integrations(
    server: Server, service: Service
) -> None:
    """`consumer::all` (what the demo's ordinary user may hold) reads and runs, never deploys:
    a deployed integration calls URLs of its author's choosing from the service's network."""
    demo = server.demo
    user_token = user_tokens(
        server,
        demo["user"]["username"],
        demo["user"]["password"],
        scope="openid " + demo["resource"]["scope"],
        state="s-2",
        nonce="n-2",
    )["access_token"]
    consumer_app_token = client_token(server, demo_auth(server), f"{AUDIENCE}:443{ALL}")
    for token in (user_token, consumer_app_token):
        response = httpx.post(
            service.url("/integrations"),
            json=document("NOT_YOURS", [{"type": "respond"}]),
            headers=bearer(token),
        )
        assert response.status_code == 403, response.text
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge and f'scope="{MANAGE}"' in challenge
        for verb, path in (("POST", "/activate"), ("POST", "/deactivate"), ("DELETE", "")):
            answer = httpx.request(
                verb,
                service.url(f"/integrations/ECHO_ORDER|01.00.0000{path}"),
                headers=bearer(token),
            )
            assert answer.status_code == 403, (verb, path, answer.text)
        assert httpx.get(service.url("/integrations"), headers=bearer(token)).status_code == 200


def test_dot_segment_path_parameters_never_reach_the_backend(
    service: Service, backend: Backend, admin_token: str
) -> None:
    """`/orders/%2e%2e` would have called the backend's `/orders/../items` = `/items` with the
    integration's credentials."""
    steps = [{"type": "invoke", "url": f"{backend.url}/orders/{{id}}/items", "method": "GET"}]
    deploy(service, admin_token, document("DOT_SEGMENTS", steps, path="/orders/{id}", method="GET"))
    before = len(backend.seen)
    for value in ("%2e%2e", ".%2E", "%2E", "%252e%252e", "a%5Cb"):  # httpx resolves a bare ..
        response = httpx.get(
            flow_url(service, "DOT_SEGMENTS", f"/orders/{value}"), headers=bearer(admin_token)
        )
        problem = assert_problem(response, 400)
        assert problem["type"].endswith("invalid-path-parameter"), (value, problem)
    assert backend.seen[before:] == []
    # An ordinary value with reserved characters arrives as one percent-encoded segment.
    response = httpx.get(
        flow_url(service, "DOT_SEGMENTS", "/orders/a%20b%3Fc"), headers=bearer(admin_token)
    )
    assert response.status_code == 200, response.text
    assert backend.seen[-1]["path"] == "/orders/a%20b%3Fc/items"


def _cli_deploy(service: Service, config_dir: Any, doc: dict[str, Any], *args: str) -> Any:
    path = config_dir / f"{doc['code']}.json"
    path.write_text(json.dumps(doc))
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tessera",
            "integration",
            "deploy",
            str(path),
            "--url",
            service.base_url,
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_uses_the_tessera_login_token_cache(
    server: Server, service: Service, tmp_path: Any
) -> None:
    from tessera.client.cache import CacheEntry, TokenCache
    from tessera.client.tokens import Endpoints, TokenSet

    token = client_token(server, demo_auth(server), f"{AUDIENCE}:443{MANAGE}")
    TokenCache(tmp_path).save(
        CacheEntry(
            profile="deployer",
            client_id=demo_auth(server)[0],
            endpoints=Endpoints(server.issuer, f"{server.issuer}/oauth2/v1/token"),
            tokens=TokenSet(access_token=token, expires_at=time.time() + 600),
        )
    )
    doc = document("FROM_LOGIN", [{"type": "respond"}])
    deployed = _cli_deploy(service, tmp_path, doc, "--profile", "deployer", "--activate")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["state"] == "activated"


def test_deploy_without_a_token_or_a_login_says_to_run_tessera_login(
    service: Service, tmp_path: Any
) -> None:
    deployed = _cli_deploy(service, tmp_path, document("NO_LOGIN", [{"type": "respond"}]))
    assert deployed.returncode == 2
    assert "no access token" in deployed.stderr and "tessera login --issuer" in deployed.stderr
    assert MANAGE in deployed.stderr and "Traceback" not in deployed.stderr
