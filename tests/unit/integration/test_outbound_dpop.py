"""The `invoke` step's client credentials with `dpop: true` (RFC 9449, the client's side): a
P-256 key, a proof to the token endpoint (its nonce asked for once, §8), `token_type: DPoP`, and
calls with `Authorization: DPoP` and a proof with `ath` to a backend protected by
`tessera.resource` that requires DPoP and its own nonces (§9).

The token endpoint is a small one written here over `tessera.shared.dpop.verify_proof`, its
tokens signed by the resource tests' loopback issuer; the backend is the real resource library.
Both are served in process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.integration.document import ClientCredentialsAuth, InvokeStep, load_document
from tessera.integration.outbound import Connections, InvokeError
from tessera.resource import AccessToken, DPoPPolicy, NonceSource, TokenValidator
from tessera.resource.asgi import BearerAuthMiddleware
from tessera.shared.dpop import DPoPError, NonceRequired, verify_proof
from tests.unit.resource.conftest import AUDIENCE, Idp

TOKEN_URL = "http://idp.test/token"
BACKEND = "http://backend.test"


class World:
    """The token endpoint and the backend, with what each saw."""

    def __init__(self, idp: Idp, token_type: str = "DPoP") -> None:
        self.idp = idp
        self.token_type = token_type
        self.as_nonces = NonceSource(b"a" * 32)
        self.token_requests: list[dict[str, Any]] = []
        self.backend_calls: list[dict[str, Any]] = []
        validator = TokenValidator(
            idp.issuer, AUDIENCE, dpop=DPoPPolicy(nonces=NonceSource(b"r" * 32), required=True)
        )

        async def orders(request: Request) -> JSONResponse:
            token: AccessToken = request.state.token
            return JSONResponse({"client": token.client_id, "jkt": token.jkt})

        backend = BearerAuthMiddleware(
            Starlette(routes=[Route("/orders", orders, methods=["POST"])]), validator
        )

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {k.decode(): v.decode() for k, v in scope["headers"]}
                seen = {"path": scope["path"], **headers}
                if scope["path"] == "/token":
                    self.token_requests.append(seen)
                    await Starlette(routes=[Route("/token", self.token, methods=["POST"])])(
                        scope, receive, send
                    )
                    return
                self.backend_calls.append(seen)
            await backend(scope, receive, send)

        self.app = app

    async def token(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(b"app:s3cret-value").decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, 401)
        proof = request.headers.get("dpop")
        if proof is None:  # no proof: an unbound bearer token
            token = self.idp.token(client_id="app", sub_type="client")
            return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300})
        try:
            checked = verify_proof(
                proof, method="POST", url=str(request.url), nonces=self.as_nonces
            )
        except NonceRequired:
            nonce = self.as_nonces.current(time.time())
            return JSONResponse({"error": "use_dpop_nonce"}, 400, headers={"DPoP-Nonce": nonce})
        except DPoPError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, 400)
        token = self.idp.token(cnf={"jkt": checked.jkt}, client_id="app", sub_type="client")
        body = {"access_token": token, "token_type": self.token_type, "expires_in": 300}
        return JSONResponse(body)

    def connections(self) -> Connections:
        return Connections(httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app)))


def step(dpop: bool = True) -> InvokeStep:
    auth = {
        "type": "oauth_client_credentials",
        "token_url": TOKEN_URL,
        "client_id": "app",
        "client_secret": "s3cret-value",
        "dpop": dpop,
    }
    return InvokeStep.model_validate({"type": "invoke", "url": f"{BACKEND}/orders", "auth": auth})


def test_a_dpop_invoke_gets_a_bound_token_and_calls_with_proofs_and_nonces(issuer: Idp) -> None:
    world = World(issuer)
    connections = world.connections()

    async def run() -> list[Any]:
        return [await connections.invoke(step(), f"{BACKEND}/orders?x=1", {"n": i}) for i in (1, 2)]

    first, second = asyncio.run(run())
    assert first["client"] == "app" and first["jkt"] and second == first
    # The token endpoint asked for its nonce once; both requests carried a proof, no `ath`.
    assert len(world.token_requests) == 2
    assert all("dpop" in r for r in world.token_requests)
    # The backend asked for its nonce once; then each call went through with one request.
    calls = world.backend_calls
    assert len(calls) == 3
    assert all(c["authorization"].startswith("DPoP ") and "dpop" in c for c in calls)
    assert len({c["dpop"] for c in calls}) == 3  # a fresh proof per request


def test_a_dpop_invoke_refuses_a_bearer_token_from_the_token_endpoint(issuer: Idp) -> None:
    world = World(issuer, token_type="Bearer")
    with pytest.raises(InvokeError, match="did not issue a DPoP token"):
        asyncio.run(world.connections().invoke(step(), f"{BACKEND}/orders", {}))
    assert world.backend_calls == []


def test_without_dpop_the_backend_requiring_it_refuses_the_bearer_token(issuer: Idp) -> None:
    world = World(issuer)
    with pytest.raises(InvokeError, match="HTTP 401"):
        asyncio.run(world.connections().invoke(step(dpop=False), f"{BACKEND}/orders", {}))
    # One retry with a new token (it might have been revoked), both as Bearer.
    assert [c["authorization"][:7] for c in world.backend_calls] == ["Bearer "] * 2


def test_the_document_takes_dpop_as_a_boolean_defaulting_to_false() -> None:
    base = {
        "code": "DPOP",
        "version": "01.00.0000",
        "name": "DPoP",
        "trigger": {"method": "POST", "path": "/x"},
    }
    auth = {
        "type": "oauth_client_credentials",
        "token_url": TOKEN_URL,
        "client_id": "app",
        "client_secret": "s3cret-value",
    }
    doc = load_document({**base, "steps": [{"type": "invoke", "url": BACKEND, "auth": auth}]})
    invoke = doc.steps[0]
    assert isinstance(invoke, InvokeStep) and isinstance(invoke.auth, ClientCredentialsAuth)
    assert invoke.auth.dpop is False
    with_dpop = {**auth, "dpop": True}
    doc = load_document({**base, "steps": [{"type": "invoke", "url": BACKEND, "auth": with_dpop}]})
    assert doc.stored()["steps"][0]["auth"]["dpop"] is True
    with pytest.raises(ValueError, match="dpop"):
        load_document(
            {**base, "steps": [{"type": "invoke", "url": BACKEND, "auth": {**auth, "dpop": "x"}}]}
        )


def test_bound_and_bearer_tokens_of_the_same_credentials_are_cached_apart(issuer: Idp) -> None:
    world = World(issuer)
    connections = world.connections()

    async def run() -> None:
        await connections.invoke(step(), f"{BACKEND}/orders", {})
        plain = step(dpop=False).auth
        assert isinstance(plain, ClientCredentialsAuth)
        assert (await connections.tokens.token(plain, 5)).signer is None

    asyncio.run(run())
    # One token request with a proof (and its nonce retry), one without.
    assert ["dpop" in r for r in world.token_requests] == [True, True, False]
