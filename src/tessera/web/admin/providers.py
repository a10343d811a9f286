"""Upstream OpenID Connect providers (`/admin/v1/providers…`, docs/federation.md): list, add,
show, edit (also enable and disable), remove, and test: the discovery check now and a "try
sign-in" URL (`tessera.manage.providers`). Secrets are written, never shown."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.concurrency import run_in_threadpool

from tessera.domain.model import UpstreamProvider
from tessera.manage import providers as rules
from tessera.manage.audit import Actor
from tessera.manage.providers import ProviderSetup
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import problems
from tessera.web.services import Services

__all__ = ["router"]

router = APIRouter(tags=["sign-in providers"])

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
_NAME = "A slug for its URLs (`a-z`, `0-9`, `-`), unique in the domain"
_ISSUER = "Its issuer URL, exactly as its discovery document names it (https)"
_SECRET = "The client secret it issued us (client_secret_basic, client_secret_post)"
_SCOPES = "The scopes to ask for; `openid` is always first"
_GROUPS = "The upstream claim listing the user's groups (joined here by name); none: no mapping"
_SYNC = (
    "The groups claim is the whole truth: a sign-in ends the memberships an earlier sign-in "
    "through this provider made that the claim no longer names (an administrator's stay)"
)
_JIT = "Create an account at a first sign-in"
_LINK = "Link a first sign-in to the account with the same verified e-mail (never an admin's)"
_DOMAINS = "Users of these e-mail domains sign in through it (unique across providers)"
_REF = "The provider's id or name"


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(description=_NAME)
    issuer: StrictStr = Field(description=_ISSUER)
    client_id: StrictStr = Field(description="The client id it issued us")
    auth_method: AuthMethod = Field("client_secret_basic", description="Our client auth")
    client_secret: StrictStr | None = Field(None, description=_SECRET)
    display_name: StrictStr | None = Field(None, description="The button's name; default: name")
    scopes: list[StrictStr] = Field(["openid", "email", "profile"], description=_SCOPES)
    username_claim: StrictStr = "preferred_username"
    email_claim: StrictStr = "email"
    name_claim: StrictStr = "name"
    groups_claim: StrictStr | None = Field(None, description=_GROUPS)
    sync_groups: StrictBool = Field(False, description=_SYNC)
    jit: StrictBool = Field(True, description=_JIT)
    link_existing: StrictBool = Field(False, description=_LINK)
    email_domains: list[StrictStr] = Field(default_factory=list, description=_DOMAINS)
    enabled: StrictBool = True
    description: StrictStr = ""
    check: StrictBool = Field(True, description="Fetch its discovery document and keys first")


class ProviderUpdate(BaseModel):
    """What is given replaces what the provider had; what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(None, description=f"{_NAME}; the redirect URI changes")
    issuer: StrictStr | None = Field(None, description=f"{_ISSUER}; checked as at creation")
    client_id: StrictStr | None = None
    auth_method: AuthMethod | None = None
    client_secret: StrictStr | None = Field(None, description=f"A new one: {_SECRET}")
    rotate_key: StrictBool = Field(False, description="A new key of ours (private_key_jwt)")
    display_name: StrictStr | None = None
    scopes: list[StrictStr] | None = Field(None, description=_SCOPES)
    username_claim: StrictStr | None = None
    email_claim: StrictStr | None = None
    name_claim: StrictStr | None = None
    groups_claim: StrictStr | None = Field(None, description=f'{_GROUPS} (`null` or `""`)')
    sync_groups: StrictBool | None = Field(None, description=_SYNC)
    jit: StrictBool | None = Field(None, description=_JIT)
    link_existing: StrictBool | None = Field(None, description=_LINK)
    email_domains: list[StrictStr] | None = Field(None, description=_DOMAINS)
    enabled: StrictBool | None = Field(None, description="Offer it on the sign-in page")
    description: StrictStr | None = None
    check: StrictBool = Field(True, description="Check a new issuer's discovery first")


class ProviderOut(BaseModel):
    id: str
    name: str
    display_name: str
    issuer: str
    client_id: str
    auth_method: str
    has_client_secret: bool = Field(description="A secret is stored (it is never shown)")
    key_id: str | None = Field(description="The `kid` of our key (private_key_jwt)")
    jwks: dict[str, Any] = Field(description="Our public JWK Set to register upstream")
    jwks_uri: str | None = Field(description="Where the provider can fetch `jwks`")
    redirect_uri: str = Field(description="The redirect URI to register upstream")
    scopes: list[str]
    username_claim: str
    email_claim: str
    name_claim: str
    groups_claim: str | None
    sync_groups: bool
    jit: bool
    link_existing: bool
    email_domains: list[str]
    enabled: bool
    description: str
    linked_accounts: int = Field(description="Accounts linked to an upstream account here")
    created_at: str
    created_by: str | None
    updated_at: str
    version: int


class ProviderCheckOut(BaseModel):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    iss_parameter_supported: bool = Field(description="RFC 9207 §3")
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    auth_method_supported: bool = Field(description="It advertises our auth method")
    code_challenge_methods_supported: list[str]
    key_ids: list[str | None] = Field(description="The `kid`s of its signing keys")
    warnings: list[str] = Field(description="What may not work as configured")


class ProviderTestOut(BaseModel):
    id: str
    name: str
    enabled: bool
    check: ProviderCheckOut
    try_sign_in_url: str = Field(
        description="Opens a test sign-in through it (10 minutes; shows the claims it sends, "
        "writes nothing)"
    )


class ProviderDeleted(BaseModel):
    deleted: str = Field(description="The provider's id")
    name: str
    links_removed: int = Field(description="Links of accounts to it, removed (users stay)")


def _setup(svc: Services) -> ProviderSetup:
    return rules.provider_setup(svc.ctx.settings.issuer, svc.ctx.subkey)


def _view(svc: Services, provider: UpstreamProvider) -> dict[str, Any]:
    return rules.provider_view(svc.ctx.store, _setup(svc), provider)


@router.get(
    "/providers",
    summary="Upstream OpenID providers of the domain, by name",
    response_model=list[ProviderOut],
    responses=problems(),
)
async def list_providers(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        store, setup = svc.ctx.store, _setup(svc)
        return [rules.provider_view(store, setup, p) for p in rules.list_providers(store)]

    return await run_in_threadpool(work)


@router.post(
    "/providers",
    status_code=201,
    summary="Add an upstream OpenID provider (its discovery document is checked first)",
    response_model=ProviderOut,
    responses=problems(400, 409, 413),
)
async def create_provider(body: ProviderCreate, actor: Acting, svc: Svc) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        created = rules.create_provider(
            svc.ctx.store,
            _setup(svc),
            now=svc.ctx.clock(),
            actor=actor,
            upstream=svc.node.upstream,
            **body.model_dump(),
        )
        svc.providers.clear()  # the sign-in page's buttons: at once here, within 2 s elsewhere
        return _view(svc, created)

    return await run_in_threadpool(work)


@router.get(
    "/providers/{provider}",
    summary="Show an upstream provider (by id or name)",
    response_model=ProviderOut,
    responses=problems(404),
)
async def show_provider(provider: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return await run_in_threadpool(lambda: _view(svc, rules.find_provider(svc.ctx.store, provider)))


def _update(svc: Services, ref: str, body: ProviderUpdate, actor: Actor) -> dict[str, Any]:
    """The fields given, then `enabled` (audited as enabling or disabling)."""
    store, now = svc.ctx.store, svc.ctx.clock()
    values = body.model_dump(exclude_unset=True, exclude={"enabled"})
    if "groups_claim" in values and values["groups_claim"] is None:
        values["groups_claim"] = ""  # null: no mapping
    found = rules.find_provider(store, ref)
    if values:
        found = rules.update_provider(
            store, _setup(svc), found.id, now=now, actor=actor, upstream=svc.node.upstream, **values
        )
    if body.enabled is not None and body.enabled != found.enabled:
        switch = rules.enable_provider if body.enabled else rules.disable_provider
        found = switch(store, found.id, now=now, actor=actor)
    svc.providers.clear()
    return _view(svc, found)


@router.patch(
    "/providers/{provider}",
    summary="Edit an upstream provider: what is given replaces what it had",
    response_model=ProviderOut,
    responses=problems(400, 404, 409, 413),
)
async def update_provider(
    provider: str, body: ProviderUpdate, actor: Acting, svc: Svc
) -> dict[str, Any]:
    return await run_in_threadpool(_update, svc, provider, body, actor)


@router.delete(
    "/providers/{provider}",
    summary="Remove an upstream provider and the links of accounts to it (the users stay)",
    response_model=ProviderDeleted,
    responses=problems(404),
)
async def delete_provider(provider: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    gone, links = await run_in_threadpool(rules.delete_provider, svc.ctx.store, provider, actor)
    svc.providers.clear()
    return {"deleted": gone.id, "name": gone.name, "links_removed": links}


@router.post(
    "/providers/{provider}/test",
    summary="Check an upstream provider's discovery document and keys now; a try-sign-in URL",
    response_model=ProviderTestOut,
    responses=problems(400, 404),
)
async def test_provider(provider: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        found = rules.find_provider(svc.ctx.store, provider)
        return rules.provider_test(
            svc.node.upstream, _setup(svc), found, actor.name, svc.ctx.clock()
        )

    return await run_in_threadpool(work)
