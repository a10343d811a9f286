"""Resources: an audience, its scopes and its application roles (`/admin/v1/resources…`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.domain.model import ResourceRole
from tessera.manage import resources as resource_rules
from tessera.manage.views import resource_view
from tessera.web.admin.bodies import ResourceCreate, ResourceRoleIn, ResourceUpdate
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import Deleted, ResourceOut, problems

__all__ = ["router"]

router = APIRouter(tags=["resources"])


def _roles(given: list[ResourceRoleIn]) -> list[ResourceRole]:
    return [ResourceRole(r.name, r.description) for r in given]


@router.get(
    "/resources", summary="List resources", response_model=list[ResourceOut], responses=problems()
)
async def list_resources(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    return [resource_view(r) for r in await run_in_threadpool(svc.ctx.store.resources.list)]


@router.post(
    "/resources",
    status_code=201,
    summary="Register a resource",
    response_model=ResourceOut,
    responses=problems(400, 409, 413),
)
async def create_resource(body: ResourceCreate, actor: Acting, svc: Svc) -> dict[str, Any]:
    resource = await run_in_threadpool(
        resource_rules.create_resource,
        svc.ctx.store,
        name=body.name,
        audience=body.audience,
        scopes=body.scopes,
        access_ttl=body.access_token_ttl,
        signing_alg=body.signing_alg,
        roles=_roles(body.roles),
        include_groups=body.include_groups,
        now=svc.ctx.clock(),
        actor=actor,
    )
    svc.resources.clear()
    return resource_view(resource)


@router.get(
    "/resources/{resource}",
    summary="Show a resource",
    response_model=ResourceOut,
    responses=problems(404),
)
async def show_resource(resource: str, _: Admin, svc: Svc) -> dict[str, Any]:
    found = await run_in_threadpool(resource_rules.find_resource, svc.ctx.store, resource)
    return resource_view(found)


@router.patch(
    "/resources/{resource}",
    summary="Edit a resource's name, scopes, access-token lifetime cap, roles or groups claim",
    response_model=ResourceOut,
    responses=problems(400, 404, 409, 413),
)
async def update_resource(
    resource: str, body: ResourceUpdate, actor: Acting, svc: Svc
) -> dict[str, Any]:
    ttl_given = "access_token_ttl" in body.model_fields_set
    updated = await run_in_threadpool(
        resource_rules.update_resource,
        svc.ctx.store,
        resource,
        actor=actor,
        name=body.name,
        scopes=body.scopes,
        access_ttl=body.access_token_ttl,
        clear_access_ttl=ttl_given and body.access_token_ttl is None,
        roles=None if body.roles is None else _roles(body.roles),
        include_groups=body.include_groups,
    )
    svc.resources.clear()
    return resource_view(updated)


@router.delete(
    "/resources/{resource}",
    summary="Delete a resource",
    response_model=Deleted,
    responses=problems(404, 409),
)
async def delete_resource(resource: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    gone = await run_in_threadpool(resource_rules.delete_resource, svc.ctx.store, resource, actor)
    svc.resources.clear()
    return {"deleted": gone.id}
