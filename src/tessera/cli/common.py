"""What every command shares: the `--json` option, the data directory and an open domain."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from tessera.cli.output import err_console, handle_errors
from tessera.config import ConfigError, Settings, load_settings
from tessera.context import Context, open_context

__all__ = [
    "PRIVATE_UMASK",
    "JsonOpt",
    "open_domain",
    "prepare_data_dir",
    "sqlite_path",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

# What a new data directory and its files may be: the service account's alone.
PRIVATE_UMASK = 0o077


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite file of the identity domain; None on PostgreSQL."""
    url = make_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def prepare_data_dir(settings: Settings) -> None:
    """Make the data directory private (0700) and its database and secret files 0600, also
    those that an older version left readable; the key is generated here in development."""
    os.umask(PRIVATE_UMASK)  # SQLite's -wal and -shm files, keys, demo credentials
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        for path in [data_dir / "secret.key", *data_dir.glob("*.db*")]:
            if path.is_file():
                path.chmod(0o600)
        database = sqlite_path(settings)
        if database is not None:
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.master_key  # noqa: B018 - fail early, and generate the development key
    except OSError as exc:
        raise ConfigError(
            f"TESSERA_DATA_DIR={data_dir}: cannot use it as the data directory "
            f"({exc.strerror or exc}); set TESSERA_DATA_DIR to a folder this user can write"
        ) from None


@contextmanager
def open_domain(as_json: bool, *, create: bool = False) -> Iterator[Context]:
    """Open the configured identity domain. A SQLite file is migrated on use, but created only
    when `create` is set (by `serve`): an administrator in the wrong folder gets an error, not
    a new, empty domain."""
    with handle_errors(as_json), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings()
        database = sqlite_path(settings)
        if database is not None and not create and not database.exists():
            raise ConfigError(
                f"no identity domain database at {database}: run this command in the folder "
                "that `tessera serve` runs in, or set TESSERA_DATA_DIR (or "
                "TESSERA_DATABASE_URL) to the one it uses"
            )
        prepare_data_dir(settings)
        for warning in caught:
            err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
        ctx = open_context(settings, migrate=settings.is_sqlite)
        try:
            yield ctx
        finally:
            ctx.close()
