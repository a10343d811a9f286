"""The domain router on every request (issue 14, docs/domains.md): a request for the default
domain looks nothing up; a domain's row is read once per cache time, and only a well-formed
name or host name is ever looked up; the errors a domain's browser sees name the domain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.config import load_settings
from tessera.context import Context, open_context
from tessera.domain.identity_domains import IdentityDomain
from tessera.web.app import build_app
from tessera.web.domains import DomainDirectory, DomainRouter
from tessera.web.services import SCOPE_KEY
from tests.unit.conftest import add_domain

BASE = "http://id.test:8000"
ACME = IdentityDomain("dacme", "acme", "Acme Corporation", datetime(2026, 3, 1, tzinfo=UTC))
HOSTED = IdentityDomain(
    "dhost", "hosted", "Hosted", datetime(2026, 3, 1, tzinfo=UTC), host="login.hosted.example"
)


class _Rows:
    """The domain store's two lookups, counted."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.directory = DomainDirectory(self, ttl=60)  # type: ignore[arg-type]

    def get_by_name(self, name: str) -> IdentityDomain | None:
        self.asked.append(f"name:{name}")
        return {"acme": ACME, "hosted": HOSTED}.get(name)

    def get_by_host(self, host: str) -> IdentityDomain | None:
        self.asked.append(f"host:{host}")
        return HOSTED if host == HOSTED.host else None


class _Services:
    """What the router puts on the scope: here, the domain itself."""

    def peek(self, domain: IdentityDomain) -> Any:
        return domain

    def get(self, domain: IdentityDomain) -> Any:
        return domain


def _route(rows: _Rows, path: str, host: str = "id.test:8000") -> tuple[int, Any]:
    """(status, the domain the application was given: None for the default domain)."""
    seen: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get(SCOPE_KEY))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    router = DomainRouter(app, rows.directory, _Services(), BASE)  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "headers": [(b"host", host.encode())],
    }
    asyncio.run(router(scope, receive, send))
    return sent[0]["status"], (seen[0] if seen else None)


@pytest.fixture
def rows() -> _Rows:
    return _Rows()


def test_a_default_domain_request_looks_nothing_up(rows: _Rows) -> None:
    assert _route(rows, "/oauth2/v1/token") == (200, None)
    assert _route(rows, "/console/", host="ID.TEST:8000") == (200, None)
    assert _route(rows, "/domainsx/acme") == (200, None)
    assert rows.asked == []


def test_a_domains_row_is_read_once_per_cache_time(rows: _Rows) -> None:
    for _ in range(3):
        assert _route(rows, "/domains/acme/oauth2/v1/token") == (200, ACME)
        assert _route(rows, "/console/", host="login.hosted.example") == (200, HOSTED)
    assert _route(rows, "/domains/nobody/") == (404, None)
    assert _route(rows, "/domains/nobody/") == (404, None)
    assert rows.asked == ["name:acme", "host:login.hosted.example", "name:nobody"]


def test_only_a_well_formed_name_or_host_is_looked_up(rows: _Rows) -> None:
    assert _route(rows, "/domains/ACME/oauth2/v1/token")[0] == 404
    assert _route(rows, "/domains/a\x00b/")[0] == 404
    assert _route(rows, "/domains/default/")[0] == 404
    assert _route(rows, "/", host="localhost:8000") == (200, None)
    assert _route(rows, "/", host="10.0.0.1") == (200, None)
    assert _route(rows, "/", host="[::1]:8000") == (200, None)
    assert rows.asked == []


def test_a_domain_served_at_its_own_host_is_not_served_under_the_base(rows: _Rows) -> None:
    assert _route(rows, "/domains/hosted/console/")[0] == 404

@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = load_settings(data_dir=tmp_path, secret_key="k" * 43)
    context = open_context(settings, migrate=True)
    yield context
    context.close()


def test_a_form_too_large_for_a_domains_sign_in_page_names_the_domain(ctx: Context) -> None:
    add_domain(ctx, "acme", display_name="Acme Corporation")
    app = build_app(ctx)
    try:
        client = TestClient(app, base_url=ctx.settings.issuer)
        big = {"username": "x" * (ctx.settings.max_body_bytes + 1)}
        answer = client.post("/domains/acme/oauth2/v1/login", data=big)
        assert answer.status_code == 413
        assert answer.headers["content-type"].startswith("text/html")
        assert "Request too large" in answer.text and "Acme Corporation" in answer.text
        default = client.post("/oauth2/v1/login", data=big)
        assert default.status_code == 413 and "Acme Corporation" not in default.text
    finally:
        app.state.services.node.audit.close()
