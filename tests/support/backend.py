"""A backend API protected by `tessera.resource`, served on loopback in the test's process: the
resource server end of token exchange and of integrations' `invoke` steps."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.resource import AccessToken, RevocationFeed, TokenValidator
from tessera.resource.asgi import BearerAuthMiddleware
from tests.support.server import free_port

__all__ = ["Backend"]


class Backend:
    """`BearerAuthMiddleware` for `audience` in front of `/orders/{id}`, which answers what it
    saw of the token: `sub`, `sub_type`, `client_id`, `act`, `scope` and the DPoP key `jkt`.
    With `feed` (an app registered as the resource server of `audience`: client id and secret)
    it follows the identity domain's revocation feed, so a revoked token is refused within a
    second; with `require_dpop`, only DPoP-bound tokens with proofs pass. `seen` keeps the
    start of each request's `Authorization` header (its scheme)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        feed: tuple[str, str] | None = None,
        *,
        require_dpop: bool = False,
    ) -> None:
        self.port = free_port()
        self.seen: list[str] = []
        self.feed = (
            None if feed is None else RevocationFeed(issuer, *feed, wait_seconds=1).start()
        )

        async def orders(request: Request) -> JSONResponse:
            token: AccessToken = request.state.token
            return JSONResponse(
                {
                    "sub": token.subject,
                    "sub_type": token.sub_type,
                    "client_id": token.client_id,
                    "act": token.claims.get("act"),
                    "scope": sorted(token.scopes),
                    "jkt": token.jkt,
                }
            )

        inner = Starlette(routes=[Route("/orders/{id}", orders, methods=["GET", "POST"])])
        validator = TokenValidator(issuer, audience, revocation=self.feed)
        guarded = BearerAuthMiddleware(inner, validator, require_dpop=require_dpop)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.seen.append(dict(scope["headers"]).get(b"authorization", b"").decode()[:5])
            await guarded(scope, receive, send)

        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Backend:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the backend did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.feed is not None:
            self.feed.stop()
