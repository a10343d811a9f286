"""The README's production example works: `examples/two_nodes/run.sh --check` starts two nodes on
one PostgreSQL database and Redis, and a token issued by node A is active on node B, and revoked
on node B it is inactive on node A (issue 7).

Needs the PostgreSQL and Redis on 127.0.0.1; without them the script exits 1 and this test
fails, never skips.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.pg import ADMIN_URL
from tests.support.server import free_port

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "two_nodes" / "run.sh"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database_name() -> Iterator[str]:
    """A database name nobody uses; the script creates it, the teardown drops it."""
    name = f"tessera_two_nodes_{uuid.uuid4().hex[:12]}"
    yield name
    try:
        conn = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        return  # no PostgreSQL: the script could not have created it (and the test failed)
    with conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_two_nodes_example_check_passes(tmp_path: Path, database_name: str) -> None:
    server, maintenance_db = ADMIN_URL.rsplit("/", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA=str(Path(sys.executable).parent / "tessera"),
        PGURL=server,
        PG_MAINTENANCE_DB=maintenance_db,
        DB_NAME=database_name,
        REDIS_URL=REDIS_URL,
        PORT_A=str(free_port()),
        PORT_B=str(free_port()),
        WORK_DIR=str(tmp_path / "two_nodes"),
    )
    # Its own process group: on a timeout the script and both nodes are killed together.
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "--check"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"run.sh --check did not finish in 100 s:\n{output}")
    assert proc.returncode == 0, output
    assert "two_nodes --check: passed" in output, output
    assert "node A introspects it as inactive" in output, output
    for port in (env["PORT_A"], env["PORT_B"]):  # the EXIT trap stopped both nodes
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", int(port))) != 0, f"a node still listens on {port}"
