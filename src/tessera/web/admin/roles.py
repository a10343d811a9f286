"""Role grants (`/admin/v1/role-grants`): a resource's application roles granted to users,
groups and apps; list with filters, grant, revoke (optionally with the principal's tokens for
the resource) (`tessera.manage.roles`, docs/groups-and-roles.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from tessera.manage import roles as rules
from tessera.manage.errors import InvalidInput
from tessera.store.protocols import Store
from tessera.web.admin.bodies import RoleGrantIn
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import RoleGrantOut, RoleRevokedOut, UserAccessOut, problems

__all__ = ["router"]

router = APIRouter(tags=["roles"])

Kind = Literal["user", "group", "app"]
_KIND = "`user`, `group` or `app`"
_PRINCIPAL = "A user's id or username, a group's id or name, an app's client id or name"


def _listed(
    store: Store, resource: str | None, kind: Kind | None, principal: str | None
) -> list[dict[str, Any]]:
    if (kind is None) != (principal is None):
        raise InvalidInput("give principal_kind and principal together, or neither")
    who = (
        None if kind is None or principal is None else rules.find_principal(store, kind, principal)
    )
    return rules.grant_views(store, rules.list_role_grants(store, resource=resource, principal=who))


@router.get(
    "/role-grants",
    summary="Role grants: of every resource or one, to everyone or one principal",
    response_model=list[RoleGrantOut],
    responses=problems(400, 404),
)
async def list_role_grants(
    _: Admin,
    svc: Svc,
    resource: Annotated[str | None, Query(description="The resource: id, audience or name")] = None,
    principal_kind: Annotated[Kind | None, Query(description=_KIND)] = None,
    principal: Annotated[str | None, Query(description=_PRINCIPAL)] = None,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(_listed, svc.ctx.store, resource, principal_kind, principal)


@router.post(
    "/role-grants",
    status_code=201,
    summary="Grant a role the resource declares; it reaches the principal's next token",
    response_model=RoleGrantOut,
    responses=problems(400, 404, 409, 413),
)
async def grant_role(body: RoleGrantIn, actor: Acting, svc: Svc) -> dict[str, Any]:
    store = svc.ctx.store

    def work() -> dict[str, Any]:
        who = rules.find_principal(store, body.principal_kind, body.principal)
        given = rules.grant_role(
            store,
            resource=body.resource,
            role=body.role,
            principal=who,
            now=svc.ctx.clock(),
            actor=actor,
        )
        svc.app_roles.clear()  # an app's next token here carries it at once, elsewhere soon
        return rules.grant_views(store, [given])[0]

    return await run_in_threadpool(work)


@router.delete(
    "/role-grants",
    summary="Take a role away; with `revoke_tokens`, also what the principal holds for the "
    "resource",
    response_model=RoleRevokedOut,
    responses=problems(400, 404),
)
async def revoke_role(
    actor: Acting,
    svc: Svc,
    resource: Annotated[str, Query(description="The resource: id, audience or name")],
    role: Annotated[str, Query(description="The role")],
    principal_kind: Annotated[Kind, Query(description=_KIND)],
    principal: Annotated[str, Query(description=_PRINCIPAL)],
    revoke_tokens: Annotated[
        bool,
        Query(
            description="Also revoke a user's (each member's) grants for the resource, or an "
            "app's client-credentials tokens; otherwise issued tokens keep the role until "
            "they expire"
        ),
    ] = False,
) -> dict[str, Any]:
    store = svc.ctx.store

    def work() -> dict[str, Any]:
        who = rules.find_principal(store, principal_kind, principal)
        done = rules.revoke_role(
            store,
            resource=resource,
            role=role,
            principal=who,
            now=svc.ctx.clock(),
            actor=actor,
            revoke=revoke_tokens,
        )
        svc.app_roles.clear()
        return rules.revoked_view(store, done)

    return await run_in_threadpool(work)


@router.get(
    "/users/{user}/roles",
    summary="A user's groups and the roles their next token for each resource carries",
    response_model=UserAccessOut,
    responses=problems(404),
)
async def user_roles(user: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return await run_in_threadpool(rules.user_access, svc.ctx.store, user)
