"""The audit log (`/admin/v1/audit`), newest first, paged by `before_id`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from tessera.manage.views import event_view
from tessera.web.admin.deps import Admin, Svc
from tessera.web.admin.schemas import AuditPage, problems

__all__ = ["router"]

router = APIRouter(tags=["audit"])


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


@router.get(
    "/audit",
    summary="Audit events, newest first",
    response_model=AuditPage,
    responses=problems(400),
)
async def audit_events(
    _: Admin,
    svc: Svc,
    type: str | None = None,
    user_id: str | None = None,
    client_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    svc.audit.flush()  # the events still queued in this process are part of the answer
    events = await run_in_threadpool(
        svc.ctx.store.audit.query,
        type=type,
        user_id=user_id,
        client_id=client_id,
        since=_aware(since),
        until=_aware(until),
        before_id=before_id,
        limit=limit,
    )
    next_before = events[-1].id if len(events) == limit else None
    return {"events": [event_view(e) for e in events], "next_before_id": next_before}
