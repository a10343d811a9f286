"""A minimal resource server for the benchmark: the same handler open and protected by
`tessera.resource`, so the difference is what the library costs per request."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from tessera.resource import TokenValidator
from tessera.resource.asgi import BearerAuthMiddleware


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


def create_app() -> Starlette:
    validator = TokenValidator(os.environ["BENCH_ISSUER"], os.environ["BENCH_AUDIENCE"])
    protected = Starlette(routes=[Route("/hello", hello)])
    return Starlette(
        routes=[
            Route("/open/hello", hello),
            Mount("/protected", BearerAuthMiddleware(protected, validator)),
        ]
    )
