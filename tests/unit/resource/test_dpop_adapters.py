"""DPoP (RFC 9449) at `tessera.resource`, through each adapter (Starlette backend with
`requires`, FastAPI dependency, ASGI middleware): each proof check of §4.3 broken in turn, the
`cnf.jkt` binding (§7.1), bound tokens as Bearer (§7.2), routes that require DPoP, server nonces
(§9), with the status, the error and the `WWW-Authenticate` challenge of each answer.

The issuer and its tokens are real (conftest.py); proofs come from tests/support/dpop.py."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Security
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.resource import AccessToken, DPoPPolicy, NonceSource, TokenValidator
from tessera.resource.asgi import BearerAuthMiddleware
from tessera.resource.fastapi import TokenDependency
from tessera.resource.starlette import requires
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.unit.resource.conftest import AUDIENCE, Idp, starlette_api

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

READ = "orders:read"
BASE = "http://testserver"
ORDERS, PAYMENTS = f"{BASE}/orders", f"{BASE}/payments"  # /payments requires DPoP
ALGS = 'algs="ES256 PS256 RS256 EdDSA"'


def starlette_app(validator: TokenValidator) -> Starlette:
    @requires(READ)
    async def orders(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity, "bound": request.user.token.jkt})

    @requires(READ, dpop=True)
    async def payments(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity, "bound": request.user.token.jkt})

    return starlette_api(
        validator,
        [
            Route("/orders", orders, methods=["GET", "POST"]),
            Route("/payments", payments, methods=["GET", "POST"]),
        ],
    )


def fastapi_app(validator: TokenValidator) -> FastAPI:
    require_token = TokenDependency(validator)
    require_dpop = require_token.requiring(dpop=True)
    app = FastAPI()

    @app.api_route("/orders", methods=["GET", "POST"])
    def orders(token: AccessToken = Security(require_token, scopes=[READ])) -> dict[str, Any]:
        return {"sub": token.subject, "bound": token.jkt}

    @app.api_route("/payments", methods=["GET", "POST"])
    def payments(token: AccessToken = Security(require_dpop, scopes=[READ])) -> dict[str, Any]:
        return {"sub": token.subject, "bound": token.jkt}

    return app


def asgi_app(validator: TokenValidator) -> Any:
    async def handler(request: Request) -> JSONResponse:
        token: AccessToken = request.state.token
        return JSONResponse({"sub": token.subject, "bound": token.jkt})

    inner = Starlette(
        routes=[
            Route("/orders", handler, methods=["GET", "POST"]),
            Route("/payments", handler, methods=["GET", "POST"]),
        ]
    )
    open_app = BearerAuthMiddleware(inner, validator, scopes=[READ])
    dpop_app = BearerAuthMiddleware(inner, validator, scopes=[READ], require_dpop=True)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        target = dpop_app if scope.get("path", "").startswith("/payments") else open_app
        await target(scope, receive, send)

    return app


BUILDERS: dict[str, Callable[[TokenValidator], Any]] = {
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "asgi": asgi_app,
}


@pytest.fixture(params=list(BUILDERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def serve(kind: str, validator: TokenValidator) -> TestClient:
    return TestClient(BUILDERS[kind](validator), raise_server_exceptions=False)


@pytest.fixture
def client(kind: str, idp: Idp) -> Iterator[TestClient]:
    with serve(kind, TokenValidator(idp.issuer, AUDIENCE)) as test_client:
        yield test_client


@pytest.fixture
def key() -> ECKey:
    return new_key()


@pytest.fixture
def bound(idp: Idp, key: ECKey) -> str:
    """An access token bound to `key` (RFC 9449 §6.1)."""
    return idp.token(cnf={"jkt": thumbprint(key)})


def dpop(token: str, proof: str | None) -> dict[str, str]:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def refused(
    response: httpx.Response, error: str, status: int = 401, *, dpop_only: bool = True
) -> str:
    """The answer is `status` with `error` in the body and in the DPoP challenge, which is the
    only challenge when `dpop_only` (else it follows the Bearer one, which carries the error)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("detail", body)["error"] == error  # FastAPI's HTTPException nests it
    challenge = response.headers["www-authenticate"]
    assert f'error="{error}"' in challenge
    assert challenge.endswith(ALGS)
    if dpop_only:
        assert challenge.startswith('DPoP realm="api", error=')
        assert "Bearer realm" not in challenge
    else:
        assert challenge.startswith("Bearer ") and ', DPoP realm="api", algs=' in challenge
    return challenge


# --- a good proof ------------------------------------------------------------------------------


def test_a_bound_token_with_a_good_proof_is_200_and_checked_on_every_request(
    client: TestClient, key: ECKey, bound: str
) -> None:
    for method in ("GET", "POST"):  # the second is a cache hit of the token's validation
        proof = make_proof(key, method, ORDERS, access_token=bound)
        response = client.request(method, "/orders", headers=dpop(bound, proof))
        assert response.status_code == 200, response.text
        assert response.json() == {"sub": "user-42", "bound": thumbprint(key)}
    # Cached or not, the proof is still checked: a proof for GET does not do for POST.
    proof = make_proof(key, "GET", ORDERS, access_token=bound)
    refused(client.post("/orders", headers=dpop(bound, proof)), "invalid_dpop_proof")


def test_the_scheme_name_dpop_is_case_insensitive(
    client: TestClient, key: ECKey, bound: str
) -> None:
    proof = make_proof(key, "GET", ORDERS, access_token=bound)
    response = client.get("/orders", headers={"Authorization": f"dpop {bound}", "DPoP": proof})
    assert response.status_code == 200, response.text


def test_a_dpop_required_route_takes_a_bound_token_with_its_proof(
    client: TestClient, key: ECKey, bound: str
) -> None:
    proof = make_proof(key, "GET", PAYMENTS, access_token=bound)
    response = client.get("/payments", headers=dpop(bound, proof))
    assert response.status_code == 200, response.text


# --- each check of RFC 9449 §4.3 broken --------------------------------------------------------

BROKEN: dict[str, Callable[[ECKey, str], str]] = {
    "wrong htm": lambda k, t: make_proof(k, "POST", ORDERS, access_token=t),
    "wrong htu": lambda k, t: make_proof(k, "GET", f"{BASE}/payments", access_token=t),
    "htu of another host": lambda k, t: make_proof(
        k, "GET", "https://evil.example/orders", access_token=t
    ),
    "old iat": lambda k, t: make_proof(k, "GET", ORDERS, access_token=t, iat=time.time() - 600),
    "iat in the future": lambda k, t: make_proof(
        k, "GET", ORDERS, access_token=t, iat=time.time() + 600
    ),
    "bad signature": lambda k, t: make_proof(
        k, "GET", ORDERS, access_token=t, signing_key=new_key()
    ),
    "wrong typ": lambda k, t: make_proof(k, "GET", ORDERS, access_token=t, typ="JWT"),
    "private key in the header": lambda k, t: make_proof(
        k, "GET", ORDERS, access_token=t, jwk=k.as_dict(private=True)
    ),
    "missing ath": lambda k, t: make_proof(k, "GET", ORDERS),
    "wrong ath": lambda k, t: make_proof(k, "GET", ORDERS, access_token=t + "x"),
    "no jti": lambda k, t: make_proof(k, "GET", ORDERS, access_token=t, claims={"jti": None}),
    "not a JWS": lambda k, t: "not-a-proof",
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_proof_that_breaks_a_check_is_401_invalid_dpop_proof(
    client: TestClient, key: ECKey, bound: str, broken: str
) -> None:
    proof = BROKEN[broken](key, bound)
    refused(client.get("/orders", headers=dpop(bound, proof)), "invalid_dpop_proof")


def test_a_missing_proof_or_two_proofs_are_401_invalid_dpop_proof(
    client: TestClient, key: ECKey, bound: str
) -> None:
    refused(client.get("/orders", headers=dpop(bound, None)), "invalid_dpop_proof")
    proof = make_proof(key, "GET", ORDERS, access_token=bound)
    two = [("Authorization", f"DPoP {bound}"), ("DPoP", proof), ("DPoP", proof)]
    refused(client.get("/orders", headers=two), "invalid_dpop_proof")


def test_a_replayed_proof_is_401_invalid_dpop_proof(
    client: TestClient, key: ECKey, bound: str
) -> None:
    proof = make_proof(key, "GET", ORDERS, access_token=bound)
    assert client.get("/orders", headers=dpop(bound, proof)).status_code == 200
    challenge = refused(client.get("/orders", headers=dpop(bound, proof)), "invalid_dpop_proof")
    assert "used before" in challenge


def test_a_proof_by_another_key_than_cnf_jkt_is_401_invalid_token(
    client: TestClient, bound: str
) -> None:
    # §7.1: a valid proof, but not by the key the token is bound to (a stolen token with the
    # thief's own key).
    proof = make_proof(new_key(), "GET", ORDERS, access_token=bound)
    challenge = refused(client.get("/orders", headers=dpop(bound, proof)), "invalid_token")
    assert "bound to" in challenge


# --- the scheme and the binding (§7.1, §7.2) ---------------------------------------------------


def test_a_bound_token_sent_as_bearer_is_401_with_the_dpop_challenge(
    client: TestClient, key: ECKey, bound: str
) -> None:
    response = client.get("/orders", headers={"Authorization": f"Bearer {bound}"})
    refused(response, "invalid_token")
    # Even with a good proof beside it: the scheme says Bearer.
    proof = make_proof(key, "GET", ORDERS, access_token=bound)
    response = client.get("/orders", headers={"Authorization": f"Bearer {bound}", "DPoP": proof})
    refused(response, "invalid_token")


def test_an_unbound_token_with_the_dpop_scheme_is_401(client: TestClient, idp: Idp) -> None:
    unbound, key = idp.token(), new_key()
    proof = make_proof(key, "GET", ORDERS, access_token=unbound)
    challenge = refused(client.get("/orders", headers=dpop(unbound, proof)), "invalid_token")
    assert "not DPoP-bound" in challenge


def test_an_unbound_bearer_token_still_works_and_the_challenges_offer_both(
    client: TestClient, idp: Idp
) -> None:
    response = client.get("/orders", headers={"Authorization": f"Bearer {idp.token()}"})
    assert response.status_code == 200, response.text
    assert response.json()["bound"] is None
    response = client.get("/orders")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="api", DPoP realm="api", {ALGS}'
    bad = client.get("/orders", headers={"Authorization": "Bearer abc.def.ghi"})
    refused(bad, "invalid_token", dpop_only=False)


def test_a_dpop_required_route_refuses_bearer_tokens(client: TestClient, idp: Idp) -> None:
    response = client.get("/payments", headers={"Authorization": f"Bearer {idp.token()}"})
    refused(response, "invalid_token")
    response = client.get("/payments")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'DPoP realm="api", {ALGS}'


def test_a_bad_bound_token_with_dpop_gets_the_dpop_challenge(
    client: TestClient, idp: Idp, key: ECKey
) -> None:
    expired = idp.token(cnf={"jkt": thumbprint(key)}, exp=int(time.time()) - 120)
    proof = make_proof(key, "GET", ORDERS, access_token=expired)
    challenge = refused(client.get("/orders", headers=dpop(expired, proof)), "invalid_token")
    assert "expired" in challenge


def test_a_bound_token_without_the_scope_is_403_with_the_dpop_challenge(
    client: TestClient, idp: Idp, key: ECKey
) -> None:
    token = idp.token(cnf={"jkt": thumbprint(key)}, scope="other")
    proof = make_proof(key, "GET", ORDERS, access_token=token)
    answer = client.get("/orders", headers=dpop(token, proof))
    challenge = refused(answer, "insufficient_scope", 403)
    assert f'scope="{READ}"' in challenge  # RFC 9449 §7.1: `scope` is a DPoP auth-param too


@pytest.mark.parametrize("cnf", [{"x5t#S256": "abc"}, {"jkt": 5}, "jkt"])
def test_a_token_bound_in_a_way_we_cannot_check_is_401(
    client: TestClient, idp: Idp, key: ECKey, cnf: Any
) -> None:
    token = idp.token(cnf=cnf)
    for headers in (
        {"Authorization": f"Bearer {token}"},
        dpop(token, make_proof(key, "GET", ORDERS, access_token=token)),
    ):
        response = client.get("/orders", headers=headers)
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- nonces (§9) and the public URL ------------------------------------------------------------


def test_a_nonce_challenge_then_success(kind: str, idp: Idp, key: ECKey, bound: str) -> None:
    nonces = NonceSource(b"n" * 32)
    validator = TokenValidator(idp.issuer, AUDIENCE, dpop=DPoPPolicy(nonces=nonces))
    with serve(kind, validator) as client:
        proof = make_proof(key, "GET", ORDERS, access_token=bound)
        response = client.get("/orders", headers=dpop(bound, proof))
        refused(response, "use_dpop_nonce")
        nonce = response.headers["dpop-nonce"]
        assert nonces.is_valid(nonce, time.time())
        proof = make_proof(key, "GET", ORDERS, access_token=bound, nonce=nonce)
        response = client.get("/orders", headers=dpop(bound, proof))
        assert response.status_code == 200, response.text
        # A nonce that is not the server's is refused the same way.
        proof = make_proof(key, "GET", ORDERS, access_token=bound, nonce="1.bogus")
        refused(client.get("/orders", headers=dpop(bound, proof)), "use_dpop_nonce")


def test_the_public_url_is_what_htu_must_name(kind: str, idp: Idp, key: ECKey, bound: str) -> None:
    public = "https://api.example.test/shop"
    validator = TokenValidator(idp.issuer, AUDIENCE, dpop=DPoPPolicy(public_url=public))
    with serve(kind, validator) as client:
        proof = make_proof(key, "GET", f"{public}/orders", access_token=bound)
        assert client.get("/orders", headers=dpop(bound, proof)).status_code == 200
        # The URL the app itself sees is not the one the client used.
        proof = make_proof(key, "GET", ORDERS, access_token=bound)
        refused(client.get("/orders", headers=dpop(bound, proof)), "invalid_dpop_proof")


def test_an_app_wide_requirement_refuses_bearer_everywhere(kind: str, idp: Idp) -> None:
    validator = TokenValidator(idp.issuer, AUDIENCE, dpop=DPoPPolicy(required=True))
    with serve(kind, validator) as client:
        response = client.get("/orders", headers={"Authorization": f"Bearer {idp.token()}"})
        refused(response, "invalid_token")
