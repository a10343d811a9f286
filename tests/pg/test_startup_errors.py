"""Clear startup errors on PostgreSQL (issue 7): an unmigrated database and a wrong URL stop
`tessera serve` with a message that says what to do, exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pg import fresh_database
from tests.support.server import base_env, free_port, run_cli

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1


def test_serve_on_an_unmigrated_database_says_run_tessera_migrate(tmp_path: Path) -> None:
    with fresh_database() as url:
        env = base_env(tmp_path, TESSERA_DATABASE_URL=url)
        result = run_cli(env, "serve", "--port", str(free_port()), check=False)
    assert result.returncode == 1
    assert "run `tessera migrate`" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_with_an_unreachable_database_says_so(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    env = base_env(tmp_path, TESSERA_DATABASE_URL=url)
    result = run_cli(env, "serve", "--port", str(free_port()), check=False)
    assert result.returncode == 1
    assert "cannot reach the database" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout
