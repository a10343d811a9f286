"""Durability under faults (issue 7, docs/security.md rules 26 and 27): a node killed with SIGKILL
under load loses no token it returned; a database that goes away gives 503s, never tokens, and
service resumes when it returns, without a restart."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pg.conftest import Cluster, require_redis, start_cluster
from tests.support.flow import user_tokens
from tests.support.pg import ADMIN_URL, fresh_database
from tests.support.server import Server, start_server
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1

ALICE = "Wonderland-Demo-2026"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_redis()
    with fresh_database() as url:
        # A long grace window: a rotation whose response died with the node can be retried.
        nodes = start_cluster(tmp_path, url, TESSERA_REFRESH_GRACE_SECONDS="60")
        try:
            yield nodes
        finally:
            nodes.a.stop()
            nodes.b.stop()


def _refresh_token(node: Server) -> str:
    """alice's refresh token of the demo confidential app, from `node`."""
    tokens = user_tokens(node, "alice", ALICE, scope=node.demo["resource"]["scope"])
    return str(tokens["refresh_token"])


def test_kill_9_under_load_loses_no_token_a_client_received(cluster: Cluster) -> None:
    demo = cluster.a.demo
    app = demo["confidential_app"]
    auth = (app["client_id"], app["client_secret"])
    chains = [_refresh_token(cluster.a) for _ in range(4)]
    received: list[list[str]] = [[] for _ in chains]
    access_tokens: list[str] = []
    stop = threading.Event()

    def rotate(index: int) -> None:
        current = chains[index]
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        f"{cluster.a.base_url}/oauth2/v1/token",
                        auth=auth,
                        data={"grant_type": "refresh_token", "refresh_token": current},
                    )
                except httpx.HTTPError:
                    return  # the node died under us
                if response.status_code != 200:
                    return
                current = response.json()["refresh_token"]
                received[index].append(current)
                access_tokens.append(response.json()["access_token"])

    threads = [threading.Thread(target=rotate, args=(i,)) for i in range(len(chains))]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    cluster.a.proc.send_signal(signal.SIGKILL)
    cluster.a.proc.wait()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert all(received), "the load produced no tokens before the kill"
    # Every access token a client received introspects active on the surviving node.
    with httpx.Client(timeout=10) as client:
        for access in access_tokens:
            body = client.post(
                f"{cluster.b.base_url}/oauth2/v1/introspect", auth=auth, data={"token": access}
            ).json()
            assert body["active"] is True, body
    # The last refresh token of each client is active, or, when the node committed its
    # rotation but died before answering, a retry gets the successor (the grace window).
    for chain in received:
        refreshed = httpx.post(
            f"{cluster.b.base_url}/oauth2/v1/token",
            auth=auth,
            data={"grant_type": "refresh_token", "refresh_token": chain[-1]},
        )
        assert refreshed.status_code == 200, refreshed.text
        body = httpx.post(
            f"{cluster.b.base_url}/oauth2/v1/introspect",
            auth=auth,
            data={"token": refreshed.json()["refresh_token"]},
        ).json()
        assert body["active"] is True, body


def test_a_lost_database_gives_503_and_service_resumes_without_a_restart(
    tmp_path: Path,
) -> None:
    host_port = ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port)).start()
    with fresh_database() as direct_url:
        from tessera.store.sql import upgrade

        upgrade(direct_url)
        via_proxy = direct_url.replace(host_port, f"127.0.0.1:{proxy.port}")
        node = start_server(tmp_path / "node", extra_env={"TESSERA_DATABASE_URL": via_proxy})
        try:
            app = node.demo["confidential_app"]
            auth = (app["client_id"], app["client_secret"])
            refresh = _refresh_token(node)
            data = {"grant_type": "client_credentials"}
            assert (
                httpx.post(f"{node.base_url}/oauth2/v1/token", auth=auth, data=data).status_code
                == 200
            )

            proxy.cut()
            statuses = set()
            for _ in range(5):
                response = httpx.post(
                    f"{node.base_url}/oauth2/v1/token",
                    auth=auth,
                    data={"grant_type": "refresh_token", "refresh_token": refresh},
                    timeout=30,
                )
                statuses.add(response.status_code)
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "temporarily_unavailable"
                assert "access_token" not in response.text
            # Nothing is issued while the database is down, even from cached app data.
            cc = httpx.post(f"{node.base_url}/oauth2/v1/token", auth=auth, data=data, timeout=30)
            assert cc.status_code == 503, cc.text
            assert httpx.get(f"{node.base_url}/health/ready", timeout=30).status_code == 503
            revoke = httpx.post(
                f"{node.base_url}/oauth2/v1/revoke", auth=auth, data={"token": refresh}, timeout=30
            )
            assert revoke.status_code == 503  # never a 200 that did nothing

            proxy.start()  # the database is back, on the same address
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                response = httpx.post(
                    f"{node.base_url}/oauth2/v1/token",
                    auth=auth,
                    data={"grant_type": "refresh_token", "refresh_token": refresh},
                    timeout=30,
                )
                if response.status_code == 200:
                    break
                time.sleep(0.25)
            assert response.status_code == 200, response.text
            assert node.proc.poll() is None  # the same process: no restart
        finally:
            node.stop()
            proxy.cut()
