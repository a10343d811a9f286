"""The `invoke` step's `oauth_token_exchange` auth (RFC 8693, the client's side): the run's
caller token is presented as `subject_token` for the connection's audience, and the token
is cached per caller token and audience until shortly before it expires (injected clock).

The token endpoint is a small one written here, served in process through httpx's ASGI
transport; it records the forms it received."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.integration.document import TokenExchangeAuth, load_document
from tessera.integration.outbound import InvokeError, TokenCache

TOKEN_URL = "http://idp.test/token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


class Endpoint:
    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

        async def token(request: Request) -> JSONResponse:
            expected = "Basic " + base64.b64encode(b"svc:s3cret-value").decode()
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "invalid_client"}, 401)
            form = dict(await request.form())  # type: ignore[arg-type]
            self.forms.append(form)
            value = f"exchanged-{len(self.forms)}"
            return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": 120})

        self.app = Starlette(routes=[Route("/token", token, methods=["POST"])])


def auth(audience: str = "https://orders.test", scope: str | None = None) -> TokenExchangeAuth:
    data: dict[str, Any] = {
        "type": "oauth_token_exchange",
        "token_url": TOKEN_URL,
        "client_id": "svc",
        "client_secret": "s3cret-value",
        "audience": audience,
    }
    if scope is not None:
        data["scope"] = scope
    return TokenExchangeAuth.model_validate(data)


@pytest.fixture
def world() -> tuple[Endpoint, TokenCache, list[float]]:
    endpoint = Endpoint()
    now = [1000.0]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint.app))
    return endpoint, TokenCache(http, clock=lambda: now[0]), now


def test_the_callers_token_is_exchanged_for_the_audience_and_cached_per_caller(
    world: tuple[Endpoint, TokenCache, list[float]],
) -> None:
    endpoint, cache, now = world

    async def run() -> list[str]:
        got = [await cache.token(auth(scope="read"), 5, "caller-a") for _ in range(2)]
        got.append(await cache.token(auth(scope="read"), 5, "caller-b"))
        got.append(await cache.token(auth("https://other.test", "read"), 5, "caller-a"))
        now[0] += 91  # 120 s minus the 30 s margin: a new token
        got.append(await cache.token(auth(scope="read"), 5, "caller-a"))
        return [t.value for t in got]

    values = asyncio.run(run())
    assert values == ["exchanged-1", "exchanged-1", "exchanged-2", "exchanged-3", "exchanged-4"]
    assert endpoint.forms[0] == {
        "grant_type": EXCHANGE,
        "subject_token": "caller-a",
        "subject_token_type": ACCESS,
        "audience": "https://orders.test",
        "scope": "read",
    }
    assert endpoint.forms[1]["subject_token"] == "caller-b"
    assert endpoint.forms[2]["audience"] == "https://other.test"


def test_without_a_caller_token_nothing_is_exchanged(
    world: tuple[Endpoint, TokenCache, list[float]],
) -> None:
    endpoint, cache, _ = world
    with pytest.raises(InvokeError, match="no caller token"):
        asyncio.run(cache.token(auth(), 5, None))
    assert endpoint.forms == []


def test_the_document_keeps_the_secret_sealed_and_redacted() -> None:
    document = load_document(
        {
            "code": "OBO",
            "version": "01.00.0000",
            "name": "On behalf of",
            "trigger": {"method": "GET", "path": "/orders/{id}"},
            "steps": [
                {
                    "type": "invoke",
                    "url": "https://orders.test/orders/{id}",
                    "method": "GET",
                    "auth": auth().model_dump(mode="json", context={"reveal": True}),
                }
            ],
        }
    )
    assert document.public()["steps"][0]["auth"]["client_secret"] == "********"
    assert ("steps[0].auth.token_url", TOKEN_URL) in document.urls()


def test_only_the_trusted_issuers_token_endpoint_may_receive_a_callers_token() -> None:
    """docs/security.md rule 57: compared as normalised URLs (case, default port)."""
    step = {
        "type": "invoke",
        "url": "https://orders.test/orders/{id}",
        "auth": auth().model_dump(mode="json", context={"reveal": True}),
    }
    document = load_document(
        {
            "code": "OBO",
            "version": "01.00.0000",
            "name": "On behalf of",
            "trigger": {"method": "GET", "path": "/orders/{id}"},
            "steps": [step, {**step, "auth": {**step["auth"], "token_url": "http://evil.test/token"}}],
        }
    )
    assert document.foreign_token_exchanges("HTTP://IDP.test:80/token") == [
        ("steps[1].auth.token_url", "http://evil.test/token")
    ]
    assert len(document.foreign_token_exchanges(None)) == 2
