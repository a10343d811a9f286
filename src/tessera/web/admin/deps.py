"""The admin API's dependencies: the administrator's token, the services, the audit actor.

Each reads the per-application objects that `build_admin_api` puts on `app.state`, so the
handlers can be module-level functions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import SecurityScopes

from tessera.domain.admin import ADMIN_SCOPE
from tessera.manage.audit import Actor
from tessera.resource.fastapi import TokenDependency
from tessera.resource.validator import AccessToken
from tessera.web.proxy import client_ip
from tessera.web.services import Services

__all__ = ["Acting", "Admin", "Svc", "services"]


async def _admin_token(request: Request, security_scopes: SecurityScopes) -> AccessToken:
    require: TokenDependency = request.app.state.require_token
    return await require(request, security_scopes)


# A bearer token for the admin audience with the admin scope (RFC 6750; docs/security.md).
Admin = Annotated[AccessToken, Security(_admin_token, scopes=[ADMIN_SCOPE])]


async def services(request: Request) -> Services:
    # async: FastAPI would run a plain function in a worker thread.
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]


async def _acting_admin(admin: Admin, request: Request, svc: Svc) -> Actor:
    """The administrator as the actor of the audit events a change records."""
    ip = client_ip(request.scope)
    return Actor(admin.subject, svc.audit.record, ip if isinstance(ip, str) else None)


Acting = Annotated[Actor, Depends(_acting_admin)]
