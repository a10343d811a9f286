"""Initial access tokens for dynamic client registration (`/admin/v1/registration-tokens…`,
RFC 7591 §3): mint (the token is shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from tessera.manage import registration_tokens as rules
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import problems

__all__ = ["router"]

router = APIRouter(tags=["registration tokens"])


class RegistrationTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: StrictInt = Field(
        rules.DEFAULT_EXPIRES_IN,
        description="Lifetime in seconds, 1 to 31536000; 0: until revoked",
    )
    max_uses: StrictInt | None = Field(
        None, description="How many apps it may register; `null`: without limit"
    )
    description: StrictStr = Field("", description="What the token is for")
    allowed_scopes: list[StrictStr] = Field(
        default_factory=list,
        description="The scopes the apps it registers may have at most (canonical form "
        "returned); empty: any scope but the admin API's",
    )


class RegistrationTokenOut(BaseModel):
    id: str
    description: str
    created_at: str
    created_by: str | None
    expires_at: str | None
    max_uses: int | None
    uses: int
    revoked_at: str | None
    allowed_scopes: list[str] = Field(description="Empty: any scope but the admin API's")
    state: str = Field(description="`active`, `expired`, `used up` or `revoked`")


class RegistrationTokenCreated(RegistrationTokenOut):
    token: str = Field(
        description="The initial access token (`Authorization: Bearer` at "
        "`/oauth2/v1/register`); shown once"
    )


@router.get(
    "/registration-tokens",
    summary="Initial access tokens (never their values), newest first",
    response_model=list[RegistrationTokenOut],
    responses=problems(),
)
async def list_registration_tokens(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    tokens = await run_in_threadpool(rules.list_tokens, svc.ctx.store)
    now = svc.ctx.clock()
    return [rules.token_view(t, now) for t in tokens]


@router.post(
    "/registration-tokens",
    status_code=201,
    summary="Mint an initial access token for dynamic client registration (shown once)",
    response_model=RegistrationTokenCreated,
    responses=problems(400, 413),
)
async def create_registration_token(
    actor: Acting, svc: Svc, body: RegistrationTokenCreate | None = None
) -> dict[str, Any]:
    body = body or RegistrationTokenCreate()
    now = svc.ctx.clock()
    token, value = await run_in_threadpool(
        lambda: rules.mint_token(
            svc.ctx.store,
            svc.ctx.secret_pepper,
            now=now,
            actor=actor,
            expires_in=body.expires_in,
            max_uses=body.max_uses,
            description=body.description,
            allowed_scopes=body.allowed_scopes,
            issuer=svc.ctx.settings.issuer,
        )
    )
    return rules.token_view(token, now, value)


@router.post(
    "/registration-tokens/{token_id}/revoke",
    summary="Revoke an initial access token (the apps it registered stay)",
    response_model=RegistrationTokenOut,
    responses=problems(404),
)
async def revoke_registration_token(token_id: str, actor: Acting, svc: Svc) -> dict[str, Any]:
    now = svc.ctx.clock()
    token = await run_in_threadpool(rules.revoke_token, svc.ctx.store, token_id, now, actor)
    return rules.token_view(token, now)
