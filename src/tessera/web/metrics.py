"""Prometheus metrics at `/metrics`, for the addresses of `TESSERA_METRICS_ALLOW` only.

Requests by route template (never the raw path: paths carry ids), tokens issued and refused by
grant type, sign-ins by outcome, and the CPU time spent hashing passwords: the figure that
sizes a deployment (OWASP's argon2id parameters cost ~15 ms of a core per sign-in), and the one
the benchmark subtracts to show what the rest of a sign-in costs.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.web.proxy import client_ip

__all__ = ["Metrics", "metrics_routes", "share_metrics_between_workers"]

_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between_workers() -> str:
    """Before starting several worker processes: each writes its samples to files in a fresh
    private (0700) folder, and `/metrics` adds up every worker's (prometheus-client's
    multiprocess mode), whichever worker answers. The folder is removed on exit."""
    folder = tempfile.mkdtemp(prefix="tessera-metrics-")  # 0700, empty: no stale samples
    atexit.register(shutil.rmtree, folder, True)
    os.environ[_MULTIPROC] = folder  # read by the workers' prometheus-client at import
    return folder


_T = TypeVar("_T")


class Metrics:
    """One registry per application (tests build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # What `/metrics` shows: this process's registry, or every worker's samples.
        self.exposed = self.registry
        if os.environ.get(_MULTIPROC):
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)  # type: ignore[no-untyped-call]
        self.requests = Histogram(
            "tessera_http_request_duration_seconds",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.tokens = Counter(
            "tessera_tokens_issued",
            "Access tokens issued by the token endpoint, by grant type",
            ["grant_type"],
            registry=self.registry,
        )
        self.token_errors = Counter(
            "tessera_token_errors",
            "Token requests refused, by OAuth error code",
            ["error"],
            registry=self.registry,
        )
        self.logins = Counter(
            "tessera_logins",
            "Sign-in attempts by outcome (success, failure, locked)",
            ["outcome"],
            registry=self.registry,
        )
        self.password_hash_cpu = Counter(
            "tessera_password_hash_cpu_seconds",
            "CPU time spent hashing and verifying passwords",
            registry=self.registry,
        )
        self.password_hashes = Counter(
            "tessera_password_hashes",
            "Password hashes computed (verifications and rehashes)",
            registry=self.registry,
        )

    def hashing(self, work: Callable[[], _T]) -> _T:
        """Run a password hash or verification and count its CPU time (this thread's)."""
        start = time.thread_time()
        try:
            return work()
        finally:
            self.password_hash_cpu.inc(time.thread_time() - start)
            self.password_hashes.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def metrics_routes(metrics: Metrics, allow: Sequence[str]) -> list[Route]:
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
    return [Route("/metrics", partial(_exposition, metrics, networks), methods=["GET"])]


def _allowed(address: str | None, networks: tuple[_Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in networks)


async def _exposition(
    metrics: Metrics, networks: tuple[_Network, ...], request: Request
) -> Response:
    if not _allowed(client_ip(request.scope), networks):
        # Not a secret, but not for everyone: counts of sign-ins and tokens are telling.
        return Response("not found\n", status_code=404, media_type="text/plain")
    return Response(
        generate_latest(metrics.exposed),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
