"""Redis, when configured: login rate limits shared by every node, and revocation wake-ups
published to every node (issue 7, docs/security.md rule 29)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from tessera.store.protocols import Failures
from tessera.store.redis_throttle import RedisLoginThrottle
from tests.pg.conftest import REDIS_URL, Cluster
from tests.support.flow import Browser, form_fields

pytestmark = pytest.mark.postgresql  # the PostgreSQL (and Redis) on 127.0.0.1


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


def test_redis_throttle_gives_each_keys_count_and_latest_failure() -> None:
    throttle = RedisLoginThrottle(
        redis.Redis.from_url(REDIS_URL), f"test-{uuid.uuid4().hex[:12]}", 900
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for seconds in (0, 7, 5):
        throttle.record_failure("ip:1", t0 + timedelta(seconds=seconds))
    assert throttle.recent(["ip:1", "acct:a"], t0 + timedelta(seconds=1)) == {
        "ip:1": Failures(2, t0 + timedelta(seconds=7)),
        "acct:a": Failures(0, None),
    }


def test_a_storm_across_nodes_delays_a_fresh_address_but_not_a_browser_that_signed_in(
    cluster: Cluster,
) -> None:
    """Issue 12 with the counts in Redis: 50 wrong passwords from 10 addresses on node A, the
    owner's browser still signs in on node B (its known-device cookie is the cluster's)."""
    username, password = "storm-target", "Correct-Horse-Battery-8"
    cluster.a.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    owner = _browser_at(cluster.b.base_url, cluster.issuer, "192.0.2.50", username)
    assert owner.post(password=password).status_code == 303
    for i in range(1, 11):
        attacker = _browser_at(cluster.a.base_url, cluster.issuer, f"198.51.100.{i}", username)
        for _ in range(5):
            assert attacker.post(password="wrong-password-123").status_code == 401
    fresh = _browser_at(cluster.b.base_url, cluster.issuer, "192.0.2.77", username)
    delayed = fresh.post(password=password)
    assert delayed.status_code == 429, delayed.status_code
    assert 0 < int(delayed.headers["retry-after"]) <= 900
    signed_in = owner.post(password=password)
    assert signed_in.status_code == 303, signed_in.status_code


class _LoginPage:
    """A browser on the console's sign-in page of one node, behind the trusted proxy."""

    def __init__(self, browser: Browser, page: httpx.Response, username: str) -> None:
        self.browser, self.fields, self.username = browser, form_fields(page.text), username

    def post(self, *, password: str) -> httpx.Response:
        return self.browser.http.post(
            "/oauth2/v1/login",
            data={**self.fields, "username": self.username, "password": password},
        )


def _browser_at(node_url: str, issuer: str, address: str, username: str) -> _LoginPage:
    browser = Browser(node_url)
    browser.http.headers["X-Forwarded-For"] = address
    return _LoginPage(browser, _console_login_page(browser, issuer), username)


def _console_login_page(browser: Browser, issuer: str) -> httpx.Response:
    page = browser.authorize(
        response_type="code",
        client_id="tessera-console",
        redirect_uri=f"{issuer}/console/",
        scope="openid",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    assert page.status_code == 200, page.text[:300]
    return page


def _login_at(node_url: str, issuer: str, username: str, password: str) -> httpx.Response:
    browser = Browser(node_url)
    response = browser.login(_console_login_page(browser, issuer), username, password)
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
