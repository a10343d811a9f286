"""The management REST API under `/ic/api/integration/v1/`: integrations and monitoring.

| request | scopes (any one) | action |
|---|---|---|
| `GET integrations`, `GET integrations/{CODE}|{VERSION}` | monitor, manage, consumer::all | read |
| `POST integrations`, `PUT`/`DELETE integrations/{CODE}|{VERSION}` | manage | manage |
| `POST integrations/{CODE}|{VERSION}/activate`, `…/deactivate` | manage | manage |
| `GET monitoring/instances`, `…/instances/{id}` | monitor, manage, consumer::all | monitor |

Each action needs any one of its roles (`tessera.shared.integration_roles`): read, every role but
ServiceInvoker; manage, ServiceDeveloper or ServiceAdministrator; monitor, ServiceMonitor,
ServiceDeveloper or ServiceAdministrator.
The scope is checked first (403 `insufficient_scope` with `scope=`), then the role (403 problem
`insufficient-role` naming the roles), unless `TESSERA_INTEGRATION_ENFORCE_ROLES=false`.

With `TESSERA_INTEGRATION_MANAGE_ACR` / `_MANAGE_MAX_AGE` set, the manage requests also need that
level or a recent sign-in (RFC 9470): 401 `insufficient_user_authentication` otherwise.

An integration is named `CODE|VERSION` in URLs (`|` may be sent as `%7C`). Documents are sent
as JSON or YAML; an activated integration must be deactivated before it is replaced or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera.integration.auth import Monitor, Reader, Writer
from tessera.integration.document import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    IntegrationDocument,
    UnsupportedDocumentType,
    parse_document,
)
from tessera.integration.egress import EgressPolicy
from tessera.integration.problems import Problem
from tessera.integration.services import Services, Svc, read_body
from tessera.integration.store import IntegrationConflict, IntegrationNotFound, State
from tessera.integration.views import (
    API_PREFIX,
    IntegrationPage,
    IntegrationView,
    RunPage,
    RunView,
    error_responses,
    integration_view,
    run_view,
)

__all__ = ["DOCUMENT_SCHEMA_REF", "router"]

DOCUMENT_SCHEMA_REF = "#/components/schemas/IntegrationDocument"
_READ_SCOPES = (
    "Scopes: any of `urn:tessera:integration:monitor`, `urn:tessera:integration:manage`, "
    "`urn:opc:resource:consumer::all`."
)
# The roles, when the service enforces them (the default).
_READ = (
    f"{_READ_SCOPES} Roles: any of `ServiceViewer`, `ServiceUser`, `ServiceMonitor`, "
    "`ServiceDeveloper`, `ServiceAdministrator` (not `ServiceInvoker`)."
)
_MONITOR = (
    f"{_READ_SCOPES} Roles: any of `ServiceMonitor`, `ServiceDeveloper`, `ServiceAdministrator`."
)
_WRITE = (
    "Scope: `urn:tessera:integration:manage`. Roles: any of `ServiceDeveloper`, "
    "`ServiceAdministrator`. And the sign-in level or recentness the service may require "
    "(RFC 9470: 401 `insufficient_user_authentication` with `acr_values` / `max_age`)."
)
_IDENT = "`CODE|VERSION`, e.g. `ECHO_ORDER|01.00.0000` (`|` may be sent as `%7C`)."

_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An integration document, as JSON or YAML.",
        "content": {
            media: {"schema": {"$ref": DOCUMENT_SCHEMA_REF}}
            for media in ("application/json", "application/yaml")
        },
    }
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "A bad document or parameter, or a URL the egress policy refuses",
        404: "No such integration or run",
        409: "The integration's state forbids this",
        413: "The document is too large",
        415: "Neither JSON nor YAML",
    }
    return error_responses({status: meaning[status] for status in statuses})


def _ident(value: str) -> tuple[str, str]:
    code, sep, version = value.partition("|")
    if not sep or not code or not version:
        raise Problem(400, "invalid-identifier", "name an integration as CODE|VERSION")
    return code, version


@contextmanager
def _store_refusals() -> Iterator[None]:
    """The store's refusals as problems: 404 for a missing integration, 409 for its state."""
    try:
        yield
    except IntegrationNotFound as exc:
        raise Problem(404, "integration-not-found", str(exc)) from None
    except IntegrationConflict as exc:
        raise Problem(409, "integration-state", str(exc)) from None


def _paging(limit: int, offset: int, total: int, shown: int) -> dict[str, Any]:
    """The fields of a page besides its items."""
    return {"limit": limit, "offset": offset, "total": total, "has_more": offset + shown < total}


def _check_egress(document: IntegrationDocument, policy: EgressPolicy) -> IntegrationDocument:
    """Refuse early a URL naming a literal address the egress policy refuses (the check that
    counts is the one at connect time, on the resolved address)."""
    errors = [
        {"field": place, "problem": f"refused by the egress policy: {reason}"}
        for place, url in document.urls()
        if (reason := policy.check_url(url)) is not None
    ]
    if errors:
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        raise Problem(400, "egress-refused", summary, extra={"errors": errors})
    return document


def _check_token_exchanges(
    document: IntegrationDocument, token_endpoint: str | None
) -> IntegrationDocument:
    """Refuse a caller's token sent anywhere but the token endpoint of its own issuer."""
    errors = [
        {"field": place, "problem": f"{url} is not the token endpoint {token_endpoint}"}
        for place, url in document.foreign_token_exchanges(token_endpoint)
    ]
    if errors:
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        raise Problem(400, "invalid-document", summary, extra={"errors": errors})
    return document


async def _document(request: Request, services: Services) -> IntegrationDocument:
    raw = await read_body(request, MAX_DOCUMENT_BYTES)
    try:
        document = parse_document(raw, request.headers.get("content-type"))
        _check_token_exchanges(document, services.token_endpoint)
        return _check_egress(document, services.egress)
    except UnsupportedDocumentType as exc:
        raise Problem(415, "unsupported-media-type", exc.detail) from None
    except DocumentError as exc:
        raise Problem(400, "invalid-document", exc.detail, extra={"errors": exc.errors}) from None


Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]

router = APIRouter()


@router.get(
    "/integrations",
    tags=["integrations"],
    summary="List integrations",
    description=f"Integrations by code and version, optionally of one state. {_READ}",
    response_model=IntegrationPage,
    responses=_problems(400),
)
def list_integrations(
    _: Reader, services: Svc, state: State | None = None, limit: Limit = 50, offset: Offset = 0
) -> IntegrationPage:
    items, total = services.store.list_integrations(state, limit, offset)
    return IntegrationPage(
        items=[integration_view(i) for i in items], **_paging(limit, offset, total, len(items))
    )


@router.post(
    "/integrations",
    tags=["integrations"],
    summary="Create an integration",
    description=f"Store a new integration in state `configured`. {_WRITE}",
    status_code=201,
    response_model=IntegrationView,
    responses=_problems(400, 409, 413, 415),
    openapi_extra=_DOCUMENT_BODY,
)
async def create_integration(
    request: Request, response: Response, _: Writer, services: Svc
) -> IntegrationView:
    document = await _document(request, services)
    with _store_refusals():
        created = await run_in_threadpool(services.store.create, document, services.clock())
    response.headers["Location"] = f"{API_PREFIX}/integrations/{document.ident}"
    return integration_view(created)


@router.get(
    "/integrations/{ident}",
    tags=["integrations"],
    summary="Show an integration",
    description=f"One integration; connection secrets are redacted. {_READ}",
    response_model=IntegrationView,
    responses=_problems(400, 404),
)
def show_integration(ident: str, _: Reader, services: Svc) -> IntegrationView:
    code, version = _ident(ident)
    found = services.store.get(code, version)
    if found is None:
        raise Problem(404, "integration-not-found", f"no integration {code}|{version}")
    return integration_view(found)


@router.put(
    "/integrations/{ident}",
    tags=["integrations"],
    summary="Replace an integration",
    description=(
        "Replace the document of a configured or deactivated integration; its code and "
        f"version must match the URL. Send connection secrets again. {_WRITE}"
    ),
    response_model=IntegrationView,
    responses=_problems(400, 404, 409, 413, 415),
    openapi_extra=_DOCUMENT_BODY,
)
async def replace_integration(
    ident: str, request: Request, _: Writer, services: Svc
) -> IntegrationView:
    code, version = _ident(ident)
    document = await _document(request, services)
    if (document.code, document.version) != (code, version):
        raise Problem(
            400,
            "invalid-document",
            f"the document is {document.ident}, the URL names {code}|{version}",
        )
    with _store_refusals():
        replaced = await run_in_threadpool(services.store.replace, document, services.clock())
    return integration_view(replaced)


@router.delete(
    "/integrations/{ident}",
    tags=["integrations"],
    summary="Delete an integration",
    description=f"Delete a configured or deactivated integration; its runs remain. {_WRITE}",
    status_code=204,
    response_class=Response,
    responses=_problems(400, 404, 409),
)
def delete_integration(ident: str, _: Writer, services: Svc) -> Response:
    code, version = _ident(ident)
    with _store_refusals():
        services.store.delete(code, version)
    return Response(status_code=204)


@router.post(
    "/integrations/{ident}/activate",
    tags=["integrations"],
    summary="Activate an integration",
    description=f"Its trigger starts answering (idempotent). {_WRITE}",
    response_model=IntegrationView,
    responses=_problems(400, 404),
)
def activate_integration(ident: str, _: Writer, services: Svc) -> IntegrationView:
    code, version = _ident(ident)
    with _store_refusals():
        return integration_view(services.store.activate(code, version, services.clock()))


@router.post(
    "/integrations/{ident}/deactivate",
    tags=["integrations"],
    summary="Deactivate an integration",
    description=f"Its trigger answers 404 from now on. {_WRITE}",
    response_model=IntegrationView,
    responses=_problems(400, 404, 409),
)
def deactivate_integration(ident: str, _: Writer, services: Svc) -> IntegrationView:
    code, version = _ident(ident)
    with _store_refusals():
        return integration_view(services.store.deactivate(code, version, services.clock()))


@router.get(
    "/monitoring/instances",
    tags=["monitoring"],
    summary="List runs",
    description=(
        "Runs of integrations, newest first, with the caller's user and client, status, "
        f"HTTP status, duration and error. {_MONITOR}"
    ),
    response_model=RunPage,
    responses=_problems(400),
)
def list_runs(
    _: Monitor,
    services: Svc,
    code: Annotated[str | None, Query(max_length=50, description="Integration code")] = None,
    status: Annotated[
        str | None, Query(pattern="^(succeeded|failed)$", description="succeeded or failed")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunPage:
    items, total = services.store.list_runs(code, status, limit, offset)
    return RunPage(items=[run_view(r) for r in items], **_paging(limit, offset, total, len(items)))


@router.get(
    "/monitoring/instances/{run_id}",
    tags=["monitoring"],
    summary="Show a run",
    description=f"One run by its id (the `Tessera-Instance-Id` of its answer). {_MONITOR}",
    response_model=RunView,
    responses=_problems(400, 404),
)
def show_run(run_id: int, _: Monitor, services: Svc) -> RunView:
    found = services.store.get_run(run_id) if 0 < run_id < 2**62 else None
    if found is None:
        raise Problem(404, "run-not-found", f"no run {run_id}")
    return run_view(found)
