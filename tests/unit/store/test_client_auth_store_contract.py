"""The contract of issue 16's storage, run against every `Store` implementation (memory, SQLite,
PostgreSQL): an app's RFC 7591 metadata and sealed secret, `PushedRequestStore` (RFC 9126) and
`RegistrationTokenStore` (RFC 7591 §3).

Each "use once" step is raced by several threads released together: exactly one wins, and
initial access tokens are never used more than `max_uses` times.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import PushedRequest, RegistrationToken, SecretHash
from tessera.store.protocols import Conflict, DomainContent, NotFound, Store
from tests.unit.store.test_domain_store_contract import a_domain
from tests.unit.store.test_store_contract import a_client, run_concurrently

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARAMS = (
    ("response_type", "code"),
    ("client_id", "c1"),
    ("redirect_uri", "https://app.example.test/cb"),
    ("scope", "openid profile"),
    ("claims", '{"userinfo": {"email": null}}'),
    ("state", "é ✓ & = ?"),
    ("resource", "https://b.test"),
    ("resource", "https://a.test"),  # repeated, and kept in the order pushed
)


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_pushed_request(uri_hash: str = "h1", client_id: str = "c1", **kw: Any) -> PushedRequest:
    values: dict[str, Any] = {
        "uri_hash": uri_hash,
        "client_id": client_id,
        "params": PARAMS,
        "created_at": T0,
        "expires_at": at(60),
    }
    values.update(kw)
    return PushedRequest(**values)


def a_registration_token(
    token_id: str = "rt1", token_hash: str = "hash1", **kw: Any
) -> RegistrationToken:
    values: dict[str, Any] = {"id": token_id, "token_hash": token_hash, "created_at": T0}
    values.update(kw)
    return RegistrationToken(**values)


def winners(results: list[Any]) -> int:
    return sum(1 for won in results if won)


# --- apps --------------------------------------------------------------------------------------


def a_registered_client(**kw: Any) -> Any:
    values: dict[str, Any] = {
        "secret_hashes": (
            SecretHash("new-hash", at(100), sealed=b"\x00\xffsealed\x80" * 5),
            SecretHash("old-hash", T0, expires_at=at(3600)),
        ),
        "token_endpoint_auth_method": "client_secret_jwt",
        "token_endpoint_auth_signing_alg": "HS256",
        "jwks": '{"keys": [{"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"}]}',
        "jwks_uri": "https://app.example.test/" + "j" * 2000,
        "require_pushed_authorization_requests": True,
        "dpop_bound_access_tokens": True,
        "id_token_signed_response_alg": "ES256",
        "profile": "fapi2",
        "registration_token_hash": "r" * 64,
        "details": '{"client_uri": "https://app.example.test", "contacts": ["a@b.test"]}',
    }
    values.update(kw)
    return a_client("c1", "Payroll", **values)


def test_an_app_keeps_its_registration_metadata_and_sealed_secret(store: Store) -> None:
    registered = a_registered_client()
    plain = a_client("c2", "Wiki")
    store.clients.add(registered)
    store.clients.add(plain)
    assert store.clients.get("c1") == registered
    assert store.clients.get("c2") == plain
    assert store.clients.list() == [registered, plain]
    # The defaults: no method (the kind's), RS256 ID tokens, no PAR, no DPoP, no profile.
    got = store.clients.get("c2")
    assert got is not None and got.auth_method == "client_secret_basic"
    assert got.id_token_signed_response_alg == "RS256"
    assert not got.requires_par and got.secret_hashes[0].sealed is None


def test_an_app_update_changes_its_registration_metadata(store: Store) -> None:
    store.clients.add(a_client("c1", "Payroll"))
    changed = a_registered_client(version=2)
    store.clients.update(changed)
    assert store.clients.get("c1") == changed
    back = a_client("c1", "Payroll", version=3, token_endpoint_auth_method="private_key_jwt")
    store.clients.update(back)
    assert store.clients.get("c1") == back


def test_swapping_the_registration_token_touches_nothing_else(store: Store) -> None:
    store.clients.add(a_registered_client(version=1))
    edited = replace(a_registered_client(version=2), name="Edited by an administrator")
    store.clients.update(edited)
    assert edited.registration_token_hash is not None
    assert store.clients.swap_registration_token("c1", edited.registration_token_hash, "new")
    assert store.clients.get("c1") == replace(edited, registration_token_hash="new", version=3)
    # The old hash no longer swaps; nor does an unknown app.
    assert not store.clients.swap_registration_token("c1", edited.registration_token_hash, "x")
    assert not store.clients.swap_registration_token("nope", "new", "x")


def test_concurrent_swaps_with_one_token_let_one_win(store: Store) -> None:
    store.clients.add(a_registered_client(version=1))
    old = a_registered_client().registration_token_hash or ""
    counter = iter(range(100))
    results = run_concurrently(
        8, lambda: store.clients.swap_registration_token("c1", old, f"n{next(counter)}")
    )
    assert winners(results) == 1


# --- pushed requests (RFC 9126) ----------------------------------------------------------------


def test_take_returns_the_pushed_request_once_marked_used(store: Store) -> None:
    pushed = a_pushed_request()
    store.pushed_requests.add(pushed)
    assert store.pushed_requests.take("h1", "c1", at(10)) == replace(pushed, used_at=at(10))
    assert store.pushed_requests.take("h1", "c1", at(11)) is None


def test_take_by_another_client_is_none_and_does_not_use_the_request_up(store: Store) -> None:
    store.pushed_requests.add(a_pushed_request())
    assert store.pushed_requests.take("h1", "c2", at(10)) is None
    assert store.pushed_requests.take("h1", "c1", at(11)) == a_pushed_request(used_at=at(11))


def test_take_of_an_expired_or_unknown_request_is_none(store: Store) -> None:
    store.pushed_requests.add(a_pushed_request())
    store.pushed_requests.add(a_pushed_request("h2"))
    assert store.pushed_requests.take("h1", "c1", at(60)) is None  # expired at `expires_at`
    assert store.pushed_requests.take("nope", "c1", T0) is None
    assert store.pushed_requests.take("h2", "c1", at(59)) is not None


def test_add_of_a_taken_uri_hash_is_a_conflict(store: Store) -> None:
    store.pushed_requests.add(a_pushed_request())
    with pytest.raises(Conflict):
        store.pushed_requests.add(a_pushed_request(client_id="c2"))
    assert store.pushed_requests.take("h1", "c2", T0) is None


def test_pushed_requests_are_per_domain(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    other = store.for_domain("d1")
    store.pushed_requests.add(a_pushed_request())
    assert other.pushed_requests.take("h1", "c1", T0) is None
    other.pushed_requests.add(a_pushed_request(params=()))
    assert other.pushed_requests.take("h1", "c1", T0) == a_pushed_request(params=(), used_at=T0)
    assert store.pushed_requests.take("h1", "c1", T0) == a_pushed_request(used_at=T0)


def test_take_by_twenty_threads_has_one_winner(store: Store) -> None:
    store.pushed_requests.add(a_pushed_request())
    results = run_concurrently(20, lambda: store.pushed_requests.take("h1", "c1", at(1)))
    assert [r for r in results if r is not None] == [a_pushed_request(used_at=at(1))]


def test_pushed_request_purge_deletes_expired_requests_only(store: Store) -> None:
    store.pushed_requests.add(a_pushed_request("old", expires_at=at(60)))
    store.pushed_requests.add(a_pushed_request("due", expires_at=at(120)))
    store.pushed_requests.add(a_pushed_request("live", expires_at=at(121)))
    store.pushed_requests.add(a_pushed_request("used", expires_at=at(121)))
    assert store.pushed_requests.take("used", "c1", at(1)) is not None
    assert store.pushed_requests.purge(at(120)) == 2
    assert store.pushed_requests.purge(at(120)) == 0
    assert store.pushed_requests.take("live", "c1", at(120)) is not None
    store.pushed_requests.add(a_pushed_request("old", expires_at=at(600)))  # the hash is free


# --- registration tokens (RFC 7591 §3) ---------------------------------------------------------


def test_registration_token_add_then_get_and_list_newest_first(store: Store) -> None:
    first = a_registration_token()
    second = a_registration_token(
        "rt2",
        "hash2",
        created_at=at(5),
        expires_at=at(3600),
        max_uses=3,
        created_by="cli:alice",
        description="CI pipeline",
        allowed_scopes=("openid", "https://api.example.test/orders.read"),
    )
    store.registration_tokens.add(first)
    store.registration_tokens.add(second)
    assert store.registration_tokens.get("rt1") == first
    assert store.registration_tokens.get("rt2") == second
    assert store.registration_tokens.get("missing") is None
    assert store.registration_tokens.list() == [second, first]


def test_find_returns_the_token_with_the_hash_usable_or_not(store: Store) -> None:
    scoped = a_registration_token("rt2", "hash2", allowed_scopes=("openid", "email"))
    store.registration_tokens.add(a_registration_token(max_uses=1))
    store.registration_tokens.add(scoped)
    assert store.registration_tokens.find("hash2") == scoped
    assert store.registration_tokens.use("hash1", T0) is not None
    assert store.registration_tokens.find("hash1") == a_registration_token(max_uses=1, uses=1)
    store.registration_tokens.revoke("rt2", at(1))
    assert store.registration_tokens.find("hash2") == replace(scoped, revoked_at=at(1))
    assert store.registration_tokens.find("rt1") is None  # an id is not a hash
    assert store.registration_tokens.find("missing") is None


@pytest.mark.parametrize("taken", [{"token_id": "rt1"}, {"token_hash": "hash1"}])
def test_registration_token_add_with_a_taken_id_or_hash_is_a_conflict(
    store: Store, taken: dict[str, str]
) -> None:
    store.registration_tokens.add(a_registration_token())
    values = {"token_id": "rt2", "token_hash": "hash2", **taken}
    with pytest.raises(Conflict):
        store.registration_tokens.add(a_registration_token(**values, description="again"))
    assert store.registration_tokens.list() == [a_registration_token()]


def test_use_counts_one_use_and_returns_the_token_after_it(store: Store) -> None:
    store.registration_tokens.add(a_registration_token(max_uses=2))
    assert store.registration_tokens.use("hash1", T0) == a_registration_token(max_uses=2, uses=1)
    assert store.registration_tokens.use("hash1", T0) == a_registration_token(max_uses=2, uses=2)
    assert store.registration_tokens.use("hash1", T0) is None  # used up
    assert store.registration_tokens.get("rt1") == a_registration_token(max_uses=2, uses=2)


def test_use_without_a_limit_or_expiry_counts_every_use(store: Store) -> None:
    store.registration_tokens.add(a_registration_token())
    for n in range(1, 4):
        assert store.registration_tokens.use("hash1", at(10**8)) == a_registration_token(uses=n)


def test_use_of_an_expired_revoked_or_unknown_token_is_none_and_counts_nothing(
    store: Store,
) -> None:
    store.registration_tokens.add(a_registration_token(expires_at=at(60)))
    store.registration_tokens.add(a_registration_token("rt2", "hash2"))
    store.registration_tokens.revoke("rt2", at(1))
    assert store.registration_tokens.use("hash1", at(60)) is None  # expired at `expires_at`
    assert store.registration_tokens.use("hash2", at(2)) is None
    assert store.registration_tokens.use("nope", T0) is None
    assert store.registration_tokens.get("rt1") == a_registration_token(expires_at=at(60))
    assert store.registration_tokens.use("hash1", at(59)) is not None


def test_use_by_ten_threads_never_exceeds_max_uses(store: Store) -> None:
    store.registration_tokens.add(a_registration_token(max_uses=3))
    results = run_concurrently(10, lambda: store.registration_tokens.use("hash1", at(1)))
    assert sorted(r.uses for r in results if r is not None) == [1, 2, 3]
    assert store.registration_tokens.get("rt1") == a_registration_token(max_uses=3, uses=3)


def test_use_of_an_unlimited_token_by_ten_threads_loses_no_count(store: Store) -> None:
    store.registration_tokens.add(a_registration_token())
    results = run_concurrently(10, lambda: store.registration_tokens.use("hash1", at(1)))
    assert sorted(r.uses for r in results if r is not None) == list(range(1, 11))


def test_revoke_sets_revoked_at_once_and_a_missing_token_is_not_found(store: Store) -> None:
    store.registration_tokens.add(a_registration_token())
    store.registration_tokens.revoke("rt1", at(5))
    store.registration_tokens.revoke("rt1", at(9))
    assert store.registration_tokens.get("rt1") == a_registration_token(revoked_at=at(5))
    with pytest.raises(NotFound):
        store.registration_tokens.revoke("missing", at(5))


def test_registration_tokens_are_per_domain(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    other = store.for_domain("d1")
    store.registration_tokens.add(a_registration_token())
    assert other.registration_tokens.get("rt1") is None
    assert other.registration_tokens.find("hash1") is None
    assert other.registration_tokens.list() == []
    assert other.registration_tokens.use("hash1", T0) is None
    with pytest.raises(NotFound):
        other.registration_tokens.revoke("rt1", T0)
    other.registration_tokens.add(a_registration_token(max_uses=1))  # same id and hash
    assert other.registration_tokens.use("hash1", T0) is not None
    assert store.registration_tokens.get("rt1") == a_registration_token()


def test_registration_token_purge_deletes_expired_and_revoked_tokens_only(store: Store) -> None:
    tokens = store.registration_tokens
    tokens.add(a_registration_token("expired", "h-expired", expires_at=at(120)))
    tokens.add(a_registration_token("revoked", "h-revoked", expires_at=at(3600)))
    tokens.revoke("revoked", at(60))
    tokens.add(a_registration_token("live", "h-live", expires_at=at(121)))
    tokens.add(a_registration_token("forever", "h-forever"))
    tokens.add(a_registration_token("used-up", "h-used-up", max_uses=1))
    assert tokens.use("h-used-up", T0) is not None
    assert tokens.purge(at(120)) == 2
    assert tokens.purge(at(120)) == 0
    assert sorted(t.id for t in tokens.list()) == ["forever", "live", "used-up"]
