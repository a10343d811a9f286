"""Integrations and their runs in the database (SQLAlchemy 2.0 Core).

Each state change is one conditional `UPDATE`/`DELETE` (for example "replace unless
activated"), so two administrators racing cannot edit an integration while it runs; the row
count says whether it applied, and only then do we read to explain a refusal. Connection
secrets are sealed in the stored document (`tessera.integration.sealed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, RowMapping, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from tessera.integration.document import IntegrationDocument
from tessera.integration.schema import integrations, runs
from tessera.integration.sealed import SealError, open_document, seal_document
from tessera.shared.sealing import Sealer

__all__ = [
    "Caller",
    "IntegrationConflict",
    "IntegrationNotFound",
    "IntegrationStore",
    "RunRecord",
    "SealError",
    "State",
    "StoredIntegration",
]


class State(StrEnum):
    CONFIGURED = "configured"
    ACTIVATED = "activated"
    DEACTIVATED = "deactivated"


class IntegrationNotFound(LookupError):
    """No integration with this code and version."""


class IntegrationConflict(ValueError):
    """The request conflicts with the integration's state (it exists, it is activated, …)."""


@dataclass(frozen=True, slots=True)
class StoredIntegration:
    document: IntegrationDocument
    state: State
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """Who ran an integration, from the access token's claims."""

    sub: str
    sub_type: str
    client_id: str
    user_displayname: str | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    code: str
    version: str
    started_at: datetime
    duration_ms: float
    status: str  # succeeded | failed
    http_status: int
    caller: Caller
    error: str | None = None
    id: int | None = None
    # The apps that called connections on the caller's behalf (token exchange, RFC 8693 `act`).
    acting_clients: tuple[str, ...] = ()


class IntegrationStore:
    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self._sealer = sealer

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # --- integrations ---------------------------------------------------------------------------

    def list_integrations(
        self, state: State | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[StoredIntegration], int]:
        where = [] if state is None else [integrations.c.state == state.value]
        order = (integrations.c.code, integrations.c.version)
        rows, total = self._page(integrations, where, order, limit, offset)
        return [self._integration(row) for row in rows], total

    def get(self, code: str, version: str) -> StoredIntegration | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(integrations).where(*_key(code, version))).mappings().first()
        return None if row is None else self._integration(row)

    def create(self, document: IntegrationDocument, now: datetime) -> StoredIntegration:
        values = {
            "code": document.code,
            "version": document.version,
            "document": seal_document(document.stored(), self._sealer),
            "state": State.CONFIGURED.value,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(integrations).values(**values))
        except IntegrityError:
            raise IntegrationConflict(
                f"{document.ident} exists: replace it with PUT, or create a new version"
            ) from None
        return StoredIntegration(document, State.CONFIGURED, now, now)

    def replace(self, document: IntegrationDocument, now: datetime) -> StoredIntegration:
        """Replace the document unless the integration is activated."""
        statement = (
            update(integrations)
            .where(*_key(document.code, document.version), _not_activated())
            .values(document=seal_document(document.stored(), self._sealer), updated_at=now)
        )
        self._apply(statement, document.code, document.version, "replace")
        return self._must_get(document.code, document.version)

    def delete(self, code: str, version: str) -> None:
        """Delete unless activated; its runs stay in monitoring."""
        statement = delete(integrations).where(*_key(code, version), _not_activated())
        self._apply(statement, code, version, "delete")

    def activate(self, code: str, version: str, now: datetime) -> StoredIntegration:
        statement = (
            update(integrations)
            .where(*_key(code, version))
            .values(state=State.ACTIVATED.value, updated_at=now)
        )
        self._apply(statement, code, version, "activate")
        return self._must_get(code, version)

    def deactivate(self, code: str, version: str, now: datetime) -> StoredIntegration:
        statement = (
            update(integrations)
            .where(*_key(code, version), integrations.c.state == State.ACTIVATED.value)
            .values(state=State.DEACTIVATED.value, updated_at=now)
        )
        with self.engine.begin() as conn:
            applied = conn.execute(statement).rowcount
        if not applied:
            found = self.get(code, version)
            if found is None:
                raise IntegrationNotFound(f"no integration {code}|{version}")
            raise IntegrationConflict(f"{code}|{version} is {found.state.value}, not activated")
        return self._must_get(code, version)

    def _apply(self, statement: Any, code: str, version: str, action: str) -> None:
        with self.engine.begin() as conn:
            applied = conn.execute(statement).rowcount
        if not applied:
            if self.get(code, version) is None:
                raise IntegrationNotFound(f"no integration {code}|{version}")
            raise IntegrationConflict(
                f"{code}|{version} is activated: deactivate it to {action} it"
            )

    def _integration(self, row: Any) -> StoredIntegration:
        return StoredIntegration(
            document=IntegrationDocument.model_validate(
                open_document(row["document"], self._sealer)
            ),
            state=State(row["state"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _must_get(self, code: str, version: str) -> StoredIntegration:
        found = self.get(code, version)
        if found is None:  # deleted between our write and this read
            raise IntegrationNotFound(f"no integration {code}|{version}")
        return found

    # --- runs -----------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> int:
        values = {
            "integration_code": run.code,
            "integration_version": run.version,
            "started_at": run.started_at,
            "duration_ms": run.duration_ms,
            "status": run.status,
            "http_status": run.http_status,
            "caller_sub": run.caller.sub[:255],
            "caller_sub_type": run.caller.sub_type[:16],
            "caller_client_id": run.caller.client_id[:255],
            "caller_user_displayname": _clip(run.caller.user_displayname, 255),
            "error": _clip(run.error, 4000),
            "acting_clients": list(run.acting_clients) or None,
        }
        with self.engine.begin() as conn:
            result = conn.execute(insert(runs).values(**values).returning(runs.c.id))
            return int(result.scalar_one())

    def list_runs(
        self,
        code: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """Runs, newest first."""
        where: list[Any] = []
        if code is not None:
            where.append(runs.c.integration_code == code)
        if status is not None:
            where.append(runs.c.status == status)
        order = (runs.c.started_at.desc(), runs.c.id.desc())
        rows, total = self._page(runs, where, order, limit, offset)
        return [_run(row) for row in rows], total

    def get_run(self, run_id: int) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return None if row is None else _run(row)

    def _page(
        self, table: Table, where: Sequence[Any], order: Sequence[Any], limit: int, offset: int
    ) -> tuple[Sequence[RowMapping], int]:
        """One page of the rows that match, in order, and how many match in all."""
        query = select(table).where(*where).order_by(*order).limit(limit).offset(offset)
        count = select(func.count()).select_from(table).where(*where)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            total = int(conn.execute(count).scalar_one())
        return rows, total


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


def _key(code: str, version: str) -> tuple[Any, Any]:
    return integrations.c.code == code, integrations.c.version == version


def _not_activated() -> Any:
    return integrations.c.state != State.ACTIVATED.value


def _run(row: Any) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        code=row["integration_code"],
        version=row["integration_version"],
        started_at=row["started_at"],
        duration_ms=float(row["duration_ms"]),
        status=row["status"],
        http_status=int(row["http_status"]),
        caller=Caller(
            sub=row["caller_sub"],
            sub_type=row["caller_sub_type"],
            client_id=row["caller_client_id"],
            user_displayname=row["caller_user_displayname"],
        ),
        error=row["error"],
        acting_clients=tuple(row["acting_clients"] or ()),
    )
