"""Serving a SCIM 2.0 request (RFC 7644) for `tessera.web.scim`'s routes: authenticated by the
admin API's guard (an administrator's token, or a provisioning app's client-credentials token
with the SCIM scope, docs/security.md rule 59), then served by scim2-server's handler over the
domain's `DomainScimStorage`, in a worker thread (the store is synchronous). Every refusal is a
SCIM error document (RFC 7644 §3.12).

Imported on the first SCIM request: scim2-models builds its pydantic models on import (about a
second), which no other request needs.
"""

from __future__ import annotations

import json

from scim2_models import SCIMException
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import SCIM_MEDIA_TYPE, ScimResponse
from scim2_server.routing import Operation
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tessera.manage.audit import Actor
from tessera.manage.scim.provider import scim_models, scim_service
from tessera.manage.scim.storage import DomainScimStorage
from tessera.resource.errors import TokenError
from tessera.store.protocols import StoreUnavailable
from tessera.web.admin.guard import Caller, authenticate, domain_services
from tessera.web.logs import get_logger
from tessera.web.proxy import client_ip
from tessera.web.scim import scim_error_body
from tessera.web.services import Services

__all__ = ["serve"]


def _relative_path(request: Request, base: str) -> str:
    """The request's path under the SCIM base (`/Users/…`), below the domain's prefix."""
    root = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    path = path[len(root) :] if root and path.startswith(root) else path
    return path[len(base) :] or "/"


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


async def serve(request: Request, base: str) -> Response:
    """Authenticate, then serve one SCIM request of the domain under `base`."""
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
