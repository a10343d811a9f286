"""Redis, when configured: login rate limits shared by every node, and revocation wake-ups
published to every node (issue 7, SECURITY.md item 29)."""

from __future__ import annotations

import time

import httpx
import redis

from tests.pg.conftest import REDIS_URL, Cluster
from tests.support.flow import Browser


def test_login_failures_on_node_a_count_on_node_b(cluster: Cluster) -> None:
    username = "mallory-target"
    cluster.a.cli(
        "admin", "users", "create", username, "--password-stdin", input="Correct-Horse-Battery-9\n"
    )
    issuer = cluster.issuer
    for _ in range(5):
        assert (
            _login_at(cluster.a.base_url, issuer, username, "wrong-password-123").status_code == 401
        )
    locked = _login_at(cluster.b.base_url, issuer, username, "Correct-Horse-Battery-9")
    assert locked.status_code == 429, locked.status_code
    assert "Too many failed sign-ins" in locked.text


def _login_at(node_url: str, issuer: str, username: str, password: str) -> httpx.Response:
    browser = Browser(node_url)
    page = browser.authorize(
        response_type="code",
        client_id="tessera-console",
        redirect_uri=f"{issuer}/console/",
        scope="openid",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    assert page.status_code == 200, page.text[:300]
    response = browser.login(page, username, password)
    browser.close()
    return response


def test_a_revocation_on_node_a_is_published_to_every_node(cluster: Cluster) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(cluster.revocation_channel)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    user = cluster.a.cli_json(
        "admin",
        "users",
        "create",
        "wakeup-user",
        "--password-stdin",
        input="Another-Strong-Pass-7\n",
    )
    # An administrator's revocation through node A's process (the CLI writes the same way).
    app = cluster.a.demo["confidential_app"]
    before = time.monotonic()
    httpx.post(
        f"{cluster.a.base_url}/oauth2/v1/revoke",
        auth=(app["client_id"], app["client_secret"]),
        data={"token": "not-a-real-token-but-revocation-runs"},
    )
    cluster.a.cli("admin", "tokens", "revoke", "--user", user["username"])
    message = None
    while time.monotonic() - before < 5 and message is None:
        candidate = pubsub.get_message(timeout=1)
        if candidate and candidate["type"] == "message":
            message = candidate
    pubsub.close()
    assert message is not None, "no wake-up was published"
