"""Groups of users (`/admin/v1/groups…`, lower-case; SCIM's `/admin/v1/Groups` is another
API): list, create, show with members and roles, edit, delete, add and remove members
(`tessera.manage.groups`, docs/groups-and-roles.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from tessera.domain.model import Group
from tessera.manage import groups as rules
from tessera.manage import roles as role_rules
from tessera.manage.views import group_view
from tessera.store.protocols import Store
from tessera.web.admin.bodies import GroupCreate, GroupMembers, GroupUpdate
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import GroupDeleted, GroupListItem, GroupOut, problems
from tessera.web.services import Services

__all__ = ["router"]

router = APIRouter(tags=["groups"])

_GROUP = "The group's id or name (a name with `/` only by id)"
RevokeTokens = Annotated[
    bool,
    Query(
        description="Also revoke the removed members' tokens for the resources the group has "
        "roles on (otherwise they keep those roles until they expire)"
    ),
]


async def _changed(svc: Services, change: Callable[[Store], Group]) -> dict[str, Any]:
    """Run a change off the event loop, then show the group as it left it."""

    def work() -> dict[str, Any]:
        store = svc.ctx.store
        return role_rules.group_detail(store, change(store).id)

    return await run_in_threadpool(work)


@router.get(
    "/groups",
    summary="List groups, by name, with their number of members",
    response_model=list[GroupListItem],
    responses=problems(),
)
async def list_groups(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    found = await run_in_threadpool(rules.list_groups, svc.ctx.store)
    return [{**group_view(g), "member_count": n} for g, n in found]


@router.post(
    "/groups",
    status_code=201,
    summary="Create a group, optionally with its first members",
    response_model=GroupOut,
    responses=problems(400, 404, 409, 413),
)
async def create_group(body: GroupCreate, actor: Acting, svc: Svc) -> dict[str, Any]:
    return await _changed(
        svc,
        lambda store: rules.create_group(
            store,
            name=body.name,
            description=body.description,
            members=body.members,
            now=svc.ctx.clock(),
            actor=actor,
        ),
    )


@router.get(
    "/groups/{group}",
    summary="Show a group with its members and the roles granted to it",
    response_model=GroupOut,
    responses=problems(404),
)
async def show_group(group: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return await run_in_threadpool(role_rules.group_detail, svc.ctx.store, group)


@router.patch(
    "/groups/{group}",
    summary="Rename a group or change its description",
    response_model=GroupOut,
    responses=problems(400, 404, 409, 413),
)
async def update_group(group: str, body: GroupUpdate, actor: Acting, svc: Svc) -> dict[str, Any]:
    return await _changed(
        svc,
        lambda store: rules.update_group(
            store,
            group,
            name=body.name,
            description=body.description,
            now=svc.ctx.clock(),
            actor=actor,
        ),
    )


@router.delete(
    "/groups/{group}",
    summary="Delete a group, its memberships and the roles granted to it",
    response_model=GroupDeleted,
    responses=problems(404, 409),
)
async def delete_group(
    group: str, actor: Acting, svc: Svc, revoke_tokens: RevokeTokens = False
) -> dict[str, Any]:
    gone = await run_in_threadpool(
        lambda: rules.delete_group(
            svc.ctx.store, group, svc.ctx.clock(), actor, revoke=revoke_tokens
        )
    )
    return {"deleted": gone.id, "name": gone.name, "tokens_revoked": revoke_tokens}


@router.post(
    "/groups/{group}/members",
    summary="Add members (already members stay)",
    response_model=GroupOut,
    responses=problems(400, 404, 413),
)
async def add_members(group: str, body: GroupMembers, actor: Acting, svc: Svc) -> dict[str, Any]:
    return await _changed(
        svc, lambda store: rules.add_members(store, group, body.users, svc.ctx.clock(), actor)
    )


@router.delete(
    "/groups/{group}/members",
    summary="Remove members; their next tokens no longer carry the group's roles",
    response_model=GroupOut,
    responses=problems(400, 404),
)
async def remove_members(
    group: str,
    actor: Acting,
    svc: Svc,
    user: Annotated[
        list[str],
        Query(min_length=1, max_length=1000, description="A member's id or username (repeat)"),
    ],
    revoke_tokens: RevokeTokens = False,
) -> dict[str, Any]:
    return await _changed(
        svc,
        lambda store: rules.remove_members(
            store, group, user, svc.ctx.clock(), actor, revoke=revoke_tokens
        ),
    )
