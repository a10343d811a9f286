"""The REST endpoints of integrations: `/ic/api/integration/v1/flows/rest/{CODE}/{VERSION}/…`.

The order of checks: a valid token (401/400, before anything is looked up); an activated
integration of that code and version (404; a token that could run nothing, for want of a run
scope or of a run role, gets 403 instead, so it learns nothing about which integrations exist);
the run scope (403 `insufficient_scope`); a role that may run flows, ServiceInvoker, ServiceUser
or ServiceAdministrator (403 problem naming them, `tessera.shared.integration_roles`); the
trigger's path template (404) and method (405). Then the steps run and the run is recorded
with the caller's identity, whatever its outcome: a failed `invoke` answers 502, an expression
that fails on the request's data 422, each as `application/problem+json`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tessera.integration.auth import Token, caller_of, require_any
from tessera.integration.document import IntegrationDocument
from tessera.integration.outbound import InvokeError
from tessera.integration.paths import parse_path, unsafe_parameter
from tessera.integration.problems import Problem
from tessera.integration.runner import FlowRequest, FlowResponse, MappingError, run_steps
from tessera.integration.scopes import ANY_RUN, run_scopes
from tessera.integration.services import Services, Svc, read_body
from tessera.integration.store import Caller, RunRecord, State
from tessera.integration.views import error_responses
from tessera.resource import AccessToken
from tessera.resource.dpop import read_credentials
from tessera.shared.integration_roles import Action

__all__ = ["INSTANCE_HEADER", "MAX_FLOW_BODY", "router"]

INSTANCE_HEADER = "Tessera-Instance-Id"
MAX_FLOW_BODY = 1024 * 1024
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_log = logging.getLogger("tessera.integration")


def _json_body(raw: bytes, content_type: str | None) -> Any:
    if not raw.strip():
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise Problem(415, "unsupported-media-type", "send the request body as application/json")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Problem(400, "invalid-json", "the request body is not valid JSON") from None


def _first_values(request: Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        query.setdefault(name, value)
    return query


def _answer(result: FlowResponse, headers: dict[str, str]) -> Response:
    merged = {**result.headers, **headers}
    if result.status in (204, 304):
        return Response(status_code=result.status, headers=merged)
    content = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content, result.status, merged, media_type="application/json")


async def _locate(
    services: Services, token: AccessToken, code: str, version: str, path: str, method: str
) -> tuple[IntegrationDocument, dict[str, str]]:
    """The activated integration and the trigger's path parameters, in the order of checks
    the module's docstring gives."""
    found = await run_in_threadpool(services.store.get, code, version)
    if found is None or found.state is not State.ACTIVATED:
        require_any(token, ANY_RUN)
        services.guards.require_role(token, Action.RUN)
        raise Problem(404, "integration-not-found", f"no activated integration {code}|{version}")
    document = found.document
    require_any(token, run_scopes(document.trigger.scope))
    services.guards.require_role(token, Action.RUN)
    params = parse_path(document.trigger.path).match(path)
    if params is None:
        raise Problem(404, "not-found", f"{code}|{version} has no resource at {path}")
    bad = sorted(name for name, value in params.items() if unsafe_parameter(value))
    if bad:
        raise Problem(
            400,
            "invalid-path-parameter",
            f"the path parameter {', '.join(bad)} may not be `.`, `..` or hold `/` or `\\`",
        )
    if method != document.trigger.method:
        raise Problem(
            405,
            "method-not-allowed",
            f"{code}|{version} accepts {document.trigger.method} at {path}",
            headers={"Allow": document.trigger.method},
        )
    return document, params


async def _execute(
    services: Services,
    request: Request,
    document: IntegrationDocument,
    params: dict[str, str],
    caller: Caller,
) -> tuple[Response, RunRecord]:
    """Run the steps; any failure becomes the run's answer and its recorded error."""
    started, clock = services.clock(), time.perf_counter()
    error: str | None = None
    acting: list[str] = []
    # Validated already; for `oauth_token_exchange` steps, never stored (docs/security.md rule 57).
    credentials = read_credentials((), request.headers.getlist("authorization"))
    try:
        body = _json_body(
            await read_body(request, MAX_FLOW_BODY), request.headers.get("content-type")
        )
        flow = FlowRequest(
            caller,
            params,
            _first_values(request),
            body,
            caller_token=credentials.token if credentials else None,
            acting=acting,
        )
        result = await run_steps(document, flow, services.connections)
        response = _answer(result, {"Cache-Control": "no-store"})
    except Problem as exc:
        response, error = exc.response(), exc.detail
    except InvokeError as exc:
        response = Problem(502, "invoke-failed", exc.detail, title="Bad gateway").response()
        error = exc.internal
    except MappingError as exc:
        response = Problem(422, "mapping-failed", str(exc)).response()
        error = str(exc)
    except Exception as exc:  # a defect: recorded and logged, never shown
        _log.error("integration %s failed", document.ident, exc_info=exc)
        response = Problem(500, "internal-error", "the integration failed").response()
        error = f"internal error ({type(exc).__name__})"
    run = RunRecord(
        code=document.code,
        version=document.version,
        started_at=started,
        duration_ms=round((time.perf_counter() - clock) * 1000, 3),
        status="failed" if error is not None else "succeeded",
        http_status=response.status_code,
        caller=caller,
        error=error,
        acting_clients=tuple(dict.fromkeys(acting)),
    )
    return response, run


async def run_flow(
    request: Request, code: str, version: str, token: Token, services: Svc
) -> Response:
    path = "/" + str(request.path_params.get("path", ""))
    document, params = await _locate(services, token, code, version, path, request.method)
    response, run = await _execute(services, request, document, params, caller_of(token))
    try:
        run_id = await run_in_threadpool(services.store.record_run, run)
        response.headers[INSTANCE_HEADER] = str(run_id)
    except SQLAlchemyError as exc:  # the caller still gets the run's answer
        _log.error("cannot record a run of %s: %s", document.ident, type(exc).__name__)
    _log.info(
        "run %s %s http=%d %.1fms client=%s sub_type=%s",
        document.ident,
        run.status,
        run.http_status,
        run.duration_ms,
        run.caller.client_id,
        run.caller.sub_type,
    )
    return response


_RESPONSES = error_responses(
    {
        400: "Bad JSON body, or a token in the query string",
        404: "No activated integration, or no resource at this path",
        405: "The trigger accepts another method",
        413: "The body is too large",
        415: "The body is not JSON",
        422: "An expression of the integration failed on this request",
        502: "An `invoke` step's connection failed",
    }
)
_DESCRIPTION = (
    "Run an activated integration: the trigger's method and path template must match. "
    "Scopes: any of `urn:tessera:integration:run`, `urn:opc:resource:consumer::all`, or the "
    "trigger's own scope. Roles (when the service enforces them, the default): any of "
    "`ServiceInvoker`, `ServiceUser`, `ServiceAdministrator` (a ServiceDeveloper or "
    "ServiceMonitor alone cannot run). The answer carries the run's id in `Tessera-Instance-Id`."
)

router = APIRouter()
router.add_api_route(
    "/flows/rest/{code}/{version}/{path:path}",
    run_flow,
    methods=_METHODS,
    tags=["flows"],
    summary="Run an integration",
    description=_DESCRIPTION,
    responses=_RESPONSES,
    response_class=Response,
)
router.add_api_route(
    "/flows/rest/{code}/{version}",
    run_flow,
    methods=_METHODS,
    include_in_schema=False,
    response_class=Response,
)
