"""Running an integration: its steps, in order, over one request (no I/O but `invoke`).

The context every expression sees is built once per run (see `tessera.integration.expressions`):
`last` starts as the request body and becomes each step's output; named steps are also kept in
`steps.<name>`. A `respond` step ends the run; without one the last output is answered with 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tessera.integration.document import (
    IntegrationDocument,
    InvokeStep,
    MapStep,
    TokenExchangeAuth,
)
from tessera.integration.expressions import ExpressionError, evaluate, render
from tessera.integration.outbound import Connections, InvokeError
from tessera.integration.paths import fill_url
from tessera.integration.store import Caller

__all__ = ["FlowRequest", "FlowResponse", "MappingError", "run_steps"]


class MappingError(Exception):
    """An expression failed on this run's data (422): the request does not fit the mapping."""


@dataclass(frozen=True, slots=True)
class FlowRequest:
    caller: Caller
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    # The caller's access token, for `oauth_token_exchange` steps: in memory for the run only.
    caller_token: str | None = field(default=None, repr=False)
    # The apps that called connections on the caller's behalf (RFC 8693 `act`), as they run.
    acting: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FlowResponse:
    status: int
    headers: dict[str, str]
    body: Any


def context_of(request: FlowRequest) -> dict[str, Any]:
    return {
        "body": request.body,
        "path": dict(request.path),
        "query": dict(request.query),
        "caller": {
            "sub": request.caller.sub,
            "sub_type": request.caller.sub_type,
            "client_id": request.caller.client_id,
            "user_displayname": request.caller.user_displayname,
        },
        "last": request.body,
        "steps": {},
    }


async def run_steps(
    document: IntegrationDocument, request: FlowRequest, connections: Connections
) -> FlowResponse:
    """Run the steps; raise `MappingError` or `InvokeError` (naming the step) on failure."""
    context = context_of(request)
    for index, step in enumerate(document.steps):
        label = f"step {step.name!r}" if step.name else f"steps[{index}] ({step.type})"
        try:
            if isinstance(step, MapStep):
                output = render(step.output, context)
            elif isinstance(step, InvokeStep):
                body = context["last"] if step.body is None else evaluate(step.body, context)
                url = fill_url(step.url, request.path)
                if isinstance(step.auth, TokenExchangeAuth):
                    request.acting.append(step.auth.client_id)
                output = await connections.invoke(step, url, body, request.caller_token)
            else:
                body = context["last"] if step.body is None else evaluate(step.body, context)
                return FlowResponse(step.status, dict(step.headers), body)
        except ExpressionError as exc:
            raise MappingError(f"{label}: {exc}") from None
        except InvokeError as exc:
            raise InvokeError(f"{label}: {exc.detail}", f"{label}: {exc.internal}") from None
        context["last"] = output
        if step.name:
            context["steps"][step.name] = output
    return FlowResponse(200, {}, context["last"])
