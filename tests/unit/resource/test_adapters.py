"""The `tessera.resource` adapters (Starlette `AuthenticationBackend` with `@requires`, FastAPI
`Security` dependency, plain ASGI middleware) in small apps driven by Starlette's TestClient; the
validator and the JWKS behind them are real (conftest.py). docs/security.md rules 19 and 20: 401 with
a challenge, 400 `invalid_request` for a malformed header or a token in the query string, the
scheme matched case-insensitively, 403 `insufficient_scope` with `scope=`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Security
from fastapi.security import SecurityScopes
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.resource import AccessToken, TokenValidator
from tessera.resource.asgi import BearerAuthMiddleware
from tessera.resource.fastapi import TokenDependency, swagger_ui_init_oauth
from tessera.resource.starlette import requires
from tests.unit.resource.conftest import Idp, b64url, starlette_api

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

READ, ADMIN = "orders:read", "orders:admin"
KINDS = ["starlette", "fastapi", "asgi"]


def starlette_app(validator: TokenValidator) -> Starlette:
    @requires(READ)
    async def orders(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity, "name": request.user.display_name})

    @requires(ADMIN)
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity})

    return starlette_api(validator, [Route("/orders", orders), Route("/admin", admin)])


def fastapi_app(validator: TokenValidator) -> FastAPI:
    require_token = TokenDependency(validator)
    app = FastAPI()

    @app.get("/orders")
    def orders(token: AccessToken = Security(require_token, scopes=[READ])) -> dict[str, str]:
        return {"sub": token.subject, "name": token.user_display_name or ""}

    @app.get("/admin")
    def admin(token: AccessToken = Security(require_token, scopes=[ADMIN])) -> dict[str, str]:
        return {"sub": token.subject}

    return app


def asgi_app(validator: TokenValidator) -> BearerAuthMiddleware:
    """Two middlewares: `/orders` needs READ, `/admin` needs ADMIN (mounted under one app)."""

    async def orders(request: Request) -> JSONResponse:
        token: AccessToken = request.state.token
        return JSONResponse({"sub": token.subject, "name": token.user_display_name})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    inner = Starlette(
        routes=[Route("/orders", orders), Route("/admin", orders), Route("/health", health)]
    )
    needs_read = BearerAuthMiddleware(inner, validator, scopes=[READ], exclude=["/health"])
    needs_admin = BearerAuthMiddleware(inner, validator, scopes=[ADMIN])

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        target = needs_admin if scope.get("path", "").startswith("/admin") else needs_read
        await target(scope, receive, send)

    return app  # type: ignore[return-value]


BUILDERS = {"starlette": starlette_app, "fastapi": fastapi_app, "asgi": asgi_app}


@pytest.fixture(params=KINDS)
def client(request: pytest.FixtureRequest, idp: Idp) -> Iterator[TestClient]:
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    app = BUILDERS[request.param](validator)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def token(idp: Idp) -> str:
    return idp.token(scope=f"{READ} orders:write")


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


# --- tests -------------------------------------------------------------------------------------


def test_a_valid_token_is_200(client: TestClient, token: str) -> None:
    response = client.get("/orders", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "user-42", "name": "Alice Example"}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(client: TestClient, token: str, scheme: str) -> None:
    response = client.get("/orders", headers=bearer(token, scheme))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["starlette", "fastapi", "asgi"])
def test_no_token_is_401_with_a_bearer_challenge_without_error(idp: Idp, kind: str) -> None:
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    with TestClient(BUILDERS[kind](validator), raise_server_exceptions=False) as client:
        response = client.get("/orders")
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code without a token
    assert idp.hits["/jwks"] == 0


def test_an_invalid_token_is_401_invalid_token(client: TestClient, token: str) -> None:
    head, payload, signature = token.split(".")
    for bad in (f"{head}.{payload}.{signature[:-6]}AAAAAA", f"{head}.{payload}.", "abc.def.ghi"):
        response = client.get("/orders", headers=bearer(bad))
        assert response.status_code == 401, (bad, response.text)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_alg_none_token_is_401(client: TestClient, idp: Idp) -> None:
    header = b64url(b'{"alg": "none", "typ": "at+jwt", "kid": "ec-1"}')
    payload = b64url(json.dumps(idp.claims()).encode())
    response = client.get("/orders", headers=bearer(f"{header}.{payload}."))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Basic x",
        "Bearer",
        "Bearer ",
        "Bearer two tokens",
        "Bearer not!a:token",
        "Bearer\ttab",
        "Token abc",
        "abc",
        "Bearer " + "a" * 20000,
    ],
)
def test_a_malformed_authorization_header_is_400_invalid_request(
    client: TestClient, authorization: str
) -> None:
    response = client.get("/orders", headers={"Authorization": authorization})
    assert response.status_code == 400, response.text
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_two_authorization_headers_are_400(client: TestClient, token: str) -> None:
    response = client.get(
        "/orders",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_a_token_in_the_query_string_is_400(client: TestClient, token: str) -> None:
    # RFC 9700 §4.3.2 / docs/security.md rule 19: never from the URL, even when it is valid, and even
    # together with a header.
    response = client.get("/orders", params={"access_token": token})
    assert response.status_code == 400, response.text
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    response = client.get("/orders", params={"access_token": token}, headers=bearer(token))
    assert response.status_code == 400


@pytest.mark.parametrize("kind", ["starlette", "fastapi", "asgi"])
def test_a_missing_scope_is_403_insufficient_scope_with_scope(
    idp: Idp, token: str, kind: str
) -> None:
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    with TestClient(BUILDERS[kind](validator), raise_server_exceptions=False) as client:
        response = client.get("/admin", headers=bearer(token))
    assert response.status_code == 403, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{ADMIN}"' in challenge


def test_the_starlette_adapter_refuses_a_missing_scope_with_403(idp: Idp, token: str) -> None:
    # What @requires does give today: the status is right, the challenge is missing (above).
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    with TestClient(starlette_app(validator)) as client:
        assert client.get("/admin", headers=bearer(token)).status_code == 403


def test_the_asgi_middleware_skips_excluded_paths(idp: Idp) -> None:
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    with TestClient(asgi_app(validator)) as client:
        assert client.get("/health").json() == {"status": "ok"}


def test_a_deeply_nested_token_header_is_401_not_500(client: TestClient) -> None:
    header = (
        b'{"alg": "ES256", "typ": "at+jwt", "kid": "ec-1", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    )
    response = client.get("/orders", headers=bearer(b64url(header) + ".e30.c2ln"))
    assert response.status_code == 401, response.status_code


def test_repeated_calls_are_served_from_the_token_cache(
    idp: Idp, client: TestClient, token: str
) -> None:
    for _ in range(5):
        assert client.get("/orders", headers=bearer(token)).status_code == 200
    assert idp.hits["/jwks"] == 1


# --- the OpenAPI security scheme (issue 12) ----------------------------------------------------


def test_the_openapi_document_is_not_missing_the_oauth2_scheme_and_each_operations_scopes(
    idp: Idp,
) -> None:
    """Swagger UI's "Authorize" needs an oauth2 scheme with the code flow at the issuer's
    endpoints and the scopes; each operation must reference it with the scopes it requires."""
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    require_token = TokenDependency(
        validator, scopes={READ: "Read orders", ADMIN: "Administer orders"}
    )
    app = FastAPI(swagger_ui_init_oauth=swagger_ui_init_oauth("swagger-ui", [READ]))

    @app.get("/orders")
    def orders(token: AccessToken = Security(require_token, scopes=[READ])) -> str:
        return token.subject

    @app.get("/admin")
    def admin(token: AccessToken = Security(require_token, scopes=[ADMIN])) -> str:
        return token.subject

    @app.get("/health")
    def health() -> str:
        return "ok"

    with TestClient(app) as test_client:
        document = test_client.get("/openapi.json").json()
        docs = test_client.get("/docs").text
    scheme = document["components"]["securitySchemes"]["tessera"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{idp.issuer}/oauth2/v1/authorize"
    assert flow["tokenUrl"] == f"{idp.issuer}/oauth2/v1/token"
    assert flow["scopes"] == {READ: "Read orders", ADMIN: "Administer orders"}
    assert "PKCE" in scheme["description"]
    paths = document["paths"]
    assert paths["/orders"]["get"]["security"] == [{"tessera": [READ]}]
    assert paths["/admin"]["get"]["security"] == [{"tessera": [ADMIN]}]
    assert "security" not in paths["/health"]["get"]
    assert '"usePkceWithAuthorizationCodeGrant": true' in docs


def test_the_dependency_still_answers_with_rfc6750_errors_when_called_directly(
    idp: Idp, token: str
) -> None:
    """The integration service and the admin API call the dependency themselves."""
    validator = TokenValidator(idp.issuer, "https://api.example.test")
    require_token = TokenDependency(validator)
    app = FastAPI()

    @app.get("/orders")
    async def orders(request: Request) -> str:
        found = await require_token(request, SecurityScopes([ADMIN]))
        return found.subject

    with TestClient(app) as test_client:
        assert test_client.get("/orders").status_code == 401
        refused = test_client.get("/orders", headers=bearer(token))
        assert refused.status_code == 403
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
