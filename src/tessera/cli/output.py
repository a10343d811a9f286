"""Output for people (Rich tables) and for scripts (`--json`), and errors with exit codes.

Values are never cut: in a terminal a long cell folds onto the next line; when stdout is not a
terminal (a pipe, a file) tables are plain tab-separated lines at full width, for `grep`/`cut`.

Exit codes: 0 success, 1 the system failed (database unreachable), 2 bad input (nothing was
written).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

__all__ = ["console", "emit", "fail", "handle_errors", "plain", "table"]

console = Console()
err_console = Console(stderr=True)
if not console.is_terminal:
    # No width to fit: never wrap, never truncate (Rich assumes 80 columns otherwise).
    console = Console(soft_wrap=True, highlight=False, emoji=False)


def plain(value: Any) -> Any:
    """JSON-ready form of dataclasses, datetimes, enums and tuples."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    return value


def emit(data: Any, as_json: bool, render: Any = None) -> None:
    """Print `data` as JSON, or call `render()` (or print a key/value table)."""
    if as_json:
        sys.stdout.write(json.dumps(plain(data), indent=2) + "\n")
    elif render is not None:
        render()
    else:
        console.print(table(["field", "value"], [[k, v] for k, v in plain(data).items()]))


def _cell(value: Any, separator: str = "\n") -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return separator.join(str(v) for v in value) or "-"
    return str(value)


class _PlainRows:
    """Tab-separated lines, written as they are (Rich would expand tabs in a `Text`)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            yield Segment(line + "\n")


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> RenderableType:
    """A Rich table in a terminal (cells fold, never an ellipsis); elsewhere plain lines:
    the header, then one tab-separated line per row, list values joined by ", "."""
    if not console.is_terminal:
        lines = ["\t".join(headers)]
        lines += ["\t".join(_cell(v, ", ").replace("\t", " ") for v in row) for row in rows]
        return _PlainRows([line.replace("\n", " ") for line in lines])
    result = Table(title=title, header_style="bold cyan")
    for header in headers:
        result.add_column(header, overflow="fold")
    for row in rows:
        result.add_row(*(Text(_cell(v)) for v in row))  # Text: a name is never markup
    return result


def fail(message: str, as_json: bool, code: int = 2, hint: str | None = None) -> NoReturn:
    if as_json:
        payload = {"error": message, **({"hint": hint} if hint else {})}
        sys.stderr.write(json.dumps(payload) + "\n")
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
        if hint:
            err_console.print(f"[dim]{hint}[/]", highlight=False)
    raise typer.Exit(code)


@contextmanager
def handle_errors(as_json: bool) -> Iterator[None]:
    """Turn the known failures into a message and an exit code, never a traceback."""
    try:
        yield
    except Exception as exc:
        _fail_known(exc, as_json)
        raise


def _fail_known(exc: Exception, as_json: bool) -> None:
    """`fail` for a known failure, else return. Their classes are imported only once something
    is raised (the commands that raise them have imported them already)."""
    from tessera.config import ConfigError
    from tessera.manage.errors import InvalidInput, NotFoundError

    if isinstance(exc, InvalidInput | NotFoundError | ConfigError):
        fail(str(exc.args[0]) if exc.args else str(exc), as_json, 2)

    from tessera.oauth.keyring import KeyRingError
    from tessera.store.protocols import StoreUnavailable
    from tessera.store.sql import SchemaNotCurrent

    if isinstance(exc, SchemaNotCurrent | KeyRingError):
        fail(str(exc), as_json, 1)
    if isinstance(exc, StoreUnavailable):
        fail(
            f"cannot reach the database ({exc})",
            as_json,
            1,
            hint="check TESSERA_DATABASE_URL and that the database is running",
        )
