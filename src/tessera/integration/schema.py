"""The integration service's tables (SQLAlchemy 2.0 Core). Alembic migrations of its own,
under `migrations/`, create them; the version is kept in `alembic_version_integration`, so the
service may share a PostgreSQL database with the identity domain."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from tessera.shared.sql_types import UTCDateTime

__all__ = ["integrations", "metadata", "runs"]

metadata = MetaData()


# Naive UTC columns (`sa.DateTime()` in the migrations), aware datetimes in Python.
_UTC = UTCDateTime(timezone=False)


integrations = Table(
    "integrations",
    metadata,
    Column("code", String(50), primary_key=True),
    Column("version", String(10), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", _UTC, nullable=False),
    Column("updated_at", _UTC, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("integration_code", String(50), nullable=False),
    Column("integration_version", String(10), nullable=False),
    Column("started_at", _UTC, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("caller_sub", String(255), nullable=False),
    Column("caller_sub_type", String(16), nullable=False),
    Column("caller_client_id", String(255), nullable=False),
    Column("caller_user_displayname", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("acting_clients", JSON, nullable=True),  # i0003: who acted for the caller
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_code_started_at", "integration_code", "started_at"),
)
