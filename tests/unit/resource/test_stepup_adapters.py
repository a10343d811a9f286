"""RFC 9470 step-up in each adapter (Starlette `requires`, FastAPI `TokenDependency`, the ASGI
middleware's per-prefix requirements), with the real validator and issuer of conftest.py: the
order invalid token → 401 `invalid_token`, missing scope → 403, weak or old sign-in → 401
`insufficient_user_authentication` with `acr_values` / `max_age`."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Security
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.client.stepup import step_up_challenge
from tessera.resource import AccessToken, TokenValidator, requirement
from tessera.resource.asgi import BearerAuthMiddleware
from tessera.resource.fastapi import TokenDependency
from tessera.resource.starlette import requires
from tessera.shared.acr import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT
from tests.unit.resource.conftest import AUDIENCE, Idp, starlette_api

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

READ, WRITE = "orders:read", "orders:write"
KINDS = ["starlette", "fastapi", "asgi"]


def _json(token: AccessToken) -> JSONResponse:
    return JSONResponse({"sub": token.subject, "acr": token.acr})


def starlette_app(validator: TokenValidator) -> Starlette:
    @requires(READ)
    async def orders(request: Request) -> JSONResponse:
        return _json(request.user.token)

    @requires(WRITE, acr=ACR_MFA)
    async def pay(request: Request) -> JSONResponse:
        return _json(request.user.token)

    @requires([READ], max_age=60)
    async def recent(request: Request) -> JSONResponse:
        return _json(request.user.token)

    @requires("orders:admin", acr=ACR_MFA)
    async def admin(request: Request) -> JSONResponse:
        return _json(request.user.token)

    routes = [("/orders", orders), ("/pay", pay), ("/recent", recent), ("/admin", admin)]
    return starlette_api(validator, [Route(path, endpoint) for path, endpoint in routes])


def fastapi_app(validator: TokenValidator) -> FastAPI:
    require_token = TokenDependency(validator)
    strong = require_token.requiring(acr_values=[ACR_MFA])
    app = FastAPI()

    @app.get("/orders")
    def orders(token: AccessToken = Security(require_token, scopes=[READ])) -> JSONResponse:
        return _json(token)

    @app.get("/pay")
    def pay(token: AccessToken = Security(strong, scopes=[WRITE])) -> JSONResponse:
        return _json(token)

    @app.get("/recent")
    def recent(
        token: AccessToken = Security(TokenDependency(validator, max_age=60), scopes=[READ]),
    ) -> JSONResponse:
        return _json(token)

    @app.get("/admin")
    def admin(token: AccessToken = Security(strong, scopes=["orders:admin"])) -> JSONResponse:
        return _json(token)

    return app


def asgi_app(validator: TokenValidator) -> BearerAuthMiddleware:
    async def show(request: Request) -> JSONResponse:
        return _json(request.state.token)

    inner = Starlette(routes=[Route(p, show) for p in ("/orders", "/pay", "/recent", "/admin")])
    needs = {"/pay": requirement(ACR_MFA), "/recent": requirement(max_age=60)}
    outer = BearerAuthMiddleware(inner, validator, scopes=[READ], requirements=needs)
    admin = BearerAuthMiddleware(inner, validator, scopes=["orders:admin"], acr_values=ACR_MFA)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        target = admin if scope.get("path", "").startswith("/admin") else outer
        await target(scope, receive, send)

    return app  # type: ignore[return-value]


BUILDERS: dict[str, Callable[[TokenValidator], Any]] = {"starlette": starlette_app, "fastapi": fastapi_app, "asgi": asgi_app}


@pytest.fixture(params=KINDS)
def client(request: pytest.FixtureRequest, idp: Idp) -> Iterator[TestClient]:
    app = BUILDERS[request.param](TokenValidator(idp.issuer, AUDIENCE))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def call(client: TestClient, path: str, token: str) -> tuple[int, str]:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.headers.get("www-authenticate", "")


def user_token(idp: Idp, acr: str, age: int = 0) -> str:
    return idp.token(scope=f"{READ} {WRITE}", acr=acr, auth_time=int(time.time()) - age)


def test_a_strong_enough_sign_in_passes(client: TestClient, idp: Idp) -> None:
    for acr in (ACR_MFA, ACR_PHISHING_RESISTANT):
        status, _ = call(client, "/pay", user_token(idp, acr))
        assert status == 200


def test_a_password_only_token_gets_the_rfc9470_challenge(client: TestClient, idp: Idp) -> None:
    token = user_token(idp, ACR_PASSWORD)
    assert call(client, "/orders", token)[0] == 200  # routes without a requirement: as before
    status, challenge = call(client, "/pay", token)
    assert status == 401
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'acr_values="{ACR_MFA}"' in challenge
    response = client.get("/pay", headers={"Authorization": f"Bearer {token}"})
    found = step_up_challenge(response)
    assert found is not None and found.acr_values == (ACR_MFA,)
    body = response.json()
    body = body.get("detail", body)  # FastAPI nests an HTTPException's body under "detail"
    assert body["error"] == "insufficient_user_authentication"
    assert body["acr_values"] == ACR_MFA


def test_an_old_sign_in_gets_a_max_age_challenge(client: TestClient, idp: Idp) -> None:
    assert call(client, "/recent", user_token(idp, ACR_PASSWORD, age=5))[0] == 200
    status, challenge = call(client, "/recent", user_token(idp, ACR_MFA, age=3600))
    assert status == 401
    assert 'max_age="60"' in challenge and "acr_values" not in challenge


def test_a_client_token_gets_the_challenge(client: TestClient, idp: Idp) -> None:
    token = idp.token(sub="app-7", sub_type="client", scope=f"{READ} {WRITE}")
    assert call(client, "/orders", token)[0] == 200
    status, challenge = call(client, "/pay", token)
    assert status == 401 and 'error="insufficient_user_authentication"' in challenge


def test_the_order_is_invalid_token_then_scope_then_sign_in(client: TestClient, idp: Idp) -> None:
    weak = user_token(idp, ACR_PASSWORD)
    head, payload, _ = weak.split(".")
    status, challenge = call(client, "/pay", f"{head}.{payload}.AAAA")
    assert (status, 'error="invalid_token"' in challenge) == (401, True)
    status, challenge = call(client, "/admin", weak)  # no scope and a weak sign-in: 403
    assert (status, 'error="insufficient_scope"' in challenge) == (403, True)


def test_no_token_on_a_step_up_route_is_a_plain_401(client: TestClient) -> None:
    response = client.get("/pay")
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


def test_the_asgi_middleware_picks_the_longest_matching_prefix(idp: Idp) -> None:
    validator = TokenValidator(idp.issuer, AUDIENCE)

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = BearerAuthMiddleware(
        Starlette(routes=[Route("/{path:path}", ok)]),
        validator,
        acr_values=ACR_PASSWORD,
        requirements={"/a": requirement(ACR_MFA), "/a/b": requirement(ACR_PHISHING_RESISTANT)},
    )
    assert app.requirement_for("/x").acr_values == (ACR_PASSWORD,)
    assert app.requirement_for("/a/c").acr_values == (ACR_MFA,)
    assert app.requirement_for("/a/b/c").acr_values == (ACR_PHISHING_RESISTANT,)
    with TestClient(app) as client:
        assert call(client, "/a/c", user_token(idp, ACR_MFA))[0] == 200
        assert call(client, "/a/b/c", user_token(idp, ACR_MFA))[0] == 401


def test_the_step_up_dependency_keeps_the_openapi_scheme(idp: Idp) -> None:
    with TestClient(fastapi_app(TokenValidator(idp.issuer, AUDIENCE))) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert paths["/pay"]["get"]["security"] == [{"tessera": [WRITE]}]
    assert paths["/orders"]["get"]["security"] == [{"tessera": [READ]}]
