"""Trusted applications (`/admin/v1/apps…`); every change bumps the app's cached version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.context import Context
from tessera.domain.model import Client
from tessera.manage import apps as app_rules
from tessera.manage.app_metadata import DETAIL_FIELDS, details_of
from tessera.manage.audit import Actor
from tessera.manage.views import app_view
from tessera.oauth.client_jwks import allows_insecure_jwks_uri
from tessera.web.admin.bodies import (
    AppCreate,
    AppMetadataIn,
    AppUpdate,
    ResourceServerFor,
    RotateSecret,
    TokenExchange,
)
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import AppOut, AppWithSecretOut, Deleted, problems

__all__ = ["router"]

router = APIRouter(tags=["apps"])

# RFC 7591 §2 metadata passed to the rules as they are (the details are grouped).
_METADATA = (
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "id_token_signed_response_alg",
    "profile",
)


def _metadata(body: AppMetadataIn, *, nulls: bool) -> dict[str, Any]:
    """The metadata fields given; `nulls`: a `null` given is passed (back to the default)."""
    given = body.model_fields_set
    return {
        name: getattr(body, name)
        for name in _METADATA
        if name in given and (nulls or getattr(body, name) is not None)
    }


def _details(body: AppMetadataIn, current: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The informational metadata after the fields given (`null` removes one)."""
    given = body.model_fields_set & set(DETAIL_FIELDS)
    if current is None and not given:
        return None
    details = dict(current or {})
    details.update({name: getattr(body, name) for name in given})
    return {name: value for name, value in details.items() if value is not None}


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
        details=_details(body),
        allow_insecure_jwks_uri=allows_insecure_jwks_uri(svc.ctx.settings.issuer),
        **_metadata(body, nulls=False),
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
    updated = await run_in_threadpool(_update, svc.ctx, app, body, actor)
    svc.clients.clear()
    return app_view(updated)


def _update(ctx: Context, app: str, body: AppUpdate, actor: Actor) -> Client:
    given = body.model_fields_set
    # Fields whose `null` means "back to the default": passed only when given.
    nullable: dict[str, Any] = _metadata(body, nulls=True)
    if "access_token_ttl" in given:
        nullable["access_ttl"] = body.access_token_ttl
    if "refresh_token_ttl" in given:
        nullable["refresh_ttl"] = body.refresh_token_ttl
    if "mfa_policy" in given:  # null: back to the domain's
        nullable["mfa_policy"] = body.mfa_policy
    if given & set(DETAIL_FIELDS):  # merged into the app's details
        nullable["details"] = _details(body, details_of(app_rules.find_app(ctx.store, app)))
    return app_rules.update_app(
        ctx.store,
        app,
        actor=actor,
        name=body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        grant_types=body.grant_types,
        allowed_scopes=body.allowed_scopes,
        allow_insecure_jwks_uri=allows_insecure_jwks_uri(ctx.settings.issuer),
        **nullable,
    )


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


@router.put(
    "/apps/{app}/token-exchange",
    summary="Set the resources the app may exchange users' tokens for (RFC 8693; empty: none)",
    response_model=AppOut,
    responses=problems(400, 404, 409, 413),
)
async def set_token_exchange(
    app: str, body: TokenExchange, actor: Acting, svc: Svc
) -> dict[str, Any]:
    client = await run_in_threadpool(
        lambda: app_rules.set_token_exchange(
            svc.ctx.store,
            app,
            actor,
            audiences=body.audiences,
            impersonation=body.impersonation,
        )
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
        token_endpoint_auth_method=body.token_endpoint_auth_method if body else None,
    )
    svc.clients.clear()
    return app_view(client, secret)
