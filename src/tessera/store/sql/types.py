"""Column types shared by the schema and the migrations (which name
`tessera.store.sql.types.UTCDateTime`)."""

from __future__ import annotations

from tessera.shared.sql_types import UTCDateTime

__all__ = ["UTCDateTime"]
