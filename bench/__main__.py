"""`make bench`: Tessera's figures per operation, on SQLite and on PostgreSQL.

Scenarios: client_credentials (with a secret; and `private_key_jwt`, a fresh assertion per
request: one ES256 verification and one `jti` write on the server), the JWT bearer grant (a
partner's fresh user assertion per request, RFC 7523 §2.1: a verification, the `jti` and the
grant written), token exchange (the user's token for a token with `act`, RFC 8693: the subject
token verified, a grant written), refresh with rotation,
introspection, the full authorization code flow (login with the password hash, consent
remembered, token), a federated sign-in (docs/federation.md: the same flow, the user signed in
by a second identity domain of the same server as the upstream provider), and a protected API
call next to the same call unprotected. Each at
concurrency 1, 8 and 32 for a bounded time on loopback. In process: what `tessera.resource`
costs per request, with a bearer token and with a DPoP proof (bench/dpop.py). Then the
domains scenario (bench/domains.py): one domain's costs with 1, 1,000 and 10,000 identity
domains on the node. Prints the tables and writes JSON to bench/results/. `python -m bench
domains` runs the domains scenario alone.

Server CPU per operation is the server process's CPU time (from /proc) over the operations.
For the flows, the CPU their password hashing took (the server counts it, thread CPU time, in its
/metrics) is shown apart, "(+ hash)", and not counted in the flows' figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from tests.support.server import Server, free_port, start_server
from tests.support.upstreams import callback_uri, tessera_upstream

from bench.domains import SIZES, DomainRow, run_domains
from bench.domains import table as domains_table
from bench.dpop import dpop_cost_us
from bench.driver import Operation, Result, pin, run_scenario
from bench.fixture import Fixture
from tessera.oauth.grants.jwt_bearer import JWT_BEARER
from tessera.oauth.grants.token_exchange import TOKEN_EXCHANGE

RESULTS = Path(__file__).parent / "results"


def password_hash_cpu(base_url: str) -> float | None:
    """The server's CPU seconds spent hashing passwords so far, from its /metrics (None for a
    server without them: a build from before they existed)."""
    response = httpx.get(f"{base_url}/metrics", timeout=30)
    for line in response.text.splitlines() if response.status_code == 200 else []:
        if line.startswith("tessera_password_hash_cpu_seconds_total "):
            return float(line.split()[1])
    return None


def _argon2_ms() -> float:
    """CPU cost of one password verification at our parameters, measured here."""
    from tessera.domain.passwords import hash_password, verify_password

    stored = hash_password("Benchmark-Password-2026")
    start = time.process_time()
    for _ in range(10):
        verify_password(stored, "Benchmark-Password-2026")
    return (time.process_time() - start) * 100


SCENARIOS = (
    "client_credentials",
    "private_key_jwt",
    "jwt_bearer",
    "token_exchange",
    "introspection",
    "refresh_rotation",
    "authorization_code_flow",
    "federated_sign_in",
    "api_call",
    "domains",
)


async def _scenarios(
    server: Server,
    fx: Fixture,
    database: str,
    seconds: float,
    levels: list[int],
    only: frozenset[str],
    argon2_ms: float,
    protected_url: str | None,
    protected_pid: int | None,
) -> list[Result]:
    base, pid = server.base_url, server.proc.pid
    results: list[Result] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as setup:
        first = await fx.flow(setup, consent=True)
    access_token = first["access_token"]

    async def run(name: str, operation: Operation, level: int, **options: Any) -> None:
        url, server_pid = options.pop("target", (base, pid))
        results.append(
            await run_scenario(
                name,
                database,
                url,
                server_pid,
                operation,
                concurrency=level,
                seconds=seconds,
                **options,
            )
        )

    async def client_credentials(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.post(
            "/oauth2/v1/token", auth=fx.auth, data={"grant_type": "client_credentials"}
        )
        return r.status_code == 200

    async def introspection(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.post("/oauth2/v1/introspect", auth=fx.auth, data={"token": access_token})
        return r.status_code == 200 and r.json()["active"] is True

    async def open_call(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.get(
            f"{protected_url}/open/hello", headers={"Authorization": f"Bearer {access_token}"}
        )
        return r.status_code == 200

    async def protected_call(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.get(
            f"{protected_url}/protected/hello",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return r.status_code == 200

    sign_assertion = _key_app(server, fx) if "private_key_jwt" in only else None

    async def private_key_jwt(client: httpx.AsyncClient, _: int) -> bool:
        assert sign_assertion is not None
        r = await client.post(
            "/oauth2/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": sign_assertion(),
            },
        )
        return r.status_code == 200

    sign_user_assertion = _partner(server, fx) if "jwt_bearer" in only else None

    async def jwt_bearer(client: httpx.AsyncClient, _: int) -> bool:
        assert sign_user_assertion is not None
        r = await client.post(
            "/oauth2/v1/token",
            auth=fx.auth,
            data={
                "grant_type": JWT_BEARER,
                "assertion": sign_user_assertion(),
                "scope": fx.scope,
            },
        )
        return r.status_code == 200

    if "token_exchange" in only:  # the demo app may exchange for its own resource (RFC 8693)
        server.cli_json(
            "admin", "apps", "token-exchange", fx.app["client_id"], "--audience", fx.audience,
        )  # fmt: skip

    async def token_exchange(client: httpx.AsyncClient, _: int) -> bool:
        r = await client.post(
            "/oauth2/v1/token",
            auth=fx.auth,
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": access_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "audience": fx.audience,
            },
        )
        return r.status_code == 200

    upstream = await _federation(server, fx) if "federated_sign_in" in only else None

    async def federated(client: httpx.AsyncClient) -> object:
        assert upstream is not None
        return await fx.federated_flow(client, PROVIDER, *upstream)

    async def browsers(name: str, flow: Flow, level: int, note: str = "") -> None:
        """`flow` run by browsers, one per worker (its own cookie jar), without the server's
        password-hash CPU."""
        clients: dict[int, httpx.AsyncClient] = {}

        async def operation(_: httpx.AsyncClient, index: int) -> bool:
            if index not in clients:
                clients[index] = httpx.AsyncClient(base_url=base, timeout=30)
            await flow(clients[index])
            return True

        measured = password_hash_cpu(base) is not None
        await run(
            name,
            operation,
            level,
            max_ops=2000,
            excluded_cpu=(lambda: password_hash_cpu(base) or 0.0) if measured else None,
            excluded_ms_per_op=0.0 if measured else argon2_ms,
            note=(
                "minus the server's password-hash CPU (tessera_password_hash_cpu_seconds)"
                if measured
                else f"minus one argon2id verification measured here ({argon2_ms:.1f} ms)"
            )
            + note,
        )
        for client in clients.values():
            await client.aclose()

    for level in levels:
        if "client_credentials" in only:
            await run("client_credentials", client_credentials, level)
        if "private_key_jwt" in only:
            await run("private_key_jwt", private_key_jwt, level)
        if "jwt_bearer" in only:
            await run("jwt_bearer", jwt_bearer, level)
        if "token_exchange" in only:
            await run("token_exchange", token_exchange, level)
        if "introspection" in only:
            await run("introspection", introspection, level)
        if "refresh_rotation" in only:
            # Each worker follows its own family.
            chains: dict[int, str] = {}
            async with httpx.AsyncClient(base_url=base, timeout=30) as setup:
                for index in range(level):
                    chains[index] = (await fx.flow(setup))["refresh_token"]

            async def refresh(
                client: httpx.AsyncClient, index: int, chains: dict[int, str] = chains
            ) -> bool:
                r = await client.post(
                    "/oauth2/v1/token",
                    auth=fx.auth,
                    data={"grant_type": "refresh_token", "refresh_token": chains[index]},
                )
                if r.status_code != 200:
                    return False
                chains[index] = r.json()["refresh_token"]
                return True

            await run("refresh_rotation", refresh, level)
        if "authorization_code_flow" in only:
            await browsers("authorization_code_flow", fx.flow, level)
        if "federated_sign_in" in only:
            note = (
                "; each worker's browser signs in at the upstream (its password) on its first"
                " operation only: its upstream session stays, so later ones ask no password"
            )
            await browsers("federated_sign_in", federated, level, note)
        if "api_call" in only and protected_url and protected_pid:
            target = (protected_url, protected_pid)
            await run("api_call_unprotected", open_call, level, target=target)
            await run("api_call_protected", protected_call, level, target=target)
    return results


PROVIDER = "upstream"  # the upstream domain's name, and its provider's name downstream
Flow = Callable[[httpx.AsyncClient], Awaitable[object]]


async def _federation(server: Server, fx: Fixture) -> tuple[str, dict[str, str]]:
    """The identity domain `upstream` on the same server (tests/support/upstreams.py: a user and
    a confidential app whose redirect URI is the demo domain's callback for it), added to the
    demo domain as the provider `upstream`; one federated sign-in, allowing both consents (the
    user is created just in time downstream). Its issuer and user."""
    user = {
        "username": "fed-user",
        "email": "fed-user@upstream.test",
        "name": "Federated User",
        "password": "Benchmark-Password-2026",
    }
    made = tessera_upstream(
        server, PROVIDER, redirect_uri=callback_uri(fx.issuer, PROVIDER), users=[user]
    )
    server.cli_json(
        "admin", "providers", "add", PROVIDER, "--issuer", made.issuer,
        "--client-id", made.app["client_id"], "--client-secret-stdin",
        input=made.app["client_secret"] + "\n",
    )  # fmt: skip
    deadline = time.monotonic() + 10  # the sign-in page caches the providers for 2 s
    async with httpx.AsyncClient(timeout=30) as browser:
        while True:
            try:
                await fx.federated_flow(browser, PROVIDER, made.issuer, user, consent=True)
                return made.issuer, user
            except httpx.HTTPStatusError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)


def _key_app(server: Server, fx: Fixture) -> Callable[[], str]:
    """An app registered for private_key_jwt (an ES256 key), and a function that signs a new
    client assertion for it (on the driver's CPU, not the server's)."""
    from joserfc import jwt
    from joserfc.jwk import ECKey, KeySet

    key = ECKey.generate_key("P-256", parameters={"kid": "bench"})
    jwks = KeySet([ECKey.import_key(key.as_dict(private=False))]).as_dict()
    app = server.cli_json(
        "admin", "apps", "create", "--name", "Bench key app", "--grant-type",
        "client_credentials", "--allow-scope", fx.scope,
        "--token-endpoint-auth-method", "private_key_jwt", "--jwks", json.dumps(jwks),
    )  # fmt: skip
    client_id = app["client_id"]

    def sign() -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": fx.issuer, "iat": now}
        claims.update(exp=now + 60, jti=os.urandom(16).hex())
        return jwt.encode({"alg": "ES256", "kid": "bench"}, claims, key)

    return sign


def _partner(server: Server, fx: Fixture) -> Callable[[], str]:
    """A trusted partner issuer (RFC 7523 §2.1, an inline ES256 JWK Set) that names the demo's
    app, and a function that signs a new user assertion for the demo's user (on the driver's
    CPU). The app is given the grant type."""
    from joserfc import jwt
    from joserfc.jwk import ECKey, KeySet

    key = ECKey.generate_key("P-256", parameters={"kid": "partner"})
    jwks = KeySet([ECKey.import_key(key.as_dict(private=False))]).as_dict()
    client_id, issuer = fx.app["client_id"], "https://partner.bench.tessera.test"
    grants = server.cli_json("admin", "apps", "show", client_id)["grant_types"]
    server.cli_json(
        "admin", "apps", "update", client_id,
        *(arg for grant in [*grants, JWT_BEARER] for arg in ("--grant-type", grant)),
    )  # fmt: skip
    server.cli_json(
        "admin", "trusted-issuers", "create", "--issuer", issuer, "--jwks", json.dumps(jwks),
        "--allowed-app", client_id,
    )  # fmt: skip

    def sign() -> str:
        now = int(time.time())
        claims = {"iss": issuer, "sub": fx.user["username"], "aud": fx.issuer, "iat": now}
        claims.update(exp=now + 60, jti=os.urandom(16).hex())
        return jwt.encode({"alg": "ES256", "kid": "partner"}, claims, key)

    return sign


def _library_cost_us(fx: Fixture, token: str) -> tuple[float, float, float]:
    """In-process: µs per validation, cached and uncached (signature and claims checked again;
    the JWKS already fetched), and what the ASGI middleware adds to a request on a cached
    validation (header parsing, validation, scope check: the 20 µs target)."""
    from tessera.resource import TokenValidator
    from tessera.resource.asgi import BearerAuthMiddleware

    validator = TokenValidator(fx.issuer, fx.audience)
    validator.validate(token)
    per_request = asyncio.run(_middleware_cost_us(BearerAuthMiddleware, validator, token))
    rounds = 20000
    start = time.process_time()
    for _ in range(rounds):
        validator.validate(token)
    cached = (time.process_time() - start) / rounds * 1e6
    rounds = 2000
    start = time.process_time()
    for _ in range(rounds):
        validator._cache.clear()
        validator.validate(token)
    uncached = (time.process_time() - start) / rounds * 1e6
    return cached, uncached, per_request


async def _middleware_cost_us(middleware: Any, validator: Any, token: str) -> float:
    """A request through the middleware to an app that does nothing, minus the app alone."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    headers = [
        (b"host", b"127.0.0.1"),
        (b"accept", b"*/*"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    protected = middleware(app, validator)
    rounds = 20000
    costs = []
    for target in (app, protected):
        start = time.process_time()
        for _ in range(rounds):
            scope = {"type": "http", "path": "/hello", "query_string": b"", "headers": headers}
            await target(scope, None, None)
        costs.append((time.process_time() - start) / rounds * 1e6)
    return costs[1] - costs[0]


def _start_protected_app(fx: Fixture) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "BENCH_ISSUER": fx.issuer, "BENCH_AUDIENCE": fx.audience}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.protected_app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/open/hello", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the benchmark's protected app did not start")


def _table(results: list[Result], extra: dict[str, Any]) -> str:
    head = (
        f"{'scenario':26} {'db':10} {'conc':>4} {'ops/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'errors':>6} {'server CPU ms/op':>17} {'(+ hash)':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.scenario:26} {r.database:10} {r.concurrency:>4} "
            f"{r.ops_per_second:>8.1f} {r.p50_ms:>7.2f} {r.p95_ms:>7.2f} "
            f"{r.p99_ms:>7.2f} {r.errors:>6} {r.server_cpu_ms_per_op:>17.3f}"
            + (f" {r.excluded_cpu_ms_per_op:>8.2f}" if r.excluded_cpu_ms_per_op else "")
        )
    for key, value in extra.items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=3.0, help="per scenario and level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios, of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the servers and this driver share both CPUs (default: one each)",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help="run only these (as --only), e.g. `python -m bench domains`",
    )
    domains = parser.add_argument_group("the domains scenario")
    domains.add_argument(
        "--domain-sizes",
        default=",".join(str(n) for n in SIZES),
        help="numbers of domains besides the default one; the first is the reference",
    )
    domains.add_argument("--domain-rounds", type=int, default=12)
    domains.add_argument(
        "--domain-seconds", type=float, default=0.5, help="per operation, round and size"
    )
    domains.add_argument(
        "--domain-touch", type=int, default=200, help="other domains fetched before RSS is read"
    )
    args = parser.parse_args()
    if args.scenarios:
        args.only = ",".join(args.scenarios)
    levels = [int(x) for x in args.concurrency.split(",")]
    only = frozenset(args.only.split(","))
    if not only <= set(SCENARIOS):
        parser.error(f"unknown scenario: {', '.join(sorted(only - set(SCENARIOS)))}")
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    argon2_ms = _argon2_ms()
    results: list[Result] = []
    extra: dict[str, Any] = {"argon2id_verify_ms": round(argon2_ms, 2), "cpus": os.cpu_count()}
    # The scenarios of one server with the demo (`domains` starts servers of its own).
    on_demo_server = only - {"domains"}
    for database in databases if on_demo_server else []:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
            env: dict[str, str] = {"TESSERA_LOG_LEVEL": "warning"}
            if database == "postgresql":
                from tests.support.pg import fresh_database

                from tessera.store.sql import upgrade

                url = stack.enter_context(fresh_database())
                upgrade(url)
                env["TESSERA_DATABASE_URL"] = url
            server = start_server(Path(tmp), extra_env=env)
            stack.callback(server.stop)
            fx = Fixture(server.issuer, server.demo)
            protected_url, protected = _start_protected_app(fx)
            stack.callback(protected.kill)
            if not args.no_pin:
                extra["pinned"] = pin([server.proc.pid, protected.pid])
            print(f"benchmarking on {database} …", file=sys.stderr)
            results += asyncio.run(
                _scenarios(
                    server,
                    fx,
                    database,
                    args.seconds,
                    levels,
                    only,
                    argon2_ms,
                    protected_url,
                    protected.pid,
                )
            )
            token = httpx.post(
                f"{server.base_url}/oauth2/v1/token",
                auth=fx.auth,
                data={"grant_type": "client_credentials"},
            ).json()["access_token"]
            cached, uncached, per_request = _library_cost_us(fx, token)
            extra[f"resource library validation µs, cached / uncached ({database})"] = (
                f"{cached:.2f} / {uncached:.1f}"
            )
            extra[f"resource library ASGI middleware µs per request, cached ({database})"] = (
                f"{per_request:.2f}"
            )
    if on_demo_server:
        # RFC 9449: a cached token and one fresh ES256 proof per request (target: ≤ 150 µs).
        per_request, verify, ecdsa = dpop_cost_us()
        extra["resource library DPoP µs per request, cached token, ES256 proof"] = (
            f"{per_request:.1f} (verify_proof {verify:.1f}, of which ES256 itself {ecdsa:.1f})"
        )
    domain_rows: list[DomainRow] = []
    if "domains" in only:
        print("benchmarking the domains scenario …", file=sys.stderr)
        domain_rows = run_domains(
            databases,
            sizes=tuple(int(x) for x in args.domain_sizes.split(",")),
            rounds=args.domain_rounds,
            seconds=args.domain_seconds,
            touch=args.domain_touch,
            pin_cpus=not args.no_pin,
        )
    if results:
        print(_table(results, extra))
    if domain_rows:
        text, passed = domains_table(domain_rows)
        print(("\n" if results else "") + "identity domains (bench/domains.py)\n" + text)
        print("within the issue's bounds" if passed else "NOT within the issue's bounds")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    data = {
        "results": [r.as_dict() for r in results],
        "domains": [r.as_dict() for r in domain_rows],
        **extra,
    }
    path.write_text(json.dumps(data, indent=2))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
