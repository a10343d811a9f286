"""Liveness and readiness probes."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.context import Context
from tessera.store.protocols import StoreError
from tessera.web.responses import NO_STORE, json_response

__all__ = ["health_routes"]


def health_routes(ctx: Context) -> list[Route]:
    return [
        Route("/health/live", _live, methods=["GET"]),
        Route("/health/ready", partial(_ready, ctx), methods=["GET"]),
    ]


async def _live(_: Request) -> Response:
    return json_response({"status": "ok"}, headers=NO_STORE)


async def _ready(ctx: Context, _: Request) -> Response:
    try:
        await run_in_threadpool(ctx.store.ping)
    except StoreError:
        return json_response(
            {"status": "unavailable", "database": "unreachable"}, 503, headers=NO_STORE
        )
    return json_response({"status": "ok", "database": "ok"}, headers=NO_STORE)
