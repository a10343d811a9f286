"""The SCIM 2.0 endpoints of every identity domain (RFC 7644): `/scim/v2/…`, and Oracle's
`/admin/v1/Users`, `/admin/v1/Groups` and the discovery endpoints beside the admin API.

Each request is authenticated by the admin API's guard (an administrator's token, or a
provisioning app's client-credentials token with the SCIM scope, docs/security.md rule 59),
then served by scim2-server's handler over the domain's `DomainScimStorage`, in a worker
thread (the store is synchronous). Every refusal is a SCIM error document (RFC 7644 §3.12).
"""

from __future__ import annotations

import json

from scim2_models import Error, SCIMException
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import SCIM_MEDIA_TYPE, ScimResponse
from scim2_server.routing import Operation
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tessera.manage.audit import Actor
from tessera.manage.scim.provider import scim_models, scim_service
from tessera.manage.scim.storage import DomainScimStorage
from tessera.resource.errors import TokenError
from tessera.store.protocols import StoreUnavailable
from tessera.web.admin.guard import Caller, authenticate, domain_services
from tessera.web.logs import get_logger
from tessera.web.proxy import client_ip
from tessera.web.services import Services

__all__ = ["SCIM_ROUTES", "is_scim_path", "scim_error_body"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
SCIM_BASE = "/scim/v2"
ORACLE_BASE = "/admin/v1"
# The SCIM endpoints under Oracle's `/admin/v1` (capitalised: the admin API's are lower-case).
ORACLE_ENDPOINTS = ("Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes")
_ORACLE_EXTRA = ("Bulk", "Me")  # answered 501 by the service, as at /scim/v2


def _relative_path(request: Request, base: str) -> str:
    """The request's path under the SCIM base (`/Users/…`), below the domain's prefix."""
    root = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    path = path[len(root) :] if root and path.startswith(root) else path
    return path[len(base) :] or "/"


def is_scim_path(path: str) -> bool:
    """A path (below the domain's prefix) that the SCIM endpoints serve."""
    if path == SCIM_BASE or path.startswith(SCIM_BASE + "/"):
        return True
    name = path.removeprefix(ORACLE_BASE + "/").partition("/")[0]
    return path.startswith(ORACLE_BASE + "/") and name in (*ORACLE_ENDPOINTS, *_ORACLE_EXTRA)


def scim_error_body(status: int, detail: str) -> bytes:
    """A SCIM error document (RFC 7644 §3.12)."""
    return json.dumps(Error(status=status, detail=detail).model_dump()).encode()


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        scim_error_body(status, detail),
        status,
        headers={"Cache-Control": "no-store", **(headers or {})},
        media_type=SCIM_MEDIA_TYPE,
    )


def _token_error(error: TokenError) -> Response:
    """RFC 6750 §3: the challenge in `WWW-Authenticate`, the SCIM error document as body."""
    detail = error.description or (
        "an access token is required" if error.status == 401 else "the token is refused"
    )
    return _error(error.status, detail, error.headers(realm="SCIM"))


def _handle(handler: ScimHandler, request: ScimRequest) -> ScimResponse:
    """One SCIM operation; refusals as SCIM errors. An unexpected error is logged and answered
    as a SCIM error too, without details."""
    service = handler.service
    try:
        return handler.handle(request)
    except SCIMException as exc:
        return service.error_response(exc)
    except StoreUnavailable:
        raise
    except Exception as exc:
        get_logger("tessera.scim").exception("scim_error", error_type=type(exc).__name__)
        return service.error_response(SCIMException(detail="the request failed"))


def _render(response: ScimResponse) -> Response:
    headers = {"Cache-Control": "no-store", **response.headers}
    body = b"" if response.body is None else json.dumps(response.body).encode()
    headers.pop("Content-Type", None)
    media = SCIM_MEDIA_TYPE if response.body is not None else None
    return Response(body, int(response.status), headers=headers, media_type=media)


def _needs_token(request: ScimRequest) -> bool:
    """Every endpoint but ServiceProviderConfig, which says how to authenticate (RFC 7643 §5)."""
    try:
        operation = scim_service().match(request).operation
    except SCIMException:
        return True
    return operation is not Operation.service_provider_config


async def _caller(request: Request, default: Services) -> Caller | Response:
    try:
        return await authenticate(request, default, provisioning=True)
    except TokenError as exc:
        return _token_error(exc)


async def _serve(request: Request, base: str) -> Response:
    default: Services = request.app.state.services
    svc = domain_services(request, default)
    scim_request = ScimRequest(
        method=request.method,
        base_url=svc.ctx.settings.issuer + base,  # the domain's own address: meta.location
        path=_relative_path(request, base),
        query=dict(request.query_params),
        headers=list(request.headers.items()),
    )
    actor, admins = Actor("scim:anonymous", svc.audit.record, client_ip(request.scope)), False
    if _needs_token(scim_request):
        caller = await _caller(request, default)
        if isinstance(caller, Response):
            return caller
        actor = Actor(caller.actor, svc.audit.record, client_ip(request.scope))
        admins = caller.token.is_user  # an administrator or an operator; else an app
    scim_request.body = await request.body()  # read once the caller is known (as the admin API)
    storage = DomainScimStorage(svc.ctx.store, svc.ctx.clock, actor, scim_models(), admins=admins)
    handler = ScimHandler(scim_service(), storage)
    return _render(await run_in_threadpool(_handle, handler, scim_request))


async def scim_v2(request: Request) -> Response:
    return await _serve(request, SCIM_BASE)


async def oracle_scim(request: Request) -> Response:
    return await _serve(request, ORACLE_BASE)


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route(SCIM_BASE, scim_v2, methods=_METHODS),
        Route(SCIM_BASE + "/{rest:path}", scim_v2, methods=_METHODS),
    ]
    for name in (*ORACLE_ENDPOINTS, *_ORACLE_EXTRA):
        routes.append(Route(f"{ORACLE_BASE}/{name}", oracle_scim, methods=_METHODS))
        routes.append(Route(f"{ORACLE_BASE}/{name}/{{rest:path}}", oracle_scim, methods=_METHODS))
    # A search of every resource type (RFC 7644 §3.4.3).
    routes.append(Route(f"{ORACLE_BASE}/.search", oracle_scim, methods=["POST"]))
    return routes


# Listed before the admin API's mount at `/admin/v1` (tessera.web.app).
SCIM_ROUTES = _routes()
