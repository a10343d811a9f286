"""What every command shares: the `--json` option and an open identity domain."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from tessera.cli.output import err_console, handle_errors
from tessera.config import load_settings
from tessera.context import Context, open_context

__all__ = ["JsonOpt", "open_domain"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@contextmanager
def open_domain(as_json: bool) -> Iterator[Context]:
    """Open the configured identity domain (migrating a SQLite file on first use)."""
    with handle_errors(as_json), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings()
        settings.master_key  # noqa: B018 - fail early, and generate the development key
        for warning in caught:
            err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
        ctx = open_context(settings, migrate=settings.is_sqlite)
        try:
            yield ctx
        finally:
            ctx.close()
