"""The integration service's tables (SQLAlchemy 2.0 Core). Alembic migrations of its own,
under `migrations/`, create them; the version is kept in `alembic_version_integration`, so the
service may share a PostgreSQL database with the identity domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = ["UTCDateTime", "integrations", "metadata", "runs"]

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


integrations = Table(
    "integrations",
    metadata,
    Column("code", String(50), primary_key=True),
    Column("version", String(10), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("integration_code", String(50), nullable=False),
    Column("integration_version", String(10), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("caller_sub", String(255), nullable=False),
    Column("caller_sub_type", String(16), nullable=False),
    Column("caller_client_id", String(255), nullable=False),
    Column("caller_user_displayname", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_code_started_at", "integration_code", "started_at"),
)
