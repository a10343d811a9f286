"""A minimal resource server for the benchmark: the same mounted app open and protected by
`tessera.resource` (the driver sends the same bearer token to both), so the difference is what
the library costs per request."""

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
    api = Starlette(routes=[Route("/hello", hello)])
    return Starlette(
        routes=[
            Mount("/open", api),
            Mount("/protected", BearerAuthMiddleware(api, validator)),
        ]
    )
