"""Identity domains for end-to-end tests, made with the real CLI (`tessera admin domains …`)."""

from __future__ import annotations

from typing import Any

from tests.support.server import Server

__all__ = ["ADMIN_PASSWORD", "create_domain", "domain_cli"]

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
