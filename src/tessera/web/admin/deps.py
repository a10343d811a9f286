"""The admin API's dependencies: the caller's token, the services, the audit actor.

The admin API is one application for every identity domain: the request's domain `Services`
come from the domain router (`tessera.web.services.services`), the default domain's from
`app.state.services` (`build_admin_api`), so the handlers can be module-level functions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from tessera.manage.audit import Actor
from tessera.resource.errors import TokenError
from tessera.resource.fastapi import http_error
from tessera.web.admin.guard import Caller, authenticate, require_operator
from tessera.web.proxy import client_ip
from tessera.web.services import Services
from tessera.web.services import services as request_services

__all__ = ["Acting", "Admin", "Operator", "OperatorActing", "Svc", "services"]


async def services(request: Request) -> Services:
    # async: FastAPI would run a plain function in a worker thread.
    return request_services(request)


Svc = Annotated[Services, Depends(services)]


async def _caller(request: Request) -> Caller:
    try:
        return await authenticate(request, request.app.state.services)
    except TokenError as exc:
        raise http_error(exc) from None


# A bearer token of the domain's administrators or of an operator (`tessera.web.admin.guard`).
Admin = Annotated[Caller, Depends(_caller)]


def _ip(request: Request) -> str | None:
    ip = client_ip(request.scope)
    return ip if isinstance(ip, str) else None


async def _acting_admin(caller: Admin, request: Request, svc: Svc) -> Actor:
    """The caller as the actor of the audit events a change records, in the request's domain:
    its administrator's `sub`, or `operator:<sub>`."""
    return Actor(caller.actor, svc.audit.record, _ip(request))


Acting = Annotated[Actor, Depends(_acting_admin)]


async def _operator(caller: Admin, svc: Svc) -> Caller:
    """An operator, at the default domain's admin API (elsewhere its routes do not exist, once
    the token is checked as for any route: as `AuthenticateFirst` does for a body)."""
    if not svc.domain.is_default:
        raise HTTPException(404, "identity domains are managed at the default domain's admin API")
    try:
        require_operator(caller)
    except TokenError as exc:
        raise http_error(exc) from None
    return caller


Operator = Annotated[Caller, Depends(_operator)]


async def _acting_operator(caller: Operator, request: Request, svc: Svc) -> Actor:
    """The operator as the actor of domain changes, audited in the default domain's log."""
    return Actor(f"operator:{caller.token.subject}", svc.audit.record, _ip(request))


OperatorActing = Annotated[Actor, Depends(_acting_operator)]
