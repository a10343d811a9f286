"""The admin REST API under `/admin/v1/` (FastAPI, with its OpenAPI description).

Every route needs a bearer token for the admin audience with the `urn:tessera:admin` scope,
validated by our own resource-server library (`tessera.resource`); only administrators can
obtain that scope. Every change goes through `tessera.manage`, which audits it with the
administrator as the actor. Every error is an RFC 9457 problem (`tessera.web.problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Security
from fastapi.security import SecurityScopes
from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tessera.domain.admin import ADMIN_SCOPE, admin_audience
from tessera.domain.model import User
from tessera.manage import apps as app_rules
from tessera.manage import keys as key_rules
from tessera.manage import resources as resource_rules
from tessera.manage import users as user_rules
from tessera.manage.audit import Actor
from tessera.manage.revocation import revoke_grant
from tessera.manage.views import (
    app_view,
    consent_view,
    event_view,
    grant_view,
    key_view,
    resource_view,
    session_view,
    user_view,
)
from tessera.resource.fastapi import TokenDependency
from tessera.resource.validator import AccessToken, TokenValidator
from tessera.web.problems import install_problem_handlers, problem_from_http
from tessera.web.proxy import client_ip
from tessera.web.services import Services

__all__ = ["AuthenticateFirst", "build_admin_api"]


class _LocalJwks:
    """The validator's key source, read from our own key ring instead of over HTTP."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def get(self, kid: str) -> ECKey | RSAKey | None:
        for key in self._svc.ctx.keys.public_keys():
            if key.get("kid") == kid:
                return ECKey.import_key(key) if key["kty"] == "EC" else RSAKey.import_key(key)
        return None


class _LocalRevocation:
    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        self._svc.revocations.sync()
        return self._svc.revocations.revoked(claims)


# --- request bodies ------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored


class UserCreate(_Body):
    username: str
    password: str = Field(repr=False)
    email: str | None = None
    display_name: str | None = None
    is_admin: bool = False


class UserUpdate(_Body):
    disabled: bool | None = None


class PasswordSet(_Body):
    password: str = Field(repr=False)


class ResourceCreate(_Body):
    name: str
    audience: str
    scopes: list[str]
    access_token_ttl: int | None = None
    signing_alg: str = "ES256"


class ResourceUpdate(_Body):
    """Fields left out are kept; `access_token_ttl: null` removes the cap."""

    name: str | None = None
    scopes: list[str] | None = None
    access_token_ttl: int | None = None


class AppCreate(_Body):
    name: str
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    public: bool = False
    grant_types: list[str] | None = None
    allowed_scopes: list[str] = []
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    resource_server_for: list[str] = []


class ResourceServerFor(BaseModel):
    resource_server_for: list[str]


class AppUpdate(_Body):
    """Fields left out are kept; a lifetime of `null` goes back to the default."""

    name: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    grant_types: list[str] | None = None
    allowed_scopes: list[str] | None = None
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None


class RotateSecret(_Body):
    grace_seconds: int = 3600


class KeyRotate(_Body):
    alg: str = "all"


async def _admin_token(request: Request, security_scopes: SecurityScopes) -> AccessToken:
    require: TokenDependency = request.app.state.require_token
    return await require(request, security_scopes)


# Module level, so that FastAPI can resolve the annotation of every route.
Admin = Annotated[AccessToken, Security(_admin_token, scopes=[ADMIN_SCOPE])]


class AuthenticateFirst:
    """Check the administrator's token before the body is read (FastAPI reads and parses a
    request's body before it resolves the route's dependencies): an unauthenticated request is
    answered 401 without its body ever being read (RFC 6750 §3.1)."""

    _BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in self._BODYLESS:
            request = Request(scope)
            require: TokenDependency = self.api.state.require_token
            try:
                await require(request, SecurityScopes([ADMIN_SCOPE]))
            except HTTPException as exc:
                await problem_from_http(exc)(scope, receive, send)
                return
        await self.api(scope, receive, send)


def build_admin_api(svc: Services) -> FastAPI:
    ctx = svc.ctx
    issuer = ctx.settings.issuer
    validator = TokenValidator(
        issuer,
        admin_audience(issuer),
        jwks=_LocalJwks(svc),  # type: ignore[arg-type]
        revocation=_LocalRevocation(svc),
    )

    api = FastAPI(
        title="Tessera admin API",
        version="1",
        description=(
            "Administer a Tessera identity domain: users, resources, trusted applications, "
            "consents, sessions, tokens, signing keys and the audit log. Every route needs a "
            f"bearer token for the audience `{admin_audience(issuer)}` with the scope "
            f"`{ADMIN_SCOPE}`, which only administrators can obtain. Every error is an RFC 9457 "
            "problem (`application/problem+json`): `type`, `title`, `status`, `detail`, an "
            "`error` code, and for invalid input an `errors` list."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.require_token = TokenDependency(validator)
    install_problem_handlers(api, on_store_down=svc.health.mark_down)

    def actor(admin: AccessToken, request: Request) -> Actor:
        ip = client_ip(request.scope)
        return Actor(admin.subject, svc.audit.record, ip if isinstance(ip, str) else None)

    def now() -> datetime:
        return ctx.clock()

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    # --- users ----------------------------------------------------------------------------------

    @api.get("/users", tags=["users"], summary="List users")
    async def list_users(_: Admin) -> list[dict[str, Any]]:
        return [user_view(u) for u in await call(ctx.store.users.list)]

    @api.post("/users", tags=["users"], status_code=201, summary="Create a user")
    async def create_user(body: UserCreate, admin: Admin, request: Request) -> dict[str, Any]:
        user = await call(
            user_rules.create_user,
            ctx.store,
            username=body.username,
            password=body.password,
            email=body.email,
            display_name=body.display_name,
            is_admin=body.is_admin,
            now=now(),
            actor=actor(admin, request),
        )
        return user_view(user)

    @api.get("/users/{user}", tags=["users"], summary="Show a user (by id or username)")
    async def show_user(user: str, _: Admin) -> dict[str, Any]:
        return user_view(await call(user_rules.find_user, ctx.store, user))

    @api.patch("/users/{user}", tags=["users"], summary="Disable or enable a user")
    async def update_user(
        user: str, body: UserUpdate, admin: Admin, request: Request
    ) -> dict[str, Any]:
        found: User = await call(user_rules.find_user, ctx.store, user)
        if body.disabled is True:
            found = await call(
                user_rules.disable_user, ctx.store, found.id, now(), actor(admin, request)
            )
        elif body.disabled is False:
            found = await call(user_rules.enable_user, ctx.store, found.id, actor(admin, request))
        return user_view(found)

    @api.delete(
        "/users/{user}",
        tags=["users"],
        summary="Delete a user: every token and session is revoked first",
    )
    async def delete_user(user: str, admin: Admin, request: Request) -> dict[str, Any]:
        gone = await call(user_rules.delete_user, ctx.store, user, now(), actor(admin, request))
        svc.users.clear()
        return {"deleted": gone.id, "username": gone.username}

    @api.post(
        "/users/{user}/password",
        tags=["users"],
        summary="Set a password; the user's sessions and tokens end",
    )
    async def set_password(
        user: str, body: PasswordSet, admin: Admin, request: Request
    ) -> dict[str, Any]:
        found = await call(
            user_rules.set_password, ctx.store, user, body.password, now(), actor(admin, request)
        )
        return user_view(found)

    @api.get("/users/{user}/consents", tags=["consents"], summary="A user's consents")
    async def list_consents(user: str, _: Admin) -> list[dict[str, Any]]:
        found = await call(user_rules.find_user, ctx.store, user)
        return [consent_view(c) for c in await call(ctx.store.consents.list_for_user, found.id)]

    @api.delete(
        "/users/{user}/consents/{client_id}",
        tags=["consents"],
        summary="Revoke a user's consent to an app",
    )
    async def revoke_consent(
        user: str, client_id: str, admin: Admin, request: Request
    ) -> dict[str, Any]:
        await call(
            user_rules.revoke_consent, ctx.store, user, client_id, now(), actor(admin, request)
        )
        return {"revoked": True}

    @api.get("/users/{user}/sessions", tags=["sessions"], summary="A user's open sessions")
    async def list_sessions(user: str, _: Admin) -> list[dict[str, Any]]:
        found = await call(user_rules.find_user, ctx.store, user)
        return [
            session_view(s) for s in await call(ctx.store.sessions.list_for_user, found.id, now())
        ]

    @api.delete("/users/{user}/sessions", tags=["sessions"], summary="End a user's sessions")
    async def end_sessions(user: str, admin: Admin, request: Request) -> dict[str, Any]:
        count = await call(user_rules.end_sessions, ctx.store, user, now(), actor(admin, request))
        return {"ended": count}

    @api.get("/users/{user}/grants", tags=["tokens"], summary="A user's active grants")
    async def user_grants(user: str, _: Admin) -> list[dict[str, Any]]:
        found = await call(user_rules.find_user, ctx.store, user)
        return [
            grant_view(g) for g in await call(ctx.store.grants.list_active, now(), user_id=found.id)
        ]

    @api.post(
        "/users/{user}/revoke-tokens",
        tags=["tokens"],
        summary="Revoke every token of a user, everywhere",
    )
    async def revoke_user_tokens(user: str, admin: Admin, request: Request) -> dict[str, Any]:
        found = await call(user_rules.find_user, ctx.store, user)
        summary = await call(
            user_rules.revoke_user_tokens, ctx.store, found.id, now(), actor(admin, request)
        )
        return {
            "user_id": found.id,
            "sessions": summary.sessions,
            "grants": summary.grants,
            "event_seq": summary.event_seq,
        }

    # --- resources ------------------------------------------------------------------------------

    @api.get("/resources", tags=["resources"], summary="List resources")
    async def list_resources(_: Admin) -> list[dict[str, Any]]:
        return [resource_view(r) for r in await call(ctx.store.resources.list)]

    @api.post("/resources", tags=["resources"], status_code=201, summary="Register a resource")
    async def create_resource(
        body: ResourceCreate, admin: Admin, request: Request
    ) -> dict[str, Any]:
        resource = await call(
            resource_rules.create_resource,
            ctx.store,
            name=body.name,
            audience=body.audience,
            scopes=body.scopes,
            access_ttl=body.access_token_ttl,
            signing_alg=body.signing_alg,
            now=now(),
            actor=actor(admin, request),
        )
        svc.resources.clear()
        return resource_view(resource)

    @api.get("/resources/{resource}", tags=["resources"], summary="Show a resource")
    async def show_resource(resource: str, _: Admin) -> dict[str, Any]:
        return resource_view(await call(resource_rules.find_resource, ctx.store, resource))

    @api.patch(
        "/resources/{resource}",
        tags=["resources"],
        summary="Edit a resource's name, scopes or access-token lifetime cap",
    )
    async def update_resource(
        resource: str, body: ResourceUpdate, admin: Admin, request: Request
    ) -> dict[str, Any]:
        ttl_given = "access_token_ttl" in body.model_fields_set
        updated = await call(
            resource_rules.update_resource,
            ctx.store,
            resource,
            actor=actor(admin, request),
            name=body.name,
            scopes=body.scopes,
            access_ttl=body.access_token_ttl,
            clear_access_ttl=ttl_given and body.access_token_ttl is None,
        )
        svc.resources.clear()
        return resource_view(updated)

    @api.delete("/resources/{resource}", tags=["resources"], summary="Delete a resource")
    async def delete_resource(resource: str, admin: Admin, request: Request) -> dict[str, Any]:
        gone = await call(
            resource_rules.delete_resource, ctx.store, resource, actor(admin, request)
        )
        svc.resources.clear()
        return {"deleted": gone.id}

    # --- apps -----------------------------------------------------------------------------------

    @api.get("/apps", tags=["apps"], summary="List trusted applications")
    async def list_apps(_: Admin) -> list[dict[str, Any]]:
        return [app_view(c) for c in await call(ctx.store.clients.list)]

    @api.post(
        "/apps",
        tags=["apps"],
        status_code=201,
        summary="Register a trusted application (the secret is shown once)",
    )
    async def create_app(body: AppCreate, admin: Admin, request: Request) -> dict[str, Any]:
        client, secret = await call(
            app_rules.create_app,
            ctx.store,
            ctx.secret_pepper,
            name=body.name,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            public=body.public,
            grant_types=body.grant_types,
            allowed_scopes=body.allowed_scopes,
            access_ttl=body.access_token_ttl,
            refresh_ttl=body.refresh_token_ttl,
            resource_server_for=body.resource_server_for,
            now=now(),
            actor=actor(admin, request),
        )
        return app_view(client, secret)

    @api.get("/apps/{app}", tags=["apps"], summary="Show a trusted application")
    async def show_app(app: str, _: Admin) -> dict[str, Any]:
        return app_view(await call(app_rules.find_app, ctx.store, app))

    @api.patch(
        "/apps/{app}",
        tags=["apps"],
        summary="Edit an app (same rules as registration); its version is bumped",
    )
    async def update_app(
        app: str, body: AppUpdate, admin: Admin, request: Request
    ) -> dict[str, Any]:
        given = body.model_fields_set
        ttls: dict[str, Any] = {}
        if "access_token_ttl" in given:
            ttls["access_ttl"] = body.access_token_ttl
        if "refresh_token_ttl" in given:
            ttls["refresh_ttl"] = body.refresh_token_ttl
        updated = await call(
            app_rules.update_app,
            ctx.store,
            app,
            actor=actor(admin, request),
            name=body.name,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            grant_types=body.grant_types,
            allowed_scopes=body.allowed_scopes,
            **ttls,
        )
        svc.clients.clear()
        return app_view(updated)

    @api.delete("/apps/{app}", tags=["apps"], summary="Delete an app and revoke its tokens")
    async def delete_app(app: str, admin: Admin, request: Request) -> dict[str, Any]:
        gone = await call(app_rules.delete_app, ctx.store, app, now(), actor(admin, request))
        svc.clients.clear()
        return {"deleted": gone.client_id}

    @api.put(
        "/apps/{app}/resource-server-for",
        tags=["apps"],
        summary="Mark the app as the resource server of these resources (empty: none)",
    )
    async def set_resource_server_for(
        app: str, body: ResourceServerFor, admin: Admin, request: Request
    ) -> dict[str, Any]:
        client = await call(
            app_rules.set_resource_server_for,
            ctx.store,
            app,
            body.resource_server_for,
            actor(admin, request),
        )
        svc.clients.clear()
        return app_view(client)

    @api.post(
        "/apps/{app}/rotate-secret",
        tags=["apps"],
        summary="Issue a new secret; the old one works for the grace period",
    )
    async def rotate_secret(
        app: str, admin: Admin, request: Request, body: RotateSecret | None = None
    ) -> dict[str, Any]:
        grace = body.grace_seconds if body else 3600
        client, secret = await call(
            app_rules.rotate_secret,
            ctx.store,
            ctx.secret_pepper,
            app,
            grace,
            now(),
            actor(admin, request),
        )
        svc.clients.clear()
        return app_view(client, secret)

    @api.get("/apps/{app}/grants", tags=["tokens"], summary="An app's active grants")
    async def app_grants(app: str, _: Admin) -> list[dict[str, Any]]:
        found = await call(app_rules.find_app, ctx.store, app)
        return [
            grant_view(g)
            for g in await call(ctx.store.grants.list_active, now(), client_id=found.client_id)
        ]

    @api.post(
        "/apps/{app}/revoke-tokens", tags=["tokens"], summary="Revoke every token issued to an app"
    )
    async def revoke_app_tokens(app: str, admin: Admin, request: Request) -> dict[str, Any]:
        found = await call(app_rules.find_app, ctx.store, app)
        summary = await call(
            app_rules.revoke_app_tokens, ctx.store, found.client_id, now(), actor(admin, request)
        )
        return {"client_id": found.client_id, "grants": summary.grants}

    @api.delete(
        "/grants/{grant_id}",
        tags=["tokens"],
        summary="Revoke one grant (a refresh family and its access tokens)",
    )
    async def revoke_one_grant(grant_id: str, admin: Admin, request: Request) -> dict[str, Any]:
        await call(revoke_grant, ctx.store, grant_id, now(), actor(admin, request))
        return {"revoked": grant_id}

    # --- keys and audit -------------------------------------------------------------------------

    @api.get("/keys", tags=["keys"], summary="Signing keys")
    async def list_keys(_: Admin) -> list[dict[str, Any]]:
        return [key_view(k) for k in await call(ctx.store.keys.list)]

    @api.post("/keys/rotate", tags=["keys"], summary="Rotate signing keys")
    async def rotate_keys(
        admin: Admin, request: Request, body: KeyRotate | None = None
    ) -> list[dict[str, Any]]:
        alg = body.alg if body else "all"
        rotated = await call(key_rules.rotate_keys, ctx.keys, alg, actor(admin, request))
        return [{"alg": a.alg, "active": a.kid, "next": n.kid} for a, n in rotated]

    @api.get("/audit", tags=["audit"], summary="Audit events, newest first")
    async def audit_events(
        _: Admin,
        type: str | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        svc.audit.flush()
        since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
        until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
        events = await call(
            ctx.store.audit.query,
            type=type,
            user_id=user_id,
            client_id=client_id,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
        next_before = events[-1].id if len(events) == limit else None
        return {"events": [event_view(e) for e in events], "next_before_id": next_before}

    return api
