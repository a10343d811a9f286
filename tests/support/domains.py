"""Identity domains for end-to-end tests, made with the real CLI (`tessera admin domains …`),
and what the tests read of them: pages of the domain list, rows in the node's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Connection, create_engine, inspect, text

from tests.support.server import Server

__all__ = [
    "ADMIN_PASSWORD",
    "create_domain",
    "discovery_status",
    "domain_cli",
    "domain_rows",
    "every_page",
    "query",
]

# Passes the default password policy (at least 12 characters, not common) and contains no
# likely username (alice, admin, root…).
ADMIN_PASSWORD = "Violet-Harbor-Lantern-58"


def create_domain(
    server: Server,
    name: str,
    *,
    admin: tuple[str, str] | None = ("alice", ADMIN_PASSWORD),
    host: str | None = None,
    display_name: str | None = None,
    settings: dict[str, int] | None = None,
) -> dict[str, Any]:
    """`tessera admin domains create NAME … --json`: the domain's view, with "admin":
    {"id", "username"} of its first administrator (None when `admin` is None)."""
    args = ["admin", "domains", "create", name]
    if host is not None:
        args += ["--host", host]
    if display_name is not None:
        args += ["--display-name", display_name]
    for key, value in (settings or {}).items():
        args += ["--setting", f"{key}={value}"]
    password = None
    if admin is not None:
        args += ["--admin", admin[0], "--admin-password-stdin"]
        password = admin[1] + "\n"
    created: dict[str, Any] = server.cli_json(*args, input=password)
    return created


def domain_cli(server: Server, name: str, *args: str, input: str | None = None) -> Any:
    """`tessera admin --domain NAME <args…> --json`, which must succeed, parsed; e.g.
    `domain_cli(server, "acme", "users", "list")`."""
    return server.cli_json("admin", "--domain", name, *args, input=input)


def discovery_status(server: Server, name: str) -> int:
    """The status of the domain `name`'s discovery document (200, 403 disabled, 404 unknown)."""
    url = f"{server.base_url}/domains/{name}/.well-known/openid-configuration"
    return httpx.get(url, timeout=10).status_code


def every_page(fetch: Callable[[str | None], dict[str, Any]], limit: int) -> tuple[list[str], int]:
    """Follow a domain list's `next_after` from the first page (`fetch(None)`) to the last:
    the names in order and how many pages. Each page holds at most `limit` domains and its
    `next_after` is its last name."""
    names: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = fetch(after)
        assert len(page["domains"]) <= limit, page
        names += [d["name"] for d in page["domains"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            return names, pages
        assert after == names[-1], page


@contextmanager
def _database(server: Server) -> Iterator[Connection]:
    """A connection to the node's database (its SQLite file or PostgreSQL)."""
    url = server.env.get("TESSERA_DATABASE_URL") or f"sqlite:///{server.data_dir / 'tessera.db'}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def query(server: Server, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the node's database; `:name` placeholders."""
    with _database(server) as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def domain_rows(server: Server, domain_id: str) -> dict[str, int]:
    """How many rows of the domain each table of the node's database holds: every table with
    a `domain_id` column (as the database has them, whatever the code's schema says), and
    "domains" its own row."""
    with _database(server) as conn:
        schema = inspect(conn)
        tables = [
            table
            for table in schema.get_table_names()
            if any(column["name"] == "domain_id" for column in schema.get_columns(table))
        ]
        assert "users" in tables, tables  # found the domain tables
        counts = {
            table: int(
                conn.execute(
                    text(f'SELECT count(*) FROM "{table}" WHERE domain_id = :id'), {"id": domain_id}
                ).scalar_one()
            )
            for table in tables
        }
        counts["domains"] = int(
            conn.execute(
                text("SELECT count(*) FROM domains WHERE id = :id"), {"id": domain_id}
            ).scalar_one()
        )
    return counts
