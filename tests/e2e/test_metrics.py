"""Prometheus metrics at /metrics: what they count, route templates instead of paths, and who
may read them (TESSERA_METRICS_ALLOW; loopback by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.flow import demo_auth, token_request, user_tokens
from tests.support.server import Server, running_server


def metrics(server: Server, **headers: str) -> dict[str, float]:
    response = httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_tokens_and_errors_are_counted_by_grant_type_and_error(server: Server) -> None:
    before = metrics(server)
    key = 'tessera_tokens_issued_total{grant_type="client_credentials"}'
    for _ in range(3):
        ok = token_request(server.base_url, {"grant_type": "client_credentials"}, demo_auth(server))
        assert ok.status_code == 200
    bad = token_request(server.base_url, {"grant_type": "client_credentials"}, ("nobody", "x"))
    assert bad.status_code == 401
    after = metrics(server)
    assert after[key] - before.get(key, 0) == 3
    error = 'tessera_token_errors_total{error="invalid_client"}'
    assert after[error] - before.get(error, 0) == 1


def test_sign_ins_count_outcomes_and_the_password_hash_cpu(server: Server) -> None:
    before = metrics(server)
    user = server.demo["user"]
    user_tokens(server, user["username"], user["password"], scope=server.demo["resource"]["scope"])
    after = metrics(server)
    success = 'tessera_logins_total{outcome="success"}'
    assert after[success] - before.get(success, 0) == 1
    assert after["tessera_password_hashes_total"] - before["tessera_password_hashes_total"] == 1
    spent = after["tessera_password_hash_cpu_seconds_total"] - before.get(
        "tessera_password_hash_cpu_seconds_total", 0
    )
    # One argon2id verification at OWASP's parameters costs milliseconds of CPU, not nothing.
    assert 0.001 < spent < 5
    code_tokens = 'tessera_tokens_issued_total{grant_type="authorization_code"}'
    assert after[code_tokens] - before.get(code_tokens, 0) == 1


def test_requests_are_labelled_by_route_template_never_by_path(server: Server) -> None:
    httpx.get(f"{server.base_url}/oauth2/v1/keys", timeout=30)
    httpx.get(f"{server.base_url}/no/such/path-with-a-secret-looking-id", timeout=30)
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    assert re.search(
        r'tessera_http_request_duration_seconds_count\{method="GET",route="/oauth2/v1/keys",'
        r'status="200"\} [1-9]',
        text,
    )
    assert 'route="unmatched",status="404"' in text
    assert "path-with-a-secret-looking-id" not in text


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Metrics readable from 10.0.0.0/8 only; no proxy is trusted."""
    data_dir: Path = tmp_path_factory.mktemp("closed")
    env = {"TESSERA_METRICS_ALLOW": '["10.0.0.0/8"]'}
    with running_server(data_dir, extra_env=env) as srv:
        yield srv


def test_metrics_are_refused_to_addresses_not_allowed(closed_server: Server) -> None:
    url = f"{closed_server.base_url}/metrics"
    assert httpx.get(url, timeout=30).status_code == 404
    # A forwarded address counts only from a trusted proxy (none here).
    spoofed = httpx.get(url, headers={"X-Forwarded-For": "10.1.2.3"}, timeout=30)
    assert spoofed.status_code == 404
    assert "tessera_" not in spoofed.text


def test_metrics_under_several_workers_count_every_workers_requests(tmp_path: Path) -> None:
    """`--workers 2`: whichever worker answers /metrics, it shows both workers' counts."""
    from concurrent.futures import ThreadPoolExecutor

    with running_server(tmp_path / "var", args=("--workers", "2")) as server:
        def live(_: int) -> int:
            # A new connection each time, so that both workers take some.
            return httpx.get(f"{server.base_url}/health/live", headers={"Connection": "close"}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(live, range(60))) == {200}
        key = 'tessera_http_request_duration_seconds_count{method="GET",route="/health/live",status="200"}'
        for _ in range(5):  # each scrape may be answered by either worker
            assert metrics(server)[key] == 60
