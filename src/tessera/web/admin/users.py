"""Users, their consents and their sessions (`/admin/v1/users…`); their second factors and
the domain's sign-in policy come with them (`tessera.web.admin.factors`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.domain.model import User
from tessera.manage import users as user_rules
from tessera.manage.views import consent_view, session_view, user_view
from tessera.web.admin import factors
from tessera.web.admin.bodies import PasswordSet, UserCreate, UserUpdate
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import (
    ConsentOut,
    ConsentRevoked,
    SessionOut,
    SessionsEnded,
    UserDeleted,
    UserOut,
    problems,
)

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/users",
    tags=["users"],
    summary="List users",
    response_model=list[UserOut],
    responses=problems(),
)
async def list_users(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    return [user_view(u) for u in await run_in_threadpool(svc.ctx.store.users.list)]


@router.post(
    "/users",
    tags=["users"],
    status_code=201,
    summary="Create a user",
    response_model=UserOut,
    responses=problems(400, 409, 413),
)
async def create_user(body: UserCreate, actor: Acting, svc: Svc) -> dict[str, Any]:
    user = await run_in_threadpool(
        user_rules.create_user,
        svc.ctx.store,
        username=body.username,
        password=body.password,
        email=body.email,
        display_name=body.display_name,
        is_admin=body.is_admin,
        now=svc.ctx.clock(),
        actor=actor,
    )
    return user_view(user)


@router.get(
    "/users/{user}",
    tags=["users"],
    summary="Show a user (by id or username)",
    response_model=UserOut,
    responses=problems(404),
)
async def show_user(user: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return user_view(await run_in_threadpool(user_rules.find_user, svc.ctx.store, user))


@router.patch(
    "/users/{user}",
    tags=["users"],
    summary="Disable or enable a user",
    response_model=UserOut,
    responses=problems(400, 404, 409, 413),
)
async def update_user(user: str, body: UserUpdate, actor: Acting, svc: Svc) -> dict[str, Any]:
    store = svc.ctx.store
    found: User = await run_in_threadpool(user_rules.find_user, store, user)
    if body.disabled is True:
        found = await run_in_threadpool(
            user_rules.disable_user, store, found.id, svc.ctx.clock(), actor
        )
    elif body.disabled is False:
        found = await run_in_threadpool(user_rules.enable_user, store, found.id, actor)
    return user_view(found)


@router.delete(
    "/users/{user}",
    tags=["users"],
    summary="Delete a user: every token and session is revoked first",
    response_model=UserDeleted,
    responses=problems(404, 409),
)
async def delete_user(user: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    gone = await run_in_threadpool(
        user_rules.delete_user, svc.ctx.store, user, svc.ctx.clock(), actor
    )
    svc.users.clear()
    return {"deleted": gone.id, "username": gone.username}


@router.post(
    "/users/{user}/password",
    tags=["users"],
    summary="Set a password; the user's sessions and tokens end",
    response_model=UserOut,
    responses=problems(400, 404, 413),
)
async def set_password(user: str, body: PasswordSet, actor: Acting, svc: Svc) -> dict[str, Any]:
    found = await run_in_threadpool(
        user_rules.set_password, svc.ctx.store, user, body.password, svc.ctx.clock(), actor
    )
    return user_view(found)


@router.get(
    "/users/{user}/consents",
    tags=["consents"],
    summary="A user's consents",
    response_model=list[ConsentOut],
    responses=problems(404),
)
async def list_consents(user: str, _: Admin, svc: Svc) -> list[dict[str, Any]]:
    store = svc.ctx.store
    found = await run_in_threadpool(user_rules.find_user, store, user)
    consents = await run_in_threadpool(store.consents.list_for_user, found.id)
    return [consent_view(c) for c in consents]


@router.delete(
    "/users/{user}/consents/{client_id}",
    tags=["consents"],
    summary="Revoke a user's consent to an app",
    response_model=ConsentRevoked,
    responses=problems(404),
)
async def revoke_consent(user: str, client_id: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    await run_in_threadpool(
        user_rules.revoke_consent, svc.ctx.store, user, client_id, svc.ctx.clock(), actor
    )
    return {"revoked": True}


@router.get(
    "/users/{user}/sessions",
    tags=["sessions"],
    summary="A user's open sessions",
    response_model=list[SessionOut],
    responses=problems(404),
)
async def list_sessions(user: str, _: Admin, svc: Svc) -> list[dict[str, Any]]:
    store = svc.ctx.store
    found = await run_in_threadpool(user_rules.find_user, store, user)
    sessions = await run_in_threadpool(store.sessions.list_for_user, found.id, svc.ctx.clock())
    names: dict[str, str] = {}
    if any(s.upstream_provider for s in sessions):
        names = {p.id: p.name for p in await run_in_threadpool(store.upstream_providers.list)}
    return [session_view(s, names) for s in sessions]


@router.delete(
    "/users/{user}/sessions",
    tags=["sessions"],
    summary="End a user's sessions",
    response_model=SessionsEnded,
    responses=problems(404),
)
async def end_sessions(user: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    count = await run_in_threadpool(
        user_rules.end_sessions, svc.ctx.store, user, svc.ctx.clock(), actor
    )
    return {"ended": count}


router.include_router(factors.router)
