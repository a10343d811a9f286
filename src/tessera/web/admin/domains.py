"""Identity domains (`/admin/v1/domains…`), for operators, at the default domain's admin API
only (docs/domains.md). The rules are `tessera.manage.domains`, shared with the CLI; each change
is audited in the default domain's log as `operator:<sub>`, and this node's caches forget the
domain at once (other nodes within their directory cache's two seconds)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from tessera.context import domain_signing_key
from tessera.domain.identity_domains import IdentityDomain
from tessera.manage import domains as domain_rules
from tessera.manage.audit import Actor
from tessera.web.admin.bodies import DomainCreate, DomainUpdate
from tessera.web.admin.deps import Operator, OperatorActing, Svc
from tessera.web.admin.schemas import (
    DomainCreatedOut,
    DomainDeleted,
    DomainOut,
    DomainPage,
    problems,
)
from tessera.web.services import Services

__all__ = ["router"]

router = APIRouter(tags=["domains"])
# No control characters (nor NUL, which no database text parameter takes).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
# A domain's name or id.
DomainRef = Annotated[str, Path(description="Its name or id", max_length=255, pattern=_PRINTABLE)]


def _view(svc: Services, domain: IdentityDomain) -> dict[str, Any]:
    return domain_rules.domain_view(domain, svc.ctx.settings.issuer)


def _changed(request: Request, domain: IdentityDomain) -> None:
    request.app.state.on_domain_changed(domain.id)


@router.get(
    "/domains",
    summary="List identity domains, in name order",
    response_model=DomainPage,
    responses=problems(400, 404),
)
async def list_domains(
    _: Operator,
    svc: Svc,
    after: Annotated[
        str | None,
        Query(
            description="Names after this one: `next_after` of the previous page",
            max_length=255,
            pattern=_PRINTABLE,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return await run_in_threadpool(
        domain_rules.domain_page,
        svc.ctx.store,
        svc.ctx.settings.issuer,
        after=after,
        limit=limit,
    )


@router.post(
    "/domains",
    status_code=201,
    summary="Create an identity domain with its keys, console app and first administrator",
    response_model=DomainCreatedOut,
    responses=problems(400, 404, 409, 413),
)
async def create_domain(
    body: DomainCreate, actor: OperatorActing, svc: Svc, request: Request
) -> dict[str, Any]:
    settings = svc.ctx.settings
    admin = None
    if body.admin is not None:
        admin = domain_rules.NewAdmin(
            username=body.admin.username,
            password=body.admin.password,
            email=body.admin.email,
            display_name=body.admin.display_name,
        )
    created = await run_in_threadpool(
        lambda: domain_rules.create_domain(
            svc.ctx.store,
            name=body.name,
            base_issuer=settings.issuer,
            signing_key_for=lambda domain_id: domain_signing_key(settings, domain_id),
            now=svc.ctx.clock(),
            actor=actor,
            display_name=body.display_name,
            host=body.host,
            settings=body.settings,
            admin=admin,
        )
    )
    _changed(request, created.domain)
    return domain_rules.created_view(created, settings.issuer)


@router.get(
    "/domains/{domain}",
    summary="Show an identity domain (by name or id)",
    response_model=DomainOut,
    responses=problems(400, 404),
)
async def show_domain(domain: DomainRef, _: Operator, svc: Svc) -> dict[str, Any]:
    return _view(svc, await run_in_threadpool(domain_rules.find_domain, svc.ctx.store, domain))


@router.patch(
    "/domains/{domain}",
    summary="Change a domain's display name, host name or settings",
    description="A new host name changes the domain's issuer: its tokens issued before are "
    "refused. A setting set to `null` goes back to the node's value.",
    response_model=DomainOut,
    responses=problems(400, 404, 409, 413),
)
async def update_domain(
    domain: DomainRef, body: DomainUpdate, actor: OperatorActing, svc: Svc, request: Request
) -> dict[str, Any]:
    updated = await run_in_threadpool(
        lambda: domain_rules.update_domain(
            svc.ctx.store,
            domain,
            base_issuer=svc.ctx.settings.issuer,
            actor=actor,
            now=svc.ctx.clock(),
            display_name=body.display_name,
            host=body.host,
            settings=body.settings,
        )
    )
    _changed(request, updated)
    return _view(svc, updated)


async def _set_enabled(
    request: Request, svc: Services, actor: Actor, domain: str, enabled: bool
) -> dict[str, Any]:
    updated = await run_in_threadpool(
        domain_rules.set_domain_enabled, svc.ctx.store, domain, enabled, svc.ctx.clock(), actor
    )
    _changed(request, updated)
    return _view(svc, updated)


@router.post(
    "/domains/{domain}/disable",
    summary="Disable a domain: every endpoint of it answers 403 `domain_disabled`",
    response_model=DomainOut,
    responses=problems(400, 404, 409),
)
async def disable_domain(
    domain: DomainRef, actor: OperatorActing, svc: Svc, request: Request
) -> dict[str, Any]:
    return await _set_enabled(request, svc, actor, domain, False)


@router.post(
    "/domains/{domain}/enable",
    summary="Enable a disabled domain again",
    response_model=DomainOut,
    responses=problems(400, 404, 409),
)
async def enable_domain(
    domain: DomainRef, actor: OperatorActing, svc: Svc, request: Request
) -> dict[str, Any]:
    return await _set_enabled(request, svc, actor, domain, True)


@router.delete(
    "/domains/{domain}",
    summary="Delete a domain and all its data",
    description="The domain is disabled first, so every node refuses it and its tokens; then "
    "its data is deleted in short batches. Interrupted, it can be called again.",
    response_model=DomainDeleted,
    responses=problems(400, 404, 409),
)
async def delete_domain(
    domain: DomainRef, actor: OperatorActing, svc: Svc, request: Request
) -> dict[str, Any]:
    gone = await run_in_threadpool(
        domain_rules.delete_domain, svc.ctx.store, domain, svc.ctx.clock(), actor
    )
    _changed(request, gone.domain)
    return {"deleted": gone.domain.name, "rows": gone.rows}
