"""The integration service's ASGI application: `create_app()` (a uvicorn factory).

At startup it applies its migrations, starts following the identity domain's revocation feed
and waits briefly for the first catch-up; `/health/ready` answers 503 until the database
answers and the feed has caught up. Every other route but the OpenAPI description needs a token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from tessera import __version__
from tessera.integration import api, flows
from tessera.integration.auth import Guards
from tessera.integration.database import make_engine, upgrade
from tessera.integration.document import IntegrationDocument
from tessera.integration.egress import guarded_transport
from tessera.integration.outbound import Connections
from tessera.integration.problems import PROBLEM_JSON, install_error_handlers
from tessera.integration.revocation import Revocation, revocation_for
from tessera.integration.services import Services
from tessera.integration.settings import IntegrationSettings, load_settings
from tessera.integration.store import IntegrationStore
from tessera.integration.views import API_PREFIX, ProblemView
from tessera.resource import TokenValidator
from tessera.shared.body_limit import Answer, BodyLimitMiddleware
from tessera.shared.problems import problem_document
from tessera.shared.sealing import Sealer

__all__ = ["create_app"]

_log = logging.getLogger("tessera.integration")
_NO_STORE = {"Cache-Control": "no-store"}
# Integration documents and flow payloads (RFC 9110 §15.5.14).
MAX_BODY_BYTES = 1024 * 1024

_DESCRIPTION = """\
The integration service of Tessera (the seed's Oracle Integration), a resource server of the
identity domain. Every request but this description and `/health/*` needs an access token for
the service's audience in `Authorization: Bearer <token>`, or, for a DPoP-bound token (RFC 9449),
in `Authorization: DPoP <token>` with a `DPoP` proof of its key for the request (with `ath`).

| scope | allows |
|---|---|
| `urn:opc:resource:consumer::all` | reading and running (the Oracle Integration instance scope) |
| `urn:tessera:integration:manage` | creating, replacing, deleting, (de)activating integrations |
| `urn:tessera:integration:monitor` | read only: `GET integrations…`, `GET monitoring/…` |
| `urn:tessera:integration:run` | running any activated integration |
| a trigger's own `scope` | running that one integration |

Besides the scope, each request needs one of Oracle Integration's application roles in the
token's `roles` claim (RFC 9068 §2.2.3.1), granted in the identity domain (unless the service
runs with `TESSERA_INTEGRATION_ENFORCE_ROLES=false`):

| role | may |
|---|---|
| `ServiceAdministrator` | everything |
| `ServiceDeveloper` | create, replace, delete, (de)activate and read integrations; monitoring |
| `ServiceMonitor` | read integrations and monitoring |
| `ServiceUser` | read integrations, run them |
| `ServiceInvoker` | run integrations, nothing else |
| `ServiceViewer` | read integrations |

Errors: token errors answer per RFC 6750 (401 with `WWW-Authenticate: Bearer …`, 403
`insufficient_scope` with `scope=`, 400 `invalid_request` for a token in the query string) and
RFC 9449 §7.1 (`WWW-Authenticate: DPoP …` with `invalid_dpop_proof`, or `use_dpop_nonce` and a
`DPoP-Nonce` header when the service requires nonces);
everything else answers RFC 9457 `application/problem+json`, such as a missing role: 403 with
the `insufficient_scope` challenge and a problem naming the roles any one of which would do.

Step-up (RFC 9470): when the service is configured so, the requests that change integrations
also need a given level or a recent sign-in, and answer 401 `insufficient_user_authentication`
with `acr_values` / `max_age` otherwise: sign in again asking for them, and retry.
"""


@dataclass(frozen=True)
class _Runtime:
    """What the app opens at startup and closes at shutdown, besides its services."""

    engine: Engine
    sealer: Sealer
    revocation: Revocation
    http: httpx.AsyncClient


def _services(settings: IntegrationSettings) -> tuple[Services, _Runtime]:
    engine = make_engine(settings.db_url)
    store = IntegrationStore(engine, settings.sealer)
    revocation = revocation_for(settings)
    validator = TokenValidator(
        settings.issuer,
        settings.audience,
        revocation=revocation.check,
        dpop=settings.dpop_policy,
    )
    policy = settings.egress_policy
    http = httpx.AsyncClient(
        transport=guarded_transport(policy), follow_redirects=False, timeout=10.0, trust_env=False
    )
    guards = Guards(validator, settings.manage_requirement, enforce_roles=settings.enforce_roles)
    services = Services(store, Connections(http), guards, policy, settings.token_endpoint)
    return services, _Runtime(engine, settings.sealer, revocation, http)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: _Runtime = app.state.runtime
    before, after = await run_in_threadpool(upgrade, runtime.engine, runtime.sealer)
    if before != after:
        _log.info("integration database migrated from %s to %s", before or "empty", after)
    feed = runtime.revocation.feed
    if feed is not None:
        await run_in_threadpool(feed.start, 5.0)
        if not feed.synced:
            _log.warning("the revocation feed has not caught up yet: refusing tokens")
    try:
        yield
    finally:
        if feed is not None:
            feed.stop()
        await runtime.http.aclose()
        runtime.engine.dispose()


class _IntegrationAPI(FastAPI):
    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            _add_document_schema(schema)
            services: Services = self.state.services
            schema["components"].setdefault("securitySchemes", {})["tessera"] = (
                services.guards.scheme()
            )
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(settings: IntegrationSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    services, runtime = _services(settings)
    app = _IntegrationAPI(
        title="Tessera integration service",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # the Swagger UI loads third-party assets
        redoc_url=None,
        lifespan=_lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES, render=_too_large)
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(flows.router, prefix=API_PREFIX)
    app.include_router(_health)
    app.state.services = services
    app.state.runtime = runtime
    return app


_health = APIRouter(include_in_schema=False)


@_health.get("/health/live")
async def live() -> Response:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@_health.get("/health/ready")
async def ready(request: Request) -> Response:
    services: Services = request.app.state.services
    revocation = request.app.state.runtime.revocation
    body: dict[str, str] = {"status": "ok", "database": "ok", "revocation": revocation.mode}
    try:
        await run_in_threadpool(services.store.ping)
    except SQLAlchemyError:
        body.update(status="unavailable", database="unreachable")
    if revocation.feed is not None and not revocation.feed.synced:
        body.update(status="unavailable", revocation="feed not caught up")
    return JSONResponse(body, 200 if body["status"] == "ok" else 503, headers=_NO_STORE)


def _too_large(_scope: Any, _path: str, limit: int) -> Answer:
    problem = problem_document(
        413,
        f"the request body is larger than {limit} bytes",
        type_uri="urn:tessera:integration:problem:body-too-large",
        title="Content too large",
    )
    return PROBLEM_JSON, json.dumps(problem).encode(), _NO_STORE


def _add_document_schema(schema: dict[str, Any]) -> None:
    """Describe integration documents, which the API reads itself (JSON or YAML), and problem
    details, which are answered as `application/problem+json`."""
    document = IntegrationDocument.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="validation"
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(document.pop("$defs", {}))
    components["IntegrationDocument"] = document
    components["ProblemView"] = ProblemView.model_json_schema()
    # FastAPI documents its 422 validation errors; this API answers 400 problem details.
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            if "HTTPValidationError" in str(answer):
                operation["responses"].pop("422")
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
