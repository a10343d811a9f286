"""Trusted assertion issuers for the JWT bearer grant (`/admin/v1/trusted-issuers…`, RFC 7523
§2.1): create, list, show, edit, delete (`tessera.manage.trusted_issuers`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.concurrency import run_in_threadpool

from tessera.manage import trusted_issuers as rules
from tessera.manage.audit import Actor
from tessera.oauth.client_jwks import allows_insecure_jwks_uri
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import Deleted, problems
from tessera.web.services import Services

__all__ = ["router"]

router = APIRouter(tags=["trusted issuers"])

_APPS = "Client ids of the apps that may present its assertions"
_SCOPES = "The scopes its tokens may carry at most (canonical form returned); empty: the app's"


class TrustedIssuerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: StrictStr = Field(description="The assertions' `iss` (a URL or a string)")
    jwks: dict[str, Any] | None = Field(None, description="The issuer's public JWK Set")
    jwks_uri: StrictStr | None = Field(None, description="Where it publishes its public keys")
    allowed_apps: list[StrictStr] = Field(default_factory=list, description=_APPS)
    allowed_scopes: list[StrictStr] = Field(default_factory=list, description=_SCOPES)
    description: StrictStr = Field("", description="Who the partner is")


class TrustedIssuerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: StrictStr | None = None
    jwks: dict[str, Any] | None = Field(None, description="Replaces the keys")
    jwks_uri: StrictStr | None = Field(None, description="Replaces the keys")
    allowed_apps: list[StrictStr] | None = Field(None, description=_APPS)
    allowed_scopes: list[StrictStr] | None = Field(None, description=_SCOPES)
    description: StrictStr | None = None


class TrustedIssuerOut(BaseModel):
    id: str
    issuer: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    allowed_apps: list[str]
    allowed_scopes: list[str]
    description: str
    created_at: str
    created_by: str | None
    updated_at: str


def _acting(svc: Services, actor: Actor) -> dict[str, Any]:
    """What creating and updating need besides the body (see the CLI's)."""
    issuer = svc.ctx.settings.issuer
    return {
        "now": svc.ctx.clock(),
        "actor": actor,
        "domain_issuer": issuer,
        "allow_insecure_jwks_uri": allows_insecure_jwks_uri(issuer),
    }


@router.get(
    "/trusted-issuers",
    summary="Trusted assertion issuers (JWT bearer grant), by issuer",
    response_model=list[TrustedIssuerOut],
    responses=problems(),
)
async def list_trusted_issuers(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    found = await run_in_threadpool(rules.list_issuers, svc.ctx.store)
    return [rules.issuer_view(i) for i in found]


@router.post(
    "/trusted-issuers",
    status_code=201,
    summary="Trust a partner's JWT assertions for users of the domain (RFC 7523 §2.1)",
    response_model=TrustedIssuerOut,
    responses=problems(400, 409, 413),
)
async def create_trusted_issuer(
    body: TrustedIssuerCreate, actor: Acting, svc: Svc
) -> dict[str, Any]:
    trusted = await run_in_threadpool(
        lambda: rules.create_issuer(
            svc.ctx.store,
            **_acting(svc, actor),
            **body.model_dump(),
        )
    )
    return rules.issuer_view(trusted)


@router.get(
    "/trusted-issuers/{ref:path}",
    summary="Show a trusted issuer (by id or issuer)",
    response_model=TrustedIssuerOut,
    responses=problems(404),
)
async def show_trusted_issuer(ref: str, _: Admin, svc: Svc) -> dict[str, Any]:
    return rules.issuer_view(await run_in_threadpool(rules.find_issuer, svc.ctx.store, ref))


@router.patch(
    "/trusted-issuers/{ref:path}",
    summary="Edit a trusted issuer: what is given replaces what it had",
    response_model=TrustedIssuerOut,
    responses=problems(400, 404, 409, 413),
)
async def update_trusted_issuer(
    ref: str, body: TrustedIssuerUpdate, actor: Acting, svc: Svc
) -> dict[str, Any]:
    trusted = await run_in_threadpool(
        lambda: rules.update_issuer(
            svc.ctx.store,
            ref,
            **_acting(svc, actor),
            **body.model_dump(),
        )
    )
    return rules.issuer_view(trusted)


@router.delete(
    "/trusted-issuers/{ref:path}",
    summary="Stop trusting an issuer (tokens it got stay until they expire or are revoked)",
    response_model=Deleted,
    responses=problems(404),
)
async def delete_trusted_issuer(ref: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    gone = await run_in_threadpool(rules.delete_issuer, svc.ctx.store, ref, actor)
    return {"deleted": gone.id}
