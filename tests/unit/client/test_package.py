"""`tessera.client` stands alone: it imports nothing of the identity domain's server."""

from __future__ import annotations

import subprocess
import sys

SERVER_SIDE = (
    "tessera.web",
    "tessera.oauth",
    "tessera.store",
    "tessera.manage",
    "tessera.domain",
    "tessera.config",
    "tessera.integration",
    "tessera.resource",
    "sqlalchemy",
    "starlette",
)


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_client_library_imports_nothing_server_side() -> None:
    loaded = imported_by("tessera.client")
    assert not {m for m in loaded if m.startswith(SERVER_SIDE)}


def test_the_client_commands_import_nothing_server_side() -> None:
    loaded = imported_by("tessera.cli.client")
    assert not {m for m in loaded if m.startswith(SERVER_SIDE)}
