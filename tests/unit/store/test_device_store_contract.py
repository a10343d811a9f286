"""The contract of `DeviceAuthorizationStore` and the unit of work's redemption (RFC 8628),
run against every `Store` implementation (memory, SQLite, PostgreSQL). Each use-once step is
raced by threads released together: one winner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import DeviceAuthorization
from tessera.store.protocols import Conflict, DomainContent, Store
from tests.unit.store.test_domain_store_contract import a_domain
from tests.unit.store.test_store_contract import run_concurrently

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_request(device: str = "d1", user: str = "u1", **kw: Any) -> DeviceAuthorization:
    values: dict[str, Any] = {
        "device_code_hash": device,
        "user_code_hash": user,
        "client_id": "c1",
        "scopes": ("openid", "https://orders.test/read"),
        "audience": "https://orders.test/",
        "created_at": T0,
        "expires_at": at(600),
        "interval": 5,
    }
    values.update(kw)
    return DeviceAuthorization(**values)


def approval(status: str = "approved") -> DeviceAuthorization:
    return a_request(
        "", "", status=status, user_id="u-1", auth_time=T0, amr=("pwd", "otp"), session_id="s1"
    )


def test_add_get_and_find_by_user_code(store: Store) -> None:
    store.device_authorizations.add(a_request())
    assert store.device_authorizations.get("d1") == a_request()
    assert store.device_authorizations.find("u1") == a_request()
    assert store.device_authorizations.get("u1") is None
    assert store.device_authorizations.find("nope") is None


def test_a_taken_user_code_is_a_conflict(store: Store) -> None:
    store.device_authorizations.add(a_request())
    with pytest.raises(Conflict):
        store.device_authorizations.add(a_request("d2", "u1"))
    assert store.device_authorizations.get("d2") is None


def test_a_poll_is_recorded_only_over_the_poll_it_read(store: Store) -> None:
    store.device_authorizations.add(a_request())
    assert store.device_authorizations.poll("d1", 0, 5, at(1))
    assert not store.device_authorizations.poll("d1", 0, 10, at(2))  # stale: lost the race
    assert store.device_authorizations.get("d1") == a_request(polls=1, last_polled_at=at(1))
    assert store.device_authorizations.poll("d1", 1, 10, at(3))
    assert store.device_authorizations.get("d1") == a_request(
        polls=2, last_polled_at=at(3), interval=10
    )


def test_twenty_concurrent_polls_record_one(store: Store) -> None:
    store.device_authorizations.add(a_request())
    results = run_concurrently(20, lambda: store.device_authorizations.poll("d1", 0, 5, at(1)))
    assert sum(results) == 1


def test_a_decision_is_made_once_while_pending_and_live(store: Store) -> None:
    requests = store.device_authorizations
    requests.add(a_request())
    requests.add(a_request("d2", "u2"))
    assert not requests.decide("u2", approval(), at(600))  # expired at `expires_at`
    assert requests.decide("u1", approval(), at(10))
    assert not requests.decide("u1", approval("denied"), at(11))
    decided = requests.get("d1")
    assert decided == a_request(
        status="approved",
        user_id="u-1",
        auth_time=T0,
        amr=("pwd", "otp"),
        session_id="s1",
        decided_at=at(10),
    )
    assert not requests.poll("d1", 0, 5, at(12))  # only a pending request is polled


def test_redeem_has_one_winner_only_for_an_approved_live_request_of_its_app(
    store: Store,
) -> None:
    requests = store.device_authorizations
    requests.add(a_request())
    requests.add(a_request("d2", "u2"))
    requests.add(a_request("d3", "u3"))

    def redeem(device: str, client_id: str = "c1", when: float = 20) -> DeviceAuthorization | None:
        with store.transaction() as work:
            return work.device_authorizations.redeem(device, client_id, at(when))

    assert redeem("d1") is None  # pending
    assert requests.decide("u1", approval(), at(10))
    assert requests.decide("u2", approval("denied"), at(10))
    assert requests.decide("u3", approval(), at(10))
    assert redeem("d2") is None  # denied
    assert redeem("d3", when=600) is None  # expired
    assert redeem("d1", "c2") is None  # another app's
    results = run_concurrently(10, lambda: redeem("d1"))
    won = [r for r in results if r is not None]
    assert len(won) == 1 and won[0].redeemed_at == at(20) and won[0].user_id == "u-1"
    assert redeem("d1") is None


def test_a_rolled_back_unit_of_work_keeps_the_request_unredeemed(store: Store) -> None:
    store.device_authorizations.add(a_request())
    assert store.device_authorizations.decide("u1", approval(), at(1))
    with pytest.raises(RuntimeError), store.transaction() as work:
        assert work.device_authorizations.redeem("d1", "c1", at(2)) is not None
        raise RuntimeError("rolled back")
    found = store.device_authorizations.get("d1")
    assert found is not None and found.redeemed_at is None


def test_requests_are_per_domain_and_purged_when_expired(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    other = store.for_domain("d1")
    store.device_authorizations.add(a_request())
    assert other.device_authorizations.get("d1") is None
    assert other.device_authorizations.find("u1") is None
    other.device_authorizations.add(a_request())  # the same hashes in another domain
    store.device_authorizations.add(a_request("d2", "u2", expires_at=at(601)))
    assert store.device_authorizations.purge(at(600)) == 1
    assert store.device_authorizations.get("d1") is None
    assert store.device_authorizations.get("d2") == a_request("d2", "u2", expires_at=at(601))
    assert other.device_authorizations.get("d1") == a_request()
