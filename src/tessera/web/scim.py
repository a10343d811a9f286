"""The SCIM 2.0 endpoints of every identity domain (RFC 7644): `/scim/v2/…`, and Oracle's
`/admin/v1/Users`, `/admin/v1/Groups` and the discovery endpoints beside the admin API.

The routes are here; serving a request is `tessera.web.scim_protocol`'s, imported on the first
SCIM request (scim2-models costs about a second to import, which a node that never provisions
should not pay at every start).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["SCIM_ROUTES", "is_scim_path", "scim_error_body"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
SCIM_BASE = "/scim/v2"
ORACLE_BASE = "/admin/v1"
# The SCIM endpoints under Oracle's `/admin/v1` (capitalised: the admin API's are lower-case).
ORACLE_ENDPOINTS = ("Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes")
_ORACLE_EXTRA = ("Bulk", "Me")  # answered 501 by the service, as at /scim/v2


def is_scim_path(path: str) -> bool:
    """A path (below the domain's prefix) that the SCIM endpoints serve."""
    if path == SCIM_BASE or path.startswith(SCIM_BASE + "/"):
        return True
    name = path.removeprefix(ORACLE_BASE + "/").partition("/")[0]
    return path.startswith(ORACLE_BASE + "/") and name in (*ORACLE_ENDPOINTS, *_ORACLE_EXTRA)


def scim_error_body(status: int, detail: str) -> bytes:
    """A SCIM error document (RFC 7644 §3.12)."""
    from scim2_models import Error  # see the module's docstring

    return json.dumps(Error(status=status, detail=detail).model_dump()).encode()


async def scim_v2(request: Request) -> Response:
    from tessera.web.scim_protocol import serve  # see the module's docstring

    return await serve(request, SCIM_BASE)


async def oracle_scim(request: Request) -> Response:
    from tessera.web.scim_protocol import serve

    return await serve(request, ORACLE_BASE)


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
