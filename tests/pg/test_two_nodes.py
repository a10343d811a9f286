"""Two stateless nodes on one PostgreSQL: one winner per code and per refresh token across
nodes, and a revocation taken by node A refused by node B and by a resource server following
node B within a second (issue 7, docs/security.md rules 13, 16, 25)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tessera.resource import RevocationFeed, TokenValidator
from tessera.resource.errors import InvalidTokenError
from tests.pg.conftest import Cluster
from tests.support.flow import exchange_code, user_code

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1

ALICE = "Wonderland-Demo-2026"


def _tokens(cluster: Cluster, browser_node: str) -> tuple[dict[str, Any], str]:
    """Sign alice in on one node; return the demo app and a fresh code."""
    demo = cluster.a.demo
    app = demo["confidential_app"]
    node = cluster.a if browser_node == "a" else cluster.b
    scope = f"openid {demo['resource']['scope']}"
    return app, user_code(node.base_url, "alice", ALICE, app, scope=scope)


def _race(urls: list[str], data: dict[str, str], auth: tuple[str, str]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(urls))
    clients = [httpx.Client(timeout=30) for _ in urls]
    for client, url in zip(clients, urls, strict=True):
        client.get(url.replace("/oauth2/v1/token", "/health/live"))  # warm the connection

    def one(index: int) -> httpx.Response:
        barrier.wait()
        return clients[index].post(urls[index], data=data, auth=auth)

    with ThreadPoolExecutor(len(urls)) as pool:
        responses = list(pool.map(one, range(len(urls))))
    for client in clients:
        client.close()
    return responses


def test_twenty_redemptions_of_one_code_across_two_nodes_give_one_success(
    cluster: Cluster,
) -> None:
    app, code = _tokens(cluster, "a")
    urls = [f"{(cluster.a if i % 2 else cluster.b).base_url}/oauth2/v1/token" for i in range(20)]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uri"]}
    responses = _race(urls, data, (app["client_id"], app["client_secret"]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)


def test_twenty_refreshes_of_one_token_across_two_nodes_make_one_family_member(
    cluster: Cluster,
) -> None:
    app, code = _tokens(cluster, "b")
    auth = (app["client_id"], app["client_secret"])
    first = exchange_code(cluster.a.base_url, app, code)
    urls = [f"{(cluster.a if i % 2 else cluster.b).base_url}/oauth2/v1/token" for i in range(20)]
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    responses = _race(urls, data, auth)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1  # retries inside the grace window get the same successor
    (successor,) = successors
    for node in (cluster.a, cluster.b):
        body = httpx.post(
            f"{node.base_url}/oauth2/v1/introspect", auth=auth, data={"token": successor}
        ).json()
        assert body["active"] is True


def test_a_revocation_on_node_a_is_refused_by_node_b_and_its_follower_within_a_second(
    cluster: Cluster,
) -> None:
    app, code = _tokens(cluster, "a")
    auth = (app["client_id"], app["client_secret"])
    tokens = exchange_code(cluster.a.base_url, app, code)
    access = tokens["access_token"]
    # A resource server that follows node B's revocation feed.
    feed = RevocationFeed(cluster.b.base_url, *auth, wait_seconds=5).start()
    validator = TokenValidator(
        cluster.issuer, cluster.a.demo["resource"]["audience"], revocation=feed
    )
    assert validator.validate(access).subject == cluster.a.demo["user"]["sub"]

    started = time.monotonic()
    revoked = httpx.post(
        f"{cluster.a.base_url}/oauth2/v1/revoke", auth=auth, data={"token": tokens["refresh_token"]}
    )
    assert revoked.status_code == 200
    # Node B refuses at once: introspection reads the shared revocation events.
    body = httpx.post(
        f"{cluster.b.base_url}/oauth2/v1/introspect", auth=auth, data={"token": access}
    ).json()
    assert body == {"active": False}
    refused_at = None
    while time.monotonic() - started < 3:
        try:
            validator.validate(access)
        except InvalidTokenError:
            refused_at = time.monotonic()
            break
        time.sleep(0.01)
    feed.stop()
    assert refused_at is not None, "the follower never heard of the revocation"
    assert refused_at - started < 1.0, f"took {refused_at - started:.3f} s"
