"""`make bench` keeps working: a short run on both databases prints every scenario's row with
no errors and writes its JSON (the figures themselves are for `make bench`, never asserted).
The domains scenario runs at tiny sizes (1 and 3 domains), and its idle domains are checked to
be real ones: their key rings open their sealed keys and sign."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.domains import idle_name, prepare_database

from tessera.config import Settings
from tessera.context import open_context
from tessera.domain.admin import console_client_id
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.postgresql  # the benchmark measures PostgreSQL too

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    "client_credentials",
    "private_key_jwt",
    "jwt_bearer",
    "token_exchange",
    "introspection",
    "refresh_rotation",
    "authorization_code_flow",
    "federated_sign_in",
    "api_call_unprotected",
    "api_call_protected",
]


@pytest.mark.timeout(300)  # the run's own bound below: every scenario, on both databases
def test_a_short_bench_run_prints_the_table_and_writes_json() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--seconds", "0.3", "--concurrency", "1,2", "--no-pin"),
            *("--domain-sizes", "1,3", "--domain-rounds", "1", "--domain-seconds", "0.2"),
            *("--domain-touch", "2"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for database in ("sqlite", "postgresql"):
        for scenario in ROWS:
            for level in ("1", "2"):
                row = next(
                    (
                        line.split()
                        for line in lines
                        if line.split()[:3] == [scenario, database, level]
                    ),
                    None,
                )
                assert row is not None, f"no row {scenario} {database} {level}:\n{result.stdout}"
                assert row[7] == "0", f"errors in {row}"  # the errors column
    assert re.search(r"ASGI middleware µs per request, cached \(sqlite\): \d", result.stdout)
    for database in ("sqlite", "postgresql"):
        for size in ("1", "3"):
            row = next((line.split() for line in lines if line.split()[:2] == [database, size]), None)
            assert row is not None, f"no domains row {database} {size}:\n{result.stdout}"
            assert row[-1] == "0", f"errors in {row}"
        assert any(line.startswith(f"{database} 3 vs 1: cc CPU") for line in lines), result.stdout
    path = Path(result.stdout.rsplit("JSON: ", 1)[1].strip())
    try:
        data = json.loads(path.read_text())
        flows = [r for r in data["results"] if r["scenario"] == "authorization_code_flow"]
        # The flow's password hash is measured by the server and shown apart.
        assert all(r["excluded_cpu_ms_per_op"] > 0 for r in flows)
        domains = data["domains"]
        assert {(r["database"], r["domains"]) for r in domains} == {
            (db, n) for db in ("sqlite", "postgresql") for n in (1, 3)
        }
        # Up to 2 other domains were fetched: the bigger node touched both of its idle ones.
        assert [r["touched"] for r in domains if r["domains"] == 3] == [2, 2]
    finally:
        path.unlink()


def test_the_domains_scenario_prepares_real_idle_domains(tmp_path: Path) -> None:
    base = "http://127.0.0.1:9"
    prepared = prepare_database(tmp_path, base, 3)
    assert prepared.issuer == f"{base}/domains/bench"
    assert prepared.credentials["confidential_app"]["client_secret"]
    settings = Settings(data_dir=tmp_path, secret_key=SECRET_KEY, issuer=base, database_url=None)
    ctx = open_context(settings)
    try:
        assert ctx.store.domains.count() == 4  # the default, the measured and 2 idle ones
        kids: set[str] = set()
        for index in range(2):
            domain = ctx.store.domains.get_by_name(idle_name(index))
            assert domain is not None
            idle = ctx.for_domain(domain)
            assert idle.store.clients.get(console_client_id(domain.id)) is not None
            assert idle.store.resources.get_by_audience(f"{idle.settings.issuer}/admin")
            assert len(idle.keys.public_keys()) == 4
            kids |= {key["kid"] for key in idle.keys.public_keys()}
            assert idle.keys.sign("ES256", {"sub": "x"}).count(".") == 2
            assert idle.keys.sign("RS256", {"sub": "x"}).count(".") == 2
        assert len(kids) == 8  # every domain's keys have kids of their own
    finally:
        ctx.close()
