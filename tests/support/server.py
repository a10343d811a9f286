"""Start the real `tessera serve` on 127.0.0.1 for end-to-end tests, and run the real CLI."""

from __future__ import annotations

import atexit
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from tessera.config import load_settings
from tessera.context import Context, open_context

__all__ = [
    "Server",
    "create_resource",
    "free_port",
    "run_cli",
    "running_server",
    "start_server",
]

SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


@cache
def _port_range() -> range:
    """Where `free_port` picks: below the kernel's ephemeral range, whose ports client
    sockets take (one took a port handed to a server before the server bound it), and one
    slice per pytest-xdist worker, so two workers never pick the same port."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    low, high = 10000, max(ephemeral, 20000)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % workers if worker.isdigit() else 0
    size = (high - low) // workers
    return range(low + index * size, low + (index + 1) * size)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port no other socket has now and this process has not handed out before (its servers
    may not have bound theirs yet); random, so a new run does not meet the last one's
    sockets in TIME_WAIT."""
    ports = _port_range()
    for _ in range(500):
        port = random.choice(ports)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError(f"no free port in {ports}")


# `TESSERA_TEST_DB=postgresql` runs every identity domain of the suite on its own fresh,
# migrated PostgreSQL database instead of a SQLite file: the same tests, on both databases.
TEST_DB = os.environ.get("TESSERA_TEST_DB", "sqlite")
_DATABASES: list[Any] = []


def _postgres_url() -> str:
    from tessera.store.sql import upgrade
    from tests.support.pg import fresh_database

    database = fresh_database()
    url = database.__enter__()
    _DATABASES.append(database)
    atexit.register(database.__exit__, None, None, None)
    upgrade(url)
    return url


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY=SECRET_KEY,
        TESSERA_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    if TEST_DB == "postgresql":
        env["TESSERA_DATABASE_URL"] = _postgres_url()
    elif TEST_DB != "sqlite":
        raise RuntimeError(f"TESSERA_TEST_DB must be sqlite or postgresql, not {TEST_DB}")
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tessera", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tessera {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def _wait_for_scopes(issuer: str, *scopes: str, headers: dict[str, str] | None = None) -> None:
    """Wait until the node serving `issuer` publishes `scopes` (audience + scope, as stored).

    A resource made by the CLI is another process's write: a node sees it when its resource
    cache next loads (`tessera.caching`, two seconds), as it would a change made on another node;
    a domain just made by the CLI may still be unknown there (404) for as long.
    """
    url = f"{issuer}/.well-known/openid-configuration"
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(url, headers=headers, timeout=10)
        if response.status_code == 200 and set(scopes) <= set(response.json()["scopes_supported"]):
            return
        assert time.monotonic() < deadline, f"{issuer} does not publish {scopes}: {response.text}"
        time.sleep(0.2)


@dataclass
class Server:
    base_url: str
    port: int
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.base_url

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, input=input, check=check)

    def cli_json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.cli(*args, "--json", input=input).stdout)

    @property
    def demo(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "demo-credentials.json").read_text())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @contextmanager
    def store_context(self) -> Iterator[Context]:
        """The node's store, opened here as another node would (its database and secret key):
        to set up what no endpoint can, such as an account created hours ago."""
        settings = load_settings(
            issuer=self.issuer,
            data_dir=self.data_dir,
            secret_key=SECRET_KEY,
            database_url=self.env.get("TESSERA_DATABASE_URL"),
        )
        ctx = open_context(settings)
        try:
            yield ctx
        finally:
            ctx.close()

    def restart(self) -> Server:
        self.stop()
        return start_server(self.data_dir, env=self.env, port=self.port)


def start_server(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60.0,
    issuer: str | None = None,
    demo: bool = True,
    args: tuple[str, ...] = (),
) -> Server:
    """`tessera serve` on a free port, with the demo domain unless `demo` is False (every
    suite's fixture signs in with its published credentials)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = dict(env) if env else base_env(data_dir)
    environment["TESSERA_ISSUER"] = issuer or base_url
    environment.update(extra_env or {})
    log_path = data_dir / f"server-{port}-{time.monotonic_ns()}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "tessera", "serve", "--port", str(port)),
            *(("--demo",) if demo else ()),
            *args,
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"tessera serve exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"tessera serve did not become ready:\n{log_path.read_text()}")
        time.sleep(0.1)
    return Server(base_url, port, data_dir, environment, proc, log_path)


@contextmanager
def running_server(data_dir: Path, **kwargs: Any) -> Iterator[Server]:
    """`start_server`, stopped on leaving: the body of every module-scoped server fixture."""
    srv = start_server(data_dir, **kwargs)
    try:
        yield srv
    finally:
        srv.stop()


def stored_data(env: dict[str, str], data_dir: Path) -> dict[str, bytes]:
    """Everything the identity domain has at rest: the files under its data dir and, on
    PostgreSQL, every table's rows as text (for "no secret is ever stored" checks)."""
    stored = {
        path.name: path.read_bytes()
        for path in data_dir.rglob("*")
        if path.is_file() and path.name != "demo-credentials.json"
    }
    url = env.get("TESSERA_DATABASE_URL", "")
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
                stored[f"postgresql:{table}"] = "\n".join(r[0] for r in rows).encode()
    return stored


def create_resource(
    server: Server,
    name: str,
    audience: str,
    *scopes: str,
    domain: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`tessera admin [--domain NAME] resources create` with `scopes`; returned once the
    node serving the domain (the default, or `domain` as `create_domain` gave it; `headers`
    to reach it, e.g. its Host) publishes them, so a token may ask for them at once."""
    args = ["admin", *(["--domain", domain["name"]] if domain else []), "resources", "create"]
    args += ["--name", name, "--audience", audience]
    for scope in scopes:
        args += ["--scope", scope]
    resource: dict[str, Any] = server.cli_json(*args)
    issuer = server.issuer if domain is None else str(domain["issuer"])
    if headers is not None:  # a domain of its own host, reached at the node's address
        issuer = server.base_url
    _wait_for_scopes(issuer, *(resource["audience"] + s for s in resource["scopes"]), headers=headers)
    return resource

