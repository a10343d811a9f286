"""Database URLs as both the identity domain and the integration service take them."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url

__all__ = ["configured_or_sqlite", "normalize_url"]


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3; the folder of a SQLite file is created."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def configured_or_sqlite(configured: SecretStr | None, sqlite_file: Path) -> str:
    """The configured database URL, or by default that of a SQLite file (made absolute)."""
    if configured is not None:
        return configured.get_secret_value()
    return f"sqlite:///{sqlite_file.resolve()}"
