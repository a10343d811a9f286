"""The domains scenario (issue 14, docs/domains.md): the cost of one domain's requests is flat
in the number of identity domains on the node.

For each size N (default 1, 1,000 and 10,000) a database holds, besides the default domain,
N domains: the measured one, created as `tessera admin domains create` does
(`tessera.manage.domains.create_domain`) with the demo's users and apps in it, and N-1 idle
ones, each a real domain with its rows (its domain row, four sealed signing keys, its admin
API resource and console app) bulk-inserted in large transactions. The signing keys of the idle
domains reuse a small pool of key pairs, each sealed again under its domain's key with a kid of
its own: generating 40,000 RSA and EC key pairs would take longer than the whole benchmark.

One server per size runs at once, and the sizes take turns in short rounds, so drift of the
machine (other work on its two cores, frequency) falls on every size alike. In the measured
domain (`<base>/domains/bench`), at concurrency 1: client_credentials and refresh_token (with
rotation) at the token endpoint, listing the domain's apps through its admin API with its
administrator's token, and loading its console page. Each figure is the median over the
rounds (a round that caught a periodic cost, such as the key ring's reload, does not move it);
a change against the first size is the median of the round-by-round ratios (each round of a
size ran right beside the same round of the others, so load from outside cancels).
The server's RSS is read after the warm-up and again after the discovery document and JWKS of
up to 200 other domains were fetched (their contexts and key rings loaded into the bounded
caches), with the server CPU those first requests took ("cold"); "idle" is the server's CPU
while the other sizes were measured (no per-domain timers or polling).
The issue's bounds: CPU per operation within 10 % of the first size; listing and console
"flat", read the same way (their p50 is shown beside); RSS growth under 50 MB at 10,000.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, insert
from tests.support.flow import Pkce
from tests.support.server import SECRET_KEY, Server, free_port, start_server

from bench.driver import Operation, Result, cpu_seconds, pin, run_scenario
from bench.fixture import Fixture
from tessera.config import Settings
from tessera.context import domain_signing_key, open_context
from tessera.domain.admin import admin_scope, console_client_id, console_redirect
from tessera.domain.identity_domains import IdentityDomain, domain_issuer, new_domain_id
from tessera.domain.model import SigningKey
from tessera.manage.audit import store_actor
from tessera.manage.demo import bootstrap_demo
from tessera.manage.domains import create_domain
from tessera.manage.system import system_objects
from tessera.oauth.keyring import first_keys
from tessera.shared.sealing import Sealer
from tessera.store.protocols import DomainContent
from tessera.store.sql import schema

# The domains table's row of a domain, as `SqlDomains.create` writes it.
from tessera.store.sql.domains import domain_row
from tessera.store.sql.engine import write
from tessera.store.sql.store import SqlStore, content_rows

__all__ = [
    "SIZES",
    "DomainRow",
    "add_idle_domains",
    "idle_name",
    "prepare_database",
    "run_domains",
    "table",
]

SIZES = (1, 1_000, 10_000)
MEASURED = "bench"
OPERATIONS = ("client_credentials", "refresh_token", "list_apps", "console")
# The bounds: CPU per operation at most 10 % above the reference size (the first);
# "flat" (the apps list, the console) is read the same way.
CPU_BOUND = 0.10
RSS_BOUND_MB = 50.0
_CHUNK = 1000  # idle domains per transaction


def idle_name(index: int) -> str:
    return f"idle-{index:05d}"


# --- the database ---------------------------------------------------------------------------


def _key_pool(now: datetime) -> list[tuple[SigningKey, bytes]]:
    """One domain's worth of key pairs (an ACTIVE and a NEXT key of each algorithm), each
    with its private key in PEM."""
    pool_key = secrets.token_bytes(32)
    sealer = Sealer(pool_key)
    return [
        (key, sealer.open(key.private_key_enc, key.kid.encode("ascii")))
        for key in first_keys(pool_key, now)
    ]


def _resealed(pool: list[tuple[SigningKey, bytes]], sealer: Sealer) -> list[SigningKey]:
    """The pool's keys under a domain's key, each with a new kid (sealed with it as associated
    data, as `new_signing_key` does): rows the domain's key ring opens and signs with."""
    keys = []
    for key, pem in pool:
        kid = secrets.token_urlsafe(32)  # as long as a JWK thumbprint (RFC 7638)
        keys.append(
            replace(
                key,
                kid=kid,
                private_key_enc=sealer.seal(pem, kid.encode("ascii")),
                public_jwk={**key.public_jwk, "kid": kid},
            )
        )
    return keys


def _idle_chunks(
    settings: Settings, count: int, now: datetime
) -> Iterator[list[tuple[Table, list[dict[str, Any]]]]]:
    """The rows of `count` idle domains, `_CHUNK` domains at a time, parents first."""
    pool = _key_pool(now)
    for start in range(0, count, _CHUNK):
        rows: dict[Table, list[dict[str, Any]]] = {schema.domains: []}
        for index in range(start, min(count, start + _CHUNK)):
            domain = IdentityDomain(
                id=new_domain_id(),
                name=idle_name(index),
                display_name=f"Idle domain {index}",
                created_at=now,
            )
            resource, console = system_objects(
                domain_issuer(settings.issuer, domain), domain.id, now
            )
            sealer = Sealer(domain_signing_key(settings, domain.id))
            content = DomainContent(
                keys=_resealed(pool, sealer), resources=(resource,), clients=(console,)
            )
            rows[schema.domains].append(domain_row(domain))
            for table, table_rows in content_rows(domain.id, content):
                rows.setdefault(table, []).extend(table_rows)
        yield list(rows.items())


def add_idle_domains(store: SqlStore, settings: Settings, count: int, now: datetime) -> None:
    """`count` idle domains, `_CHUNK` to a transaction (executemany)."""
    for chunk in _idle_chunks(settings, count, now):
        with write(store.engine) as conn:
            for table, rows in chunk:
                if rows:
                    conn.execute(insert(table), rows)


@dataclass(frozen=True)
class Prepared:
    domain_id: str  # the measured domain's
    issuer: str
    credentials: dict[str, Any]  # its demo users and apps (demo-credentials.json's form)


def prepare_database(
    data_dir: Path, base_url: str, domains: int, database_url: str | None = None
) -> Prepared:
    """The default domain, the measured domain and `domains - 1` idle ones, in the database of
    a server at `base_url` with `data_dir` (its secret key: the test servers')."""
    settings = Settings(
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        issuer=base_url,
        database_url=database_url,
        log_level="warning",
    )
    ctx = open_context(settings, migrate=True, pool_size=1)
    try:
        now = ctx.clock()
        created = create_domain(
            ctx.store,
            name=MEASURED,
            display_name="Benchmark",
            base_issuer=base_url,
            signing_key_for=lambda domain_id: domain_signing_key(settings, domain_id),
            now=now,
            actor=store_actor("system:bench", ctx.store, ctx.clock),
        )
        measured = ctx.for_domain(created.domain)
        credentials = bootstrap_demo(
            measured.store, measured.secret_pepper, data_dir / MEASURED, now
        )
        assert credentials is not None
        assert isinstance(ctx.store, SqlStore)
        add_idle_domains(ctx.store, settings, domains - 1, now)
    finally:
        ctx.close()
    return Prepared(created.domain.id, domain_issuer(base_url, created.domain), credentials)


# --- the measurement ------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Node:
    """A server with `size` domains besides the default one."""

    size: int
    server: Server
    fx: Fixture
    domain_id: str
    admin_token: str = ""
    refresh_token: str = ""
    rss_warm_mb: float = 0.0
    rss_touched_mb: float = 0.0
    touched: int = 0
    cold_ms: float = 0.0  # server CPU to serve a domain's first two requests
    busy_cpu: float = 0.0
    busy_wall: float = 0.0
    idle_cpu_percent: float = 0.0
    samples: dict[str, list[Result]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.server.proc.pid


async def _admin_token(client: httpx.AsyncClient, node: Node) -> str:
    """As the console gets it: the code flow with PKCE as the domain's console app."""
    fx, pkce = node.fx, Pkce()
    redirect = console_redirect(fx.issuer)
    params = {
        "response_type": "code",
        "client_id": console_client_id(node.domain_id),
        "redirect_uri": redirect,
        "scope": f"openid profile {admin_scope(fx.issuer)}",
        "state": "st",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    code = await fx.sign_in(client, params, fx.admin)
    response = await client.post(
        fx.url("/oauth2/v1/token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": params["client_id"],
            "code_verifier": pkce.verifier,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _operations(node: Node) -> dict[str, Operation]:
    fx = node.fx
    token_url = fx.url("/oauth2/v1/token")

    async def client_credentials(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.post(token_url, auth=fx.auth, data={"grant_type": "client_credentials"})
        return r.status_code == 200

    async def refresh_token(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.post(
            token_url,
            auth=fx.auth,
            data={"grant_type": "refresh_token", "refresh_token": node.refresh_token},
        )
        if r.status_code != 200:
            return False
        node.refresh_token = r.json()["refresh_token"]
        return True

    async def list_apps(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.get(
            fx.url("/admin/v1/apps"), headers={"Authorization": f"Bearer {node.admin_token}"}
        )
        return r.status_code == 200 and isinstance(r.json(), list)

    async def console(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.get(fx.url("/console/"))
        return r.status_code == 200

    return {
        "client_credentials": client_credentials,
        "refresh_token": refresh_token,
        "list_apps": list_apps,
        "console": console,
    }


async def _touch(client: httpx.AsyncClient, node: Node, count: int) -> int:
    """Fetch the discovery document and JWKS of `count` idle domains (random ones)."""
    indexes = random.sample(range(node.size - 1), min(count, node.size - 1))
    base = node.server.base_url
    for index in indexes:
        issuer = f"{base}/domains/{idle_name(index)}"
        for path in ("/.well-known/openid-configuration", "/oauth2/v1/keys"):
            (await client.get(issuer + path)).raise_for_status()
    return len(indexes)


async def _measure(
    nodes: list[Node], database: str, rounds: int, seconds: float, touch: int
) -> None:
    warming = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        for node in nodes:
            node.refresh_token = (await node.fx.flow(client, consent=True))["refresh_token"]
            node.admin_token = await _admin_token(client, node)
            for name, operation in _operations(node).items():  # warm-up, not counted
                await run_scenario(
                    name,
                    database,
                    node.fx.issuer,
                    node.pid,
                    operation,
                    concurrency=1,
                    seconds=min(seconds, 0.5),
                )
            node.rss_warm_mb = rss_mb(node.pid)
            touching, cpu = time.monotonic(), cpu_seconds(node.pid)
            node.touched = await _touch(client, node, touch)
            node.rss_touched_mb = rss_mb(node.pid)
            if node.touched:
                node.cold_ms = (cpu_seconds(node.pid) - cpu) * 1000 / node.touched
            print(
                f"domains: {node.size}: {node.touched} others touched in "
                f"{time.monotonic() - touching:.1f} s",
                file=sys.stderr,
            )
    print(f"domains: warmed up in {time.monotonic() - warming:.1f} s", file=sys.stderr)
    started = {id(node): (cpu_seconds(node.pid), time.monotonic()) for node in nodes}
    for round_ in range(rounds):
        for name in OPERATIONS:
            # Each round in another order: no size always runs right after another.
            shift = round_ % len(nodes)
            for node in nodes[shift:] + nodes[:shift]:
                cpu = cpu_seconds(node.pid)
                result = await run_scenario(
                    name,
                    database,
                    node.fx.issuer,
                    node.pid,
                    _operations(node)[name],
                    concurrency=1,
                    seconds=seconds,
                )
                node.busy_cpu += cpu_seconds(node.pid) - cpu
                node.busy_wall += result.seconds
                node.samples.setdefault(name, []).append(result)
    print(f"domains: measured in {time.monotonic() - warming:.1f} s", file=sys.stderr)
    for node in nodes:
        cpu, wall = started[id(node)]
        idle_cpu = cpu_seconds(node.pid) - cpu - node.busy_cpu
        idle_wall = time.monotonic() - wall - node.busy_wall
        node.idle_cpu_percent = 100 * idle_cpu / idle_wall if idle_wall > 0 else 0.0


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainRow:
    """One size's figures (medians over the rounds)."""

    database: str
    domains: int
    cc_cpu_ms: float
    cc_p50_ms: float
    cc_p99_ms: float
    refresh_cpu_ms: float
    refresh_p50_ms: float
    refresh_p99_ms: float
    apps_cpu_ms: float
    apps_p50_ms: float
    console_cpu_ms: float
    console_p50_ms: float
    rss_warm_mb: float
    rss_touched_mb: float
    touched: int
    cold_domain_ms: float
    idle_cpu_percent: float
    errors: int
    # Server CPU ms per operation of each round, by operation (the rounds of every size
    # alternate: round i of one size ran next to round i of the others).
    rounds: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _median(results: list[Result], attribute: str) -> float:
    return round(float(statistics.median(getattr(r, attribute) for r in results)), 3)


def _row(node: Node, database: str) -> DomainRow:
    s = node.samples
    return DomainRow(
        database=database,
        domains=node.size,
        cc_cpu_ms=_median(s["client_credentials"], "server_cpu_ms_per_op"),
        cc_p50_ms=_median(s["client_credentials"], "p50_ms"),
        cc_p99_ms=_median(s["client_credentials"], "p99_ms"),
        refresh_cpu_ms=_median(s["refresh_token"], "server_cpu_ms_per_op"),
        refresh_p50_ms=_median(s["refresh_token"], "p50_ms"),
        refresh_p99_ms=_median(s["refresh_token"], "p99_ms"),
        apps_cpu_ms=_median(s["list_apps"], "server_cpu_ms_per_op"),
        apps_p50_ms=_median(s["list_apps"], "p50_ms"),
        console_cpu_ms=_median(s["console"], "server_cpu_ms_per_op"),
        console_p50_ms=_median(s["console"], "p50_ms"),
        rss_warm_mb=round(node.rss_warm_mb, 1),
        rss_touched_mb=round(node.rss_touched_mb, 1),
        touched=node.touched,
        cold_domain_ms=round(node.cold_ms, 2),
        idle_cpu_percent=round(node.idle_cpu_percent, 2),
        errors=sum(r.errors for results in s.values() for r in results),
        rounds={name: [r.server_cpu_ms_per_op for r in results] for name, results in s.items()},
    )


def _delta(value: float, base: float) -> str:
    return f"{(value - base) / base * 100:+.1f} %" if base else "n/a"


def _verdicts(row: DomainRow, base: DomainRow) -> list[tuple[str, str, bool]]:
    """(what, its change against the reference size, within the issue's bound)."""

    def cpu(what: str, operation: str, p50: tuple[float, float] | None) -> tuple[str, str, bool]:
        # Round by round: each round's ratio to the reference's same round, which ran beside
        # it, so that the machine's load (other work on its cores comes and goes) cancels.
        ratios = [
            mine / theirs
            for mine, theirs in zip(row.rounds[operation], base.rounds[operation], strict=False)
            if theirs > 0
        ]
        change = statistics.median(ratios) - 1 if ratios else float("inf")
        shown = f"{change * 100:+.1f} %"
        if p50 is not None:
            shown += f" (p50 {_delta(*p50)})"
        return what, shown, change <= CPU_BOUND

    growth = row.rss_touched_mb - base.rss_touched_mb
    return [
        cpu("cc CPU", "client_credentials", None),
        cpu("refresh CPU", "refresh_token", None),
        cpu("apps CPU", "list_apps", (row.apps_p50_ms, base.apps_p50_ms)),
        cpu("console CPU", "console", (row.console_p50_ms, base.console_p50_ms)),
        ("RSS", f"{growth:+.1f} MB", growth < RSS_BOUND_MB),
    ]


_COLUMNS = (
    # (heading, DomainRow field, format)
    ("db", "database", "<10"),
    ("domains", "domains", ">7"),
    ("cc CPU", "cc_cpu_ms", ">7.3f"),
    ("cc p50", "cc_p50_ms", ">6.2f"),
    ("cc p99", "cc_p99_ms", ">6.2f"),
    ("rt CPU", "refresh_cpu_ms", ">7.3f"),
    ("rt p50", "refresh_p50_ms", ">6.2f"),
    ("rt p99", "refresh_p99_ms", ">6.2f"),
    ("apps CPU", "apps_cpu_ms", ">8.3f"),
    ("apps p50", "apps_p50_ms", ">8.2f"),
    ("con CPU", "console_cpu_ms", ">7.3f"),
    ("con p50", "console_p50_ms", ">7.2f"),
    ("RSS MB", "rss_warm_mb", ">7.1f"),
    ("RSS+200", "rss_touched_mb", ">7.1f"),
    ("cold ms", "cold_domain_ms", ">7.2f"),
    ("idle %", "idle_cpu_percent", ">6.2f"),
    ("errors", "errors", ">6"),
)


def table(rows: list[DomainRow]) -> tuple[str, bool]:
    """The figures, then each size's changes against the first size with PASS/FAIL; and
    whether all passed."""
    # A heading as wide as its column, aligned the same way.
    head = " ".join(f"{title:{spec.split('.')[0]}}" for title, _, spec in _COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(" ".join(f"{getattr(r, name):{spec}}" for _, name, spec in _COLUMNS))
    lines.append(
        "CPU: the server's CPU ms per operation; p50/p99: ms; rt: refresh_token; con: console; "
        "RSS+200: after up to 200 other domains' discovery and JWKS were fetched; cold: the "
        "server's CPU ms for those two first requests of a domain; idle: the server's CPU "
        "while it served nothing"
    )
    passed = True
    for database in dict.fromkeys(r.database for r in rows):
        mine = [r for r in rows if r.database == database]
        base = mine[0]
        for row in mine[1:]:
            verdicts = _verdicts(row, base)
            passed = passed and all(ok for *_, ok in verdicts) and row.errors == 0
            lines.append(
                f"{database} {row.domains} vs {base.domains}: "
                + ", ".join(
                    f"{what} {change} {'PASS' if ok else 'FAIL'}" for what, change, ok in verdicts
                )
            )
    return "\n".join(lines), passed


# --- the scenario ---------------------------------------------------------------------------


def run_domains(
    databases: list[str],
    *,
    sizes: tuple[int, ...],
    rounds: int,
    seconds: float,
    touch: int,
    pin_cpus: bool,
) -> list[DomainRow]:
    """Prepare a database per size, start a server on each and measure them in turns (the
    defaults are `python -m bench`'s options)."""
    rows: list[DomainRow] = []
    for database in databases:
        with ExitStack() as stack:
            nodes = []
            for size in sizes:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                env = {"TESSERA_LOG_LEVEL": "warning"}
                url = None
                if database == "postgresql":
                    from tests.support.pg import fresh_database

                    url = env["TESSERA_DATABASE_URL"] = stack.enter_context(fresh_database())
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                started = time.monotonic()
                prepared = prepare_database(tmp, base, size, url)
                prepared_in = time.monotonic() - started
                server = start_server(tmp, port=port, extra_env=env, demo=False)
                stack.callback(server.stop)
                print(
                    f"domains: {size} on {database} prepared in {prepared_in:.1f} s, "
                    f"started in {time.monotonic() - started - prepared_in:.1f} s more",
                    file=sys.stderr,
                )
                fixture = Fixture(prepared.issuer, prepared.credentials)
                nodes.append(Node(size, server, fixture, prepared.domain_id))
            if pin_cpus:
                pin([node.pid for node in nodes])
            asyncio.run(_measure(nodes, database, rounds, seconds, touch))
            rows += [_row(node, database) for node in nodes]
    return rows
