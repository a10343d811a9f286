"""A bounded load driver: asyncio + httpx against loopback only.

Each scenario runs `concurrency` workers for `seconds`, records latencies and errors, and the
server process's CPU time before and after (from /proc), so the figure that compares across
machines is the server CPU per operation: the driver shares the cores.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Operation", "Result", "cpu_seconds", "pin", "run_scenario"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and of its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / _TICKS


@dataclass
class Result:
    scenario: str
    database: str
    concurrency: int
    ops: int
    errors: int
    seconds: float
    server_cpu_ms_per_op: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    excluded_cpu_ms_per_op: float = 0.0
    note: str = ""

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ops_per_second": round(self.ops_per_second, 1)}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


Operation = Callable[[httpx.AsyncClient, int], Awaitable[bool]]


async def run_scenario(
    name: str,
    database: str,
    base_url: str,
    server_pid: int,
    operation: Operation,
    *,
    concurrency: int,
    seconds: float,
    max_ops: int = 200_000,
    excluded_cpu: Callable[[], float] | None = None,
    excluded_ms_per_op: float = 0.0,
    note: str = "",
) -> Result:
    """`excluded_cpu` reads a cumulative count of server CPU seconds not to count (the
    password hash, from the server's own metrics): read before and after, then subtracted;
    `excluded_ms_per_op` is a fixed estimate instead (for servers without those metrics)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline and len(latencies) + errors < max_ops:
            start = time.perf_counter()
            try:
                ok = await operation(client, index)
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1

    # A client (one keep-alive connection) per worker: one client's pool shared by 32 workers
    # spends more of the driver's CPU on the pool than on the requests.
    clients = [
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) for _ in range(concurrency)
    ]
    try:
        excluded_before = excluded_cpu() if excluded_cpu else 0.0
        cpu_before, wall_before = cpu_seconds(server_pid), time.monotonic()
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
        cpu_after, wall_after = cpu_seconds(server_pid), time.monotonic()
        excluded_after = excluded_cpu() if excluded_cpu else 0.0
    finally:
        for client in clients:
            await client.aclose()
    ops = len(latencies)
    if excluded_cpu is None:
        excluded_ms = excluded_ms_per_op
    else:
        excluded_ms = (excluded_after - excluded_before) * 1000 / ops if ops else 0.0
    cpu_ms = (cpu_after - cpu_before) * 1000 / ops if ops else 0.0
    return Result(
        scenario=name,
        database=database,
        concurrency=concurrency,
        ops=ops,
        errors=errors,
        seconds=round(wall_after - wall_before, 3),
        server_cpu_ms_per_op=round(max(cpu_ms - excluded_ms, 0.0), 3),
        excluded_cpu_ms_per_op=round(excluded_ms, 3),
        p50_ms=round(statistics.median(latencies), 2) if latencies else 0.0,
        p95_ms=round(_percentile(latencies, 0.95), 2),
        p99_ms=round(_percentile(latencies, 0.99), 2),
        note=note,
    )


_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(server_pids: list[int]) -> bool:
    """Servers on the first CPU, this driver on the second: the driver's work then neither
    steals the server's core nor cools its caches, and figures vary less between runs."""
    if len(_CPUS) < 2:
        return False
    first, second, *_ = _CPUS
    for pid in server_pids:
        for thread in os.listdir(f"/proc/{pid}/task"):  # new threads inherit the mask
            os.sched_setaffinity(int(thread), {first})
    os.sched_setaffinity(0, {second})
    return True
