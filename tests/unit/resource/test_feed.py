"""The revocation feed's freshness on an injected clock: a follower that has not heard from the
identity domain for longer than `max_staleness` fails closed (503 `temporarily_unavailable`, or
the introspection fallback) and recovers on its next successful poll (issue 12)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi import FastAPI, Security
from starlette.exceptions import StarletteDeprecationWarning

from tessera.resource import (
    AccessToken,
    FeedFreshness,
    RevocationFeed,
    RevocationUnavailableError,
    TokenValidator,
)
from tessera.resource.fastapi import TokenDependency
from tests.unit.resource.conftest import AUDIENCE, Idp

with warnings.catch_warnings():  # as in test_adapters.py
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fallback:
    def __init__(self, revoked: bool) -> None:
        self.revoked = revoked
        self.calls = 0

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        self.calls += 1
        return self.revoked


def feed(clock: Clock, **kwargs: Any) -> RevocationFeed:
    # Never started: the tests drive its freshness as a successful poll would.
    return RevocationFeed(
        "http://127.0.0.1:9",
        "rs",
        "secret",
        wait_seconds=5,
        max_staleness=15,
        clock=clock,
        **kwargs,
    )


def test_freshness_goes_from_syncing_to_fresh_to_stale_and_back() -> None:
    freshness = FeedFreshness(max_staleness=15)
    assert freshness.state(0) == "syncing"
    freshness.contact(100)
    assert freshness.state(100) == "fresh"
    assert freshness.state(115) == "fresh"
    assert freshness.state(115.01) == "stale"
    freshness.contact(200)
    assert freshness.state(200) == "fresh"


def test_a_stale_feed_does_not_fail_open_once_synced() -> None:
    clock = Clock()
    follower = feed(clock)
    claims = {"jti": "j1", "sub": "u", "client_id": "c", "iat": 1, "exp": 2**40}
    assert follower.is_revoked("t", claims)  # syncing: fail closed
    follower.freshness.contact(clock())
    assert not follower.is_revoked("t", claims)
    clock.now += 15.5
    assert follower.state == "stale"
    with pytest.raises(RevocationUnavailableError) as raised:
        follower.is_revoked("t", claims)
    assert raised.value.status == 503
    assert raised.value.error == "temporarily_unavailable"
    assert raised.value.headers() == {"Retry-After": "5"}
    follower.freshness.contact(clock())  # the feed answers again
    assert not follower.is_revoked("t", claims)


def test_a_stale_feed_falls_back_to_the_introspection_check() -> None:
    clock = Clock()
    fallback = Fallback(revoked=True)
    follower = feed(clock, fallback=fallback)
    follower.freshness.contact(clock())
    claims = {"jti": "j1"}
    assert not follower.is_revoked("t", claims)
    assert fallback.calls == 0  # fresh: the index alone, no per-token call
    clock.now += 60
    assert follower.is_revoked("t", claims)
    fallback.revoked = False
    assert not follower.is_revoked("t", claims)
    assert fallback.calls == 2


def test_max_staleness_must_exceed_one_long_poll() -> None:
    with pytest.raises(ValueError, match="max_staleness"):
        RevocationFeed("http://127.0.0.1:9", "rs", "s", wait_seconds=20, max_staleness=20)
    assert RevocationFeed("http://127.0.0.1:9", "rs", "s").freshness.max_staleness == 30
    assert (
        RevocationFeed("http://127.0.0.1:9", "rs", "s", wait_seconds=40).freshness.max_staleness
        == 60
    )


def test_a_cached_token_is_refused_with_503_once_the_feed_is_stale(idp: Idp) -> None:
    clock = Clock()
    follower = feed(clock)
    follower.freshness.contact(clock())
    validator = TokenValidator(idp.issuer, AUDIENCE, revocation=follower)
    require_token = TokenDependency(validator)
    app = FastAPI()

    @app.get("/orders")
    def orders(token: AccessToken = Security(require_token, scopes=["orders:read"])) -> str:
        return token.subject

    token = idp.token()
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/orders", headers=headers).status_code == 200
        clock.now += 16
        stale = client.get("/orders", headers=headers)
        assert stale.status_code == 503
        assert stale.json()["detail"]["error"] == "temporarily_unavailable"  # FastAPI's body
        assert stale.headers["Retry-After"] == "5"
        assert "WWW-Authenticate" not in stale.headers
        follower.freshness.contact(clock())
        assert client.get("/orders", headers=headers).status_code == 200
