"""Trusted applications (`/admin/v1/apps…`); every change bumps the app's cached version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.manage import apps as app_rules
from tessera.manage.views import app_view
from tessera.web.admin.bodies import AppCreate, AppUpdate, ResourceServerFor, RotateSecret
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import AppOut, AppWithSecretOut, Deleted, problems

__all__ = ["router"]

router = APIRouter(tags=["apps"])


@router.get(
    "/apps", summary="List trusted applications", response_model=list[AppOut], responses=problems()
)
async def list_apps(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    return [app_view(c) for c in await run_in_threadpool(svc.ctx.store.clients.list)]


@router.post(
    "/apps",
    status_code=201,
    summary="Register a trusted application (the secret is shown once)",
    response_model=AppWithSecretOut,
    response_model_exclude_unset=True,
    responses=problems(400, 409, 413),
)
async def create_app(body: AppCreate, actor: Acting, svc: Svc) -> dict[str, Any]:
    client, secret = await run_in_threadpool(
        app_rules.create_app,
        svc.ctx.store,
        svc.ctx.secret_pepper,
        name=body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        public=body.public,
        grant_types=body.grant_types,
        allowed_scopes=body.allowed_scopes,
        access_ttl=body.access_token_ttl,
        refresh_ttl=body.refresh_token_ttl,
        resource_server_for=body.resource_server_for,
        mfa_policy=body.mfa_policy,
        now=svc.ctx.clock(),
        actor=actor,
    )
    return app_view(client, secret)


@router.get(
    "/apps/{app}",
    summary="Show a trusted application",
    response_model=AppOut,
    responses=problems(404),
)
async def show_app(app: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return app_view(await run_in_threadpool(app_rules.find_app, svc.ctx.store, app))


@router.patch(
    "/apps/{app}",
    summary="Edit an app (same rules as registration); its version is bumped",
    response_model=AppOut,
    responses=problems(400, 404, 409, 413),
)
async def update_app(app: str, body: AppUpdate, actor: Acting, svc: Svc) -> dict[str, Any]:
    given = body.model_fields_set
    # Fields whose `null` means "back to the default": passed only when given.
    nullable: dict[str, Any] = {}
    if "access_token_ttl" in given:
        nullable["access_ttl"] = body.access_token_ttl
    if "refresh_token_ttl" in given:
        nullable["refresh_ttl"] = body.refresh_token_ttl
    if "mfa_policy" in given:  # null: back to the domain's
        nullable["mfa_policy"] = body.mfa_policy
    updated = await run_in_threadpool(
        app_rules.update_app,
        svc.ctx.store,
        app,
        actor=actor,
        name=body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        grant_types=body.grant_types,
        allowed_scopes=body.allowed_scopes,
        **nullable,
    )
    svc.clients.clear()
    return app_view(updated)


@router.delete(
    "/apps/{app}",
    summary="Delete an app and revoke its tokens",
    response_model=Deleted,
    responses=problems(404, 409),
)
async def delete_app(app: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    gone = await run_in_threadpool(app_rules.delete_app, svc.ctx.store, app, svc.ctx.clock(), actor)
    svc.clients.clear()
    return {"deleted": gone.client_id}


@router.put(
    "/apps/{app}/resource-server-for",
    summary="Mark the app as the resource server of these resources (empty: none)",
    response_model=AppOut,
    responses=problems(400, 404, 409, 413),
)
async def set_resource_server_for(
    app: str, body: ResourceServerFor, actor: Acting, svc: Svc
) -> dict[str, Any]:
    client = await run_in_threadpool(
        app_rules.set_resource_server_for, svc.ctx.store, app, body.resource_server_for, actor
    )
    svc.clients.clear()
    return app_view(client)


@router.post(
    "/apps/{app}/rotate-secret",
    summary="Issue a new secret; the old one works for the grace period",
    response_model=AppWithSecretOut,
    response_model_exclude_unset=True,
    responses=problems(400, 404, 409, 413),
)
async def rotate_secret(
    app: str, actor: Acting, svc: Svc, body: RotateSecret | None = None
) -> dict[str, Any]:
    grace = body.grace_seconds if body else 3600
    client, secret = await run_in_threadpool(
        app_rules.rotate_secret,
        svc.ctx.store,
        svc.ctx.secret_pepper,
        app,
        grace,
        svc.ctx.clock(),
        actor,
    )
    svc.clients.clear()
    return app_view(client, secret)
