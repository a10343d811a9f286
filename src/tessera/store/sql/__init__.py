"""The SQL store (SQLAlchemy 2.0 Core; SQLite by default, PostgreSQL in production)."""

from tessera.store.sql.migrate import SchemaNotCurrent, current, head, upgrade
from tessera.store.sql.store import SqlStore

__all__ = ["SchemaNotCurrent", "SqlStore", "current", "head", "upgrade"]
