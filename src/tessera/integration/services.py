"""What the routers share: the store, outbound connections, the token guards, the egress policy
and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from tessera.integration.auth import Guards
from tessera.integration.egress import EgressPolicy
from tessera.integration.outbound import Connections
from tessera.integration.problems import Problem
from tessera.integration.store import IntegrationStore

__all__ = ["Services", "Svc", "read_body", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    store: IntegrationStore
    connections: Connections
    guards: Guards
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # The token endpoint of the issuer whose tokens the service takes: the only place an
    # `oauth_token_exchange` may send a caller's token (None: nowhere).
    token_endpoint: str | None = None
    clock: Callable[[], datetime] = field(default=utcnow)


async def _services(request: Request) -> Services:
    # async: FastAPI would run a plain function in a worker thread.
    services: Services = request.app.state.services
    return services


# The app's services (`app.state.services`), for the module-level route handlers.
Svc = Annotated[Services, Depends(_services)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes without reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, "content-too-large", f"the body may have at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "content-too-large", f"the body may have at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
