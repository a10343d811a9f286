"""Grants and token revocation of users and apps (`/admin/v1/…/grants`, `…/revoke-tokens`).

A revocation reaches resource servers through the revocation feed (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.manage import apps as app_rules
from tessera.manage import users as user_rules
from tessera.manage.revocation import revoke_grant
from tessera.manage.views import grant_view
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import (
    AppTokensRevoked,
    GrantOut,
    GrantRevoked,
    UserTokensRevoked,
    problems,
)

__all__ = ["router"]

router = APIRouter(tags=["tokens"])


@router.get(
    "/users/{user}/grants",
    summary="A user's active grants",
    response_model=list[GrantOut],
    responses=problems(404),
)
async def user_grants(user: str, _: Admin, svc: Svc) -> list[dict[str, Any]]:
    store = svc.ctx.store
    found = await run_in_threadpool(user_rules.find_user, store, user)
    grants = await run_in_threadpool(store.grants.list_active, svc.ctx.clock(), user_id=found.id)
    return [grant_view(g) for g in grants]


@router.post(
    "/users/{user}/revoke-tokens",
    summary="Revoke every token of a user, everywhere",
    response_model=UserTokensRevoked,
    responses=problems(404),
)
async def revoke_user_tokens(user: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    store = svc.ctx.store
    found = await run_in_threadpool(user_rules.find_user, store, user)
    summary = await run_in_threadpool(
        user_rules.revoke_user_tokens, store, found.id, svc.ctx.clock(), actor
    )
    return {
        "user_id": found.id,
        "sessions": summary.sessions,
        "grants": summary.grants,
        "event_seq": summary.event_seq,
    }


@router.get(
    "/apps/{app}/grants",
    summary="An app's active grants",
    response_model=list[GrantOut],
    responses=problems(404),
)
async def app_grants(app: str, _: Admin, svc: Svc) -> list[dict[str, Any]]:
    store = svc.ctx.store
    found = await run_in_threadpool(app_rules.find_app, store, app)
    grants = await run_in_threadpool(
        store.grants.list_active, svc.ctx.clock(), client_id=found.client_id
    )
    return [grant_view(g) for g in grants]


@router.post(
    "/apps/{app}/revoke-tokens",
    summary="Revoke every token issued to an app",
    response_model=AppTokensRevoked,
    responses=problems(404),
)
async def revoke_app_tokens(app: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    store = svc.ctx.store
    found = await run_in_threadpool(app_rules.find_app, store, app)
    summary = await run_in_threadpool(
        app_rules.revoke_app_tokens, store, found.client_id, svc.ctx.clock(), actor
    )
    return {"client_id": found.client_id, "grants": summary.grants}


@router.delete(
    "/grants/{grant_id}",
    summary="Revoke one grant (a refresh family and its access tokens)",
    response_model=GrantRevoked,
    responses=problems(404),
)
async def revoke_one_grant(grant_id: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    await run_in_threadpool(revoke_grant, svc.ctx.store, grant_id, svc.ctx.clock(), actor)
    return {"revoked": grant_id}
