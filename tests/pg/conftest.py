"""Two identity-domain nodes on one PostgreSQL database (and Redis), as in production.

These tests need the PostgreSQL and Redis on 127.0.0.1; without them they fail, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.pg import fresh_database
from tests.support.server import SECRET_KEY, Server, free_port, start_server

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Cluster:
    a: Server
    b: Server
    database_url: str

    @property
    def issuer(self) -> str:
        return self.a.issuer

    @property
    def revocation_channel(self) -> str:
        return f"{self.a.env['TESSERA_REDIS_PREFIX']}:revocations"


def require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis is required for these tests at {REDIS_URL}: {exc}") from exc


def start_cluster(tmp: Path, database_url: str, **extra: str) -> Cluster:
    """Node A bootstraps the demo domain; node B joins the same database and issuer."""
    from tessera.store.sql import upgrade

    upgrade(database_url)
    port_a = free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    env = {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_SECRET_KEY": SECRET_KEY,
        "TESSERA_REDIS_URL": REDIS_URL,
        # Each cluster its own keys, so failed logins of earlier runs do not lock this one.
        "TESSERA_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        **extra,
    }
    a = start_server(tmp / "a", port=port_a, extra_env=env, issuer=issuer)
    try:
        b = start_server(tmp / "b", extra_env=env, issuer=issuer)
    except BaseException:
        a.stop()
        raise
    return Cluster(a, b, database_url)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_redis()
    with fresh_database() as url:
        nodes = start_cluster(
            Path(tmp_path_factory.mktemp("cluster")),
            url,
            TESSERA_REFRESH_GRACE_SECONDS="30",
            # Tests play client addresses with X-Forwarded-For from loopback.
            TESSERA_TRUSTED_PROXIES='["127.0.0.1"]',
        )
        try:
            yield nodes
        finally:
            nodes.a.stop()
            nodes.b.stop()
