"""The revocation feed's query and who may introspect a token (RFC 7662 §2.1, §4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.model import Client, ClientKind
from tessera.oauth import errors
from tessera.oauth.introspection import may_introspect
from tessera.oauth.revocation_feed import parse_feed_query

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def an_app(client_id: str, *serves: str) -> Client:
    return Client(
        client_id, client_id, ClientKind.CONFIDENTIAL, (), (), (), T0, resource_server_for=serves
    )


@pytest.mark.parametrize(
    "wait", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "1e999", "1e3", "-0", " 5", "0x10", ""]
)
def test_feed_wait_that_is_not_plain_finite_seconds_is_invalid_request(wait: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_feed_query({"wait": wait}, set())


def test_feed_wait_is_capped_at_thirty_seconds() -> None:
    assert parse_feed_query({"since": "7", "wait": "20.0"}, set()) == (7, 20.0)
    assert parse_feed_query({"wait": "999999.5"}, set()) == (0, 30.0)
    assert parse_feed_query({}, set()) == (0, 0.0)


@pytest.mark.parametrize("since", ["-1", "1.5", "9" * 19, "abc"])
def test_feed_since_that_is_not_a_sequence_number_is_invalid_request(since: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_feed_query({"since": since}, set())


def test_feed_repeated_parameters_are_invalid_request() -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_feed_query({"wait": "1"}, {"wait"})


def test_only_the_tokens_client_or_a_resource_server_of_its_audience_may_introspect() -> None:
    claims = {"client_id": "web", "aud": "https://orders.test"}
    assert may_introspect(an_app("web"), claims)
    assert may_introspect(an_app("orders-api", "https://orders.test"), claims)
    assert not may_introspect(an_app("other"), claims)
    assert not may_introspect(an_app("reports-api", "https://reports.test"), claims)
    assert may_introspect(an_app("orders-api", "https://orders.test"), {**claims, "aud": [
        "https://x.test", "https://orders.test"]})  # fmt: skip
    assert not may_introspect(an_app("other"), {})
