"""What every command shares: the `--json` option, the data directory and an open domain
(the default one, or the one `tessera admin --domain NAME` chose: docs/domains.md)."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tessera.cli.output import err_console, fail, handle_errors

# The configuration and the store are imported in the functions: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.config import Settings
    from tessera.context import Context

__all__ = [
    "PRIVATE_UMASK",
    "JsonOpt",
    "jwks_text",
    "open_default_domain",
    "open_domain",
    "prepare_data_dir",
    "read_password",
    "select_domain",
    "sqlite_path",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

# What a new data directory and its files may be: the service account's alone.
PRIVATE_UMASK = 0o077

# The domain (name or id) that `tessera admin --domain` chose; None: the default domain.
_selected_domain: ContextVar[str | None] = ContextVar("tessera_selected_domain", default=None)


def read_password(from_stdin: bool, as_json: bool, option: str = "--password-stdin") -> str:
    """A password from stdin's first line (`option` was given), or asked twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail(
            "no password given",
            as_json,
            hint=f"pipe it with {option}, or run the command in a terminal",
        )
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat the password", hide_input=True) != first:
        fail("the passwords differ", as_json)
    return str(first)


def select_domain(ref: str | None) -> None:
    """Make `open_domain` open this domain (name or id) for the rest of the command."""
    _selected_domain.set(ref.strip() if ref and ref.strip() else None)


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite file of the identity domain; None on PostgreSQL."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def prepare_data_dir(settings: Settings) -> None:
    """Make the data directory private (0700) and its database and secret files 0600, also
    those that an older version left readable; the key is generated here in development."""
    from tessera.config import ConfigError

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
def open_default_domain(as_json: bool, *, create: bool = False) -> Iterator[Context]:
    """Open the deployment's default identity domain (where the operators are). A SQLite file
    is migrated on use, but created only when `create` is set (by `serve`): an administrator
    in the wrong folder gets an error, not a new, empty domain."""
    from tessera.config import ConfigError, load_settings
    from tessera.context import open_context

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


@contextmanager
def open_domain(as_json: bool, *, create: bool = False) -> Iterator[Context]:
    """Open the domain `--domain` chose (by default the default domain). A disabled domain
    opens too: its operators may still manage it while its endpoints refuse everyone."""
    with open_default_domain(as_json, create=create) as ctx:
        ref = _selected_domain.get()
        if ref is None:
            yield ctx
            return
        from tessera.manage.domains import find_domain
        from tessera.manage.errors import NotFoundError

        try:
            domain = find_domain(ctx.store, ref)
        except NotFoundError as exc:
            fail(
                str(exc),
                as_json,
                hint="`tessera admin domains list` shows the domains; --domain (or "
                "TESSERA_DOMAIN) takes a domain's name or id",
            )
        if not domain.enabled:
            err_console.print(
                f"[yellow]warning:[/] the domain {domain.name} is disabled: its endpoints refuse "
                "every request until `tessera admin domains enable` is run",
                highlight=False,
            )
        yield ctx.for_domain(domain)


def jwks_text(value: str | None, as_json: bool) -> str | None:
    """--jwks: JSON text, or @FILE (read here, so a bad path is a clear error)."""
    if value is None or not value.startswith("@"):
        return value
    try:
        with open(value[1:], encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        fail(f"cannot read the JWK Set file {value[1:]}: {exc.strerror or exc}", as_json)
    except UnicodeDecodeError:
        fail(f"cannot read the JWK Set file {value[1:]}: it is not UTF-8 text", as_json)
