"""Signing keys (`/admin/v1/keys…`): the next key is published before it signs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tessera.manage import keys as key_rules
from tessera.manage.views import key_view
from tessera.web.admin.bodies import KeyRotate
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import KeyOut, KeyRotated, problems

__all__ = ["router"]

router = APIRouter(tags=["keys"])


@router.get("/keys", summary="Signing keys", response_model=list[KeyOut], responses=problems())
async def list_keys(_: Admin, svc: Svc) -> list[dict[str, Any]]:
    return [key_view(k) for k in await run_in_threadpool(svc.ctx.store.keys.list)]


@router.post(
    "/keys/rotate",
    summary="Rotate signing keys",
    response_model=list[KeyRotated],
    responses=problems(400, 413),
)
async def rotate_keys(
    actor: Acting, svc: Svc, body: KeyRotate | None = None
) -> list[dict[str, Any]]:
    alg = body.alg if body else "all"
    rotated = await run_in_threadpool(key_rules.rotate_keys, svc.ctx.keys, alg, actor)
    return [{"alg": a.alg, "active": a.kid, "next": n.kid} for a, n in rotated]
