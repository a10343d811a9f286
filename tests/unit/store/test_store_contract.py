"""The store contract: one suite, run against every `Store` implementation.

Each test is named for the rule of `tessera.store.protocols` it checks. Times are fixed aware
UTC datetimes: the store never reads the clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tessera.domain.model import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    Client,
    ClientKind,
    Consent,
    Grant,
    KeyState,
    RefreshToken,
    Resource,
    RevocationKind,
    SecretHash,
    SigningKey,
    User,
)
from tessera.oauth.grants import refresh_token as refresh_rule
from tessera.oauth.grants.refresh_token import RotateOutcome, RotateResult
from tessera.store.protocols import Conflict, Failures, NotFound, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT_TTL = timedelta(hours=1)
GRACE = 10.0  # seconds


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- builders ------------------------------------------------------------------------------


def a_user(user_id: str = "u1", username: str = "alice", **kw: Any) -> User:
    values: dict[str, Any] = {
        "id": user_id,
        "username": username,
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "display_name": username.title(),
        "email": f"{username.lower()}@example.test",
        "is_admin": False,
        "created_at": T0,
        "password_changed_at": T0,
    }
    values.update(kw)
    return User(**values)


def a_client(client_id: str = "c1", name: str = "Payroll", **kw: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": client_id,
        "name": name,
        "kind": ClientKind.CONFIDENTIAL,
        "redirect_uris": ("https://app.example.test/cb", "http://127.0.0.1/cb"),
        "grant_types": ("authorization_code", "refresh_token"),
        "allowed_scopes": ("openid", "profile"),
        "created_at": T0,
        "secret_hashes": (
            SecretHash("new-hash", at(100)),
            SecretHash("old-hash", T0, expires_at=at(3600)),
        ),
        "post_logout_redirect_uris": ("https://app.example.test/bye",),
        "access_ttl": 600,
        "refresh_ttl": 86400,
    }
    values.update(kw)
    return Client(**values)


def a_resource(
    resource_id: str = "r1",
    name: str = "Orders API",
    audience: str = "https://orders.test",
    **kw: Any,
) -> Resource:
    values: dict[str, Any] = {
        "id": resource_id,
        "name": name,
        "audience": audience,
        "scopes": ("orders.read", "orders.write"),
        "created_at": T0,
    }
    values.update(kw)
    return Resource(**values)


def a_key(kid: str = "k1", created_at: datetime = T0, **kw: Any) -> SigningKey:
    values: dict[str, Any] = {
        "kid": kid,
        "alg": "ES256",
        "private_key_enc": b"\x00\x01encrypted\xff",
        "public_jwk": {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": kid},
        "state": KeyState.NEXT,
        "created_at": created_at,
    }
    values.update(kw)
    return SigningKey(**values)


def a_session(id_hash: str = "s1", user_id: str = "u1", **kw: Any) -> BrowserSession:
    values: dict[str, Any] = {
        "id_hash": id_hash,
        "user_id": user_id,
        "auth_time": T0,
        "expires_at": at(3600),
        "csrf_secret": "csrf",
    }
    values.update(kw)
    return BrowserSession(**values)


def a_consent(user_id: str = "u1", client_id: str = "c1", **kw: Any) -> Consent:
    values: dict[str, Any] = {
        "user_id": user_id,
        "client_id": client_id,
        "scopes": ("openid", "profile"),
        "granted_at": T0,
    }
    values.update(kw)
    return Consent(**values)


def a_code(code_hash: str = "code1", **kw: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "code_hash": code_hash,
        "client_id": "c1",
        "user_id": "u1",
        "redirect_uri": "https://app.example.test/cb",
        "scopes": ("openid", "orders.read"),
        "audience": "https://orders.test",
        "auth_time": T0,
        "expires_at": at(60),
        "grant_id": "g1",
        "issued_at": T0,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "nonce": "n-0S6_WzA2Mj",
        "session_id": "s1",
    }
    values.update(kw)
    return AuthorizationCode(**values)


def a_grant(grant_id: str = "g1", **kw: Any) -> Grant:
    values: dict[str, Any] = {
        "grant_id": grant_id,
        "client_id": "c1",
        "user_id": "u1",
        "scopes": ("openid", "orders.read"),
        "audience": "https://orders.test",
        "auth_time": T0,
        "created_at": T0,
        "absolute_expiry": at(30 * 86400),
        "session_id": "s1",
    }
    values.update(kw)
    return Grant(**values)


def a_refresh_token(
    token_hash: str = "rt1", grant_id: str = "g1", issued_at: datetime = T0, **kw: Any
) -> RefreshToken:
    values: dict[str, Any] = {
        "token_hash": token_hash,
        "grant_id": grant_id,
        "issued_at": issued_at,
        "expires_at": issued_at + timedelta(days=1),
    }
    values.update(kw)
    return RefreshToken(**values)


def an_event(type: str = "login.success", at_: datetime = T0, **kw: Any) -> AuditEvent:
    return AuditEvent(type=type, at=at_, **kw)


_R = TypeVar("_R")


def run_concurrently(n: int, call: Callable[[], _R]) -> list[_R]:
    """Run `call` in `n` threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def task() -> _R:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(task) for _ in range(n)]
        return [f.result() for f in futures]


# --- domain, ping, close -------------------------------------------------------------------


def test_ensure_domain_is_idempotent_and_ping_succeeds(store: Store) -> None:
    store.ensure_domain("Default", T0)
    store.ensure_domain("Default", at(1))
    store.ping()


# --- users ---------------------------------------------------------------------------------


def test_user_add_then_get_returns_the_same_user(store: Store) -> None:
    user = a_user(email=None, is_admin=True)
    store.users.add(user)
    assert store.users.get("u1") == user
    assert store.users.get("missing") is None


def test_whether_a_user_s_address_is_verified_is_kept(store: Store) -> None:
    """`email_verified` (docs/federation.md, "Accounts"): false unless set, both ways round."""
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob", email_verified=True))
    alice, bob = store.users.get("u1"), store.users.get("u2")
    assert alice is not None and not alice.email_verified
    assert bob is not None and bob.email_verified
    assert [u.email_verified for u in store.users.find_by_email("BOB@example.test")] == [True]
    store.users.update(replace(alice, email_verified=True))
    store.users.update(replace(bob, email="bob@elsewhere.test", email_verified=False))
    assert [u.email_verified for u in store.users.list()] == [True, False]


def test_user_get_by_username_is_case_insensitive(store: Store) -> None:
    user = a_user(username="Alice")
    store.users.add(user)
    assert store.users.get_by_username("alice") == user
    assert store.users.get_by_username("ALICE") == user
    assert store.users.get_by_username("bob") is None


def test_users_are_found_by_e_mail_address_case_insensitively(store: Store) -> None:
    store.users.add(a_user("u1", "carol", email="Shared@Example.test"))
    store.users.add(a_user("u2", "alice", email="shared@example.test"))
    store.users.add(a_user("u3", "bob", email="bob@example.test"))
    store.users.add(a_user("u4", "dave", email=None))
    found = store.users.find_by_email(" SHARED@example.test ")
    assert [u.username for u in found] == ["alice", "carol"]
    assert store.users.find_by_email("nobody@example.test") == []
    assert store.for_domain("other").users.find_by_email("bob@example.test") == []


def test_user_add_with_a_taken_id_is_a_conflict(store: Store) -> None:
    store.users.add(a_user("u1", "alice"))
    with pytest.raises(Conflict):
        store.users.add(a_user("u1", "bob"))


def test_user_add_with_a_username_differing_only_in_case_is_a_conflict(store: Store) -> None:
    store.users.add(a_user("u1", "alice"))
    with pytest.raises(Conflict):
        store.users.add(a_user("u2", "ALICE"))
    assert store.users.get("u2") is None


def test_user_list_is_ordered_by_username(store: Store) -> None:
    for user_id, username in [("u1", "carol"), ("u2", "alice"), ("u3", "bob")]:
        store.users.add(a_user(user_id, username))
    assert [u.username for u in store.users.list()] == ["alice", "bob", "carol"]


def test_user_update_replaces_the_row(store: Store) -> None:
    store.users.add(a_user())
    changed = a_user(
        username="alice2",
        display_name="Alice Two",
        password_hash="$argon2id$new",
        password_changed_at=at(10),
        disabled_at=at(20),
    )
    store.users.update(changed)
    changed = replace(changed, version=2)  # every update adds one (SCIM's ETag)
    assert store.users.get("u1") == changed
    assert store.users.get_by_username("Alice2") == changed
    assert store.users.get_by_username("alice") is None


def test_user_update_of_a_missing_user_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.users.update(a_user("nobody"))


def test_user_update_to_a_taken_username_is_a_conflict(store: Store) -> None:
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob"))
    with pytest.raises(Conflict):
        store.users.update(a_user("u2", "Alice"))
    assert store.users.get("u2") == a_user("u2", "bob")


# --- clients -------------------------------------------------------------------------------


def test_client_add_then_get_returns_the_same_client(store: Store) -> None:
    client = a_client()
    public = a_client(
        "c2",
        "CLI",
        kind=ClientKind.PUBLIC,
        secret_hashes=(),
        access_ttl=None,
        refresh_ttl=None,
        first_party=True,
    )
    server = a_client("c3", "Orders API", resource_server_for=("https://orders.test",))
    store.clients.add(client)
    store.clients.add(public)
    store.clients.add(server)
    assert store.clients.get("c3") == server
    assert store.clients.get("c1") == client
    assert store.clients.get("c2") == public
    assert store.clients.get("missing") is None


def test_client_add_with_a_taken_client_id_is_a_conflict(store: Store) -> None:
    store.clients.add(a_client("c1", "Payroll"))
    with pytest.raises(Conflict):
        store.clients.add(a_client("c1", "Other"))


def test_client_add_with_a_taken_name_is_a_conflict(store: Store) -> None:
    store.clients.add(a_client("c1", "Payroll"))
    with pytest.raises(Conflict):
        store.clients.add(a_client("c2", "Payroll"))
    assert store.clients.get("c2") is None


def test_client_list_is_ordered_by_name(store: Store) -> None:
    for client_id, name in [("c1", "Zeta"), ("c2", "Alpha"), ("c3", "Mid")]:
        store.clients.add(a_client(client_id, name))
    assert [c.name for c in store.clients.list()] == ["Alpha", "Mid", "Zeta"]


def test_client_update_replaces_the_row(store: Store) -> None:
    store.clients.add(a_client())
    changed = a_client(
        name="Payroll v2",
        redirect_uris=("https://v2.example.test/cb",),
        secret_hashes=(SecretHash("newest", at(500)),),
        version=2,
    )
    store.clients.update(changed)
    assert store.clients.get("c1") == changed


def test_client_update_of_a_missing_client_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.clients.update(a_client("nobody"))


def test_client_delete_removes_it_and_a_missing_one_is_not_found(store: Store) -> None:
    store.clients.add(a_client())
    store.clients.delete("c1")
    assert store.clients.get("c1") is None
    assert store.clients.list() == []
    with pytest.raises(NotFound):
        store.clients.delete("c1")


# --- resources -----------------------------------------------------------------------------


def test_resource_add_then_get_and_get_by_audience(store: Store) -> None:
    resource = a_resource(access_ttl=300, signing_alg="RS256")
    store.resources.add(resource)
    assert store.resources.get("r1") == resource
    assert store.resources.get_by_audience("https://orders.test") == resource
    assert store.resources.get("missing") is None


def test_resource_get_by_audience_is_an_exact_match(store: Store) -> None:
    store.resources.add(a_resource(audience="https://orders.test"))
    assert store.resources.get_by_audience("https://orders.test/") is None
    assert store.resources.get_by_audience("HTTPS://ORDERS.TEST") is None


@pytest.mark.parametrize(
    "duplicate",
    [
        a_resource("r1", "Other name", "https://other.test"),
        a_resource("r2", "Orders API", "https://other.test"),
        a_resource("r2", "Other name", "https://orders.test"),
    ],
    ids=["id", "name", "audience"],
)
def test_resource_add_with_a_taken_id_name_or_audience_is_a_conflict(
    store: Store, duplicate: Resource
) -> None:
    store.resources.add(a_resource("r1", "Orders API", "https://orders.test"))
    with pytest.raises(Conflict):
        store.resources.add(duplicate)
    assert store.resources.list() == [a_resource("r1", "Orders API", "https://orders.test")]


def test_resource_list_is_ordered_by_name(store: Store) -> None:
    store.resources.add(a_resource("r1", "Zeta", "https://z.test"))
    store.resources.add(a_resource("r2", "Alpha", "https://a.test"))
    assert [r.name for r in store.resources.list()] == ["Alpha", "Zeta"]


def test_resource_update_replaces_the_row_and_refuses_a_taken_name_or_missing_id(
    store: Store,
) -> None:
    store.resources.add(a_resource())
    store.resources.add(a_resource("r2", "Billing API", "https://billing.test"))
    edited = a_resource(name="Orders API v2", scopes=("orders.read",), access_ttl=300)
    store.resources.update(edited)
    assert store.resources.get("r1") == edited
    with pytest.raises(Conflict):
        store.resources.update(a_resource(name="Billing API"))
    with pytest.raises(NotFound):
        store.resources.update(a_resource("missing", "Other", "https://other.test"))
    assert store.resources.get("r1") == edited


def test_user_delete_removes_it_frees_the_username_and_a_missing_one_is_not_found(
    store: Store,
) -> None:
    store.users.add(a_user())
    store.users.delete("u1")
    assert store.users.get("u1") is None
    assert store.users.get_by_username("alice") is None
    store.users.add(a_user("u2"))  # the username is free again
    assert store.users.get_by_username("ALICE") == store.users.get("u2")
    with pytest.raises(NotFound):
        store.users.delete("u1")


def test_resource_delete_removes_it_and_a_missing_one_is_not_found(store: Store) -> None:
    store.resources.add(a_resource())
    store.resources.delete("r1")
    assert store.resources.get("r1") is None
    assert store.resources.get_by_audience("https://orders.test") is None
    with pytest.raises(NotFound):
        store.resources.delete("r1")


# --- signing keys --------------------------------------------------------------------------


def test_key_add_then_list_returns_the_same_key(store: Store) -> None:
    key = a_key()
    store.keys.add(key)
    assert store.keys.list() == [key]


def test_key_add_with_a_taken_kid_is_a_conflict(store: Store) -> None:
    store.keys.add(a_key("k1"))
    with pytest.raises(Conflict):
        store.keys.add(a_key("k1", alg="RS256"))


def test_key_list_is_oldest_first(store: Store) -> None:
    store.keys.add(a_key("k-new", created_at=at(200)))
    store.keys.add(a_key("k-old", created_at=at(0)))
    store.keys.add(a_key("k-mid", created_at=at(100)))
    assert [k.kid for k in store.keys.list()] == ["k-old", "k-mid", "k-new"]


def test_key_replace_states_updates_state_activation_and_retirement(store: Store) -> None:
    old = a_key("k1", created_at=at(0), state=KeyState.ACTIVE, activated_at=at(0))
    new = a_key("k2", created_at=at(100))
    store.keys.add(old)
    store.keys.add(new)
    retired = replace(old, state=KeyState.RETIRED, retire_after=at(7200))
    active = replace(new, state=KeyState.ACTIVE, activated_at=at(3600))
    store.keys.replace_states([retired, active])
    assert store.keys.list() == [retired, active]


def test_key_replace_states_changes_no_other_field(store: Store) -> None:
    key = a_key("k1")
    store.keys.add(key)
    store.keys.replace_states(
        [replace(key, alg="RS256", public_jwk={}, private_key_enc=b"x", state=KeyState.ACTIVE)]
    )
    assert store.keys.list() == [replace(key, state=KeyState.ACTIVE)]


def test_key_replace_states_of_a_missing_key_is_not_found_and_changes_nothing(
    store: Store,
) -> None:
    key = a_key("k1")
    store.keys.add(key)
    with pytest.raises(NotFound):
        store.keys.replace_states(
            [replace(key, state=KeyState.ACTIVE), a_key("missing", state=KeyState.ACTIVE)]
        )
    assert store.keys.list() == [key]


def test_key_delete_removes_it_and_a_missing_kid_is_no_error(store: Store) -> None:
    store.keys.add(a_key("k1"))
    store.keys.add(a_key("k2", created_at=at(1)))
    store.keys.delete("k1")
    store.keys.delete("missing")
    assert [k.kid for k in store.keys.list()] == ["k2"]


# --- browser sessions ----------------------------------------------------------------------


def test_session_add_then_get_returns_the_same_session(store: Store) -> None:
    session = a_session()
    store.sessions.add(session)
    assert store.sessions.get("s1") == session
    assert store.sessions.get("missing") is None


def test_session_get_returns_ended_and_expired_sessions_too(store: Store) -> None:
    store.sessions.add(a_session("expired", expires_at=at(-1)))
    store.sessions.add(a_session("ended"))
    store.sessions.end("ended", at(5))
    assert store.sessions.get("expired") == a_session("expired", expires_at=at(-1))
    assert store.sessions.get("ended") == a_session("ended", ended_at=at(5))


def test_session_end_sets_ended_at_only_once(store: Store) -> None:
    store.sessions.add(a_session())
    store.sessions.end("s1", at(5))
    store.sessions.end("s1", at(9))
    session = store.sessions.get("s1")
    assert session is not None and session.ended_at == at(5)


def test_session_end_of_a_missing_session_is_no_error(store: Store) -> None:
    store.sessions.end("missing", at(5))


def test_session_end_all_for_user_ends_open_sessions_and_counts_them(store: Store) -> None:
    store.sessions.add(a_session("s1", "u1"))
    store.sessions.add(a_session("s2", "u1", auth_time=at(10)))
    store.sessions.add(a_session("s3", "u1"))
    store.sessions.end("s3", at(1))
    store.sessions.add(a_session("other", "u2"))

    assert store.sessions.end_all_for_user("u1", at(20)) == 2

    for id_hash in ("s1", "s2"):
        session = store.sessions.get(id_hash)
        assert session is not None and session.ended_at == at(20)
    ended_before = store.sessions.get("s3")
    assert ended_before is not None and ended_before.ended_at == at(1)
    other = store.sessions.get("other")
    assert other is not None and other.ended_at is None
    assert store.sessions.end_all_for_user("u1", at(30)) == 0


def test_session_end_all_for_user_also_ends_expired_but_unended_sessions(store: Store) -> None:
    # "Open" means not ended; expiry is checked by readers, not by end_all_for_user.
    store.sessions.add(a_session("old", "u1", expires_at=at(10)))
    assert store.sessions.end_all_for_user("u1", at(20)) == 1
    old = store.sessions.get("old")
    assert old is not None and old.ended_at == at(20)


def test_session_list_for_user_is_open_unexpired_sessions_newest_first(store: Store) -> None:
    store.sessions.add(a_session("oldest", auth_time=at(0)))
    store.sessions.add(a_session("newest", auth_time=at(200)))
    store.sessions.add(a_session("middle", auth_time=at(100)))
    store.sessions.add(a_session("expired", auth_time=at(300), expires_at=at(500)))
    store.sessions.add(a_session("ended", auth_time=at(400)))
    store.sessions.end("ended", at(450))
    store.sessions.add(a_session("someone-else", "u2", auth_time=at(250)))

    listed = store.sessions.list_for_user("u1", at(500))

    assert [s.id_hash for s in listed] == ["newest", "middle", "oldest"]
    assert store.sessions.list_for_user("nobody", at(500)) == []


# --- consents ------------------------------------------------------------------------------


def test_consent_put_then_get_returns_the_same_consent(store: Store) -> None:
    consent = a_consent()
    store.consents.put(consent)
    assert store.consents.get("u1", "c1") == consent
    assert store.consents.get("u1", "c2") is None
    assert store.consents.get("u2", "c1") is None


def test_consent_put_replaces_the_consent_of_the_same_user_and_client(store: Store) -> None:
    store.consents.put(a_consent())
    store.consents.revoke("u1", "c1", at(5))
    renewed = a_consent(scopes=("openid", "profile", "email"), granted_at=at(10))
    store.consents.put(renewed)
    assert store.consents.get("u1", "c1") == renewed


def test_consent_revoke_sets_revoked_at_once(store: Store) -> None:
    store.consents.put(a_consent())
    assert store.consents.revoke("u1", "c1", at(5)) is True
    assert store.consents.revoke("u1", "c1", at(9)) is False
    assert store.consents.get("u1", "c1") == a_consent(revoked_at=at(5))


def test_consent_revoke_of_a_missing_consent_is_false(store: Store) -> None:
    assert store.consents.revoke("u1", "c1", at(5)) is False


def test_consent_list_for_user_returns_unrevoked_consents_of_the_user(store: Store) -> None:
    store.consents.put(a_consent("u1", "c1"))
    store.consents.put(a_consent("u1", "c2"))
    store.consents.put(a_consent("u1", "c3"))
    store.consents.revoke("u1", "c2", at(5))
    store.consents.put(a_consent("u2", "c1"))
    listed = store.consents.list_for_user("u1")
    assert sorted(listed, key=lambda c: c.client_id) == [
        a_consent("u1", "c1"),
        a_consent("u1", "c3"),
    ]


# --- authorization codes -------------------------------------------------------------------


def test_code_consume_by_the_first_caller_wins(store: Store) -> None:
    store.codes.add(a_code())
    code, won = store.codes.consume("code1", at(10))
    assert won is True
    assert code is not None
    assert replace(code, consumed_at=None) == a_code()


def test_code_second_consume_loses_and_shows_consumed_at(store: Store) -> None:
    store.codes.add(a_code())
    store.codes.consume("code1", at(10))
    code, won = store.codes.consume("code1", at(11))
    assert won is False
    assert code is not None and code.consumed_at == at(10)


def test_code_consume_after_expiry_loses_with_consumed_at_unset(store: Store) -> None:
    store.codes.add(a_code(expires_at=at(60)))
    code, won = store.codes.consume("code1", at(60))
    assert won is False
    assert code == a_code(expires_at=at(60))
    assert code is not None and code.consumed_at is None


def test_code_consume_of_an_unknown_code_is_none(store: Store) -> None:
    assert store.codes.consume("unknown", at(10)) == (None, False)


def test_code_consumed_by_twenty_threads_has_exactly_one_winner(store: Store) -> None:
    store.codes.add(a_code())
    results = run_concurrently(20, lambda: store.codes.consume("code1", at(10)))
    assert sum(won for _, won in results) == 1
    assert all(code is not None and code.code_hash == "code1" for code, _ in results)
    assert all(code is not None and code.consumed_at == at(10) for code, won in results if not won)


def test_code_purge_deletes_expired_codes_only(store: Store) -> None:
    store.codes.add(a_code("expired", expires_at=at(60)))
    store.codes.add(a_code("live", expires_at=at(120)))
    assert store.codes.purge(at(60)) == 1
    assert store.codes.consume("expired", at(61)) == (None, False)
    assert store.codes.consume("live", at(61))[1] is True


# --- grants --------------------------------------------------------------------------------


def test_grant_start_inserts_the_grant_and_its_first_refresh_token(store: Store) -> None:
    grant, token = a_grant(), a_refresh_token()
    store.grants.start(grant, token)
    assert store.grants.get("g1") == grant
    assert store.refresh_tokens.get("rt1") == token


def test_grant_start_without_a_refresh_token(store: Store) -> None:
    store.grants.start(a_grant(audience=None, session_id=None), None)
    assert store.grants.get("g1") == a_grant(audience=None, session_id=None)
    assert store.grants.get("missing") is None


def test_grant_revoke_sets_revoked_at_and_appends_a_grant_event(store: Store) -> None:
    store.grants.start(a_grant(), None)
    seq_before = store.revocations.last_seq()

    assert store.grants.revoke("g1", at(50), at(50) + EVENT_TTL) is True

    assert store.grants.get("g1") == a_grant(revoked_at=at(50))
    [event] = store.revocations.since(seq_before)
    assert (event.kind, event.key, event.expires_at) == (
        RevocationKind.GRANT,
        "g1",
        at(50) + EVENT_TTL,
    )
    assert event.created_at == at(50)


def test_grant_second_revoke_is_false_and_keeps_the_first_revocation_time(store: Store) -> None:
    store.grants.start(a_grant(), None)
    store.grants.revoke("g1", at(50), at(50) + EVENT_TTL)
    assert store.grants.revoke("g1", at(60), at(60) + EVENT_TTL) is False
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at == at(50)


def test_grant_revoke_of_an_unknown_id_is_false_but_still_appends_an_event(store: Store) -> None:
    assert store.grants.revoke("ghost", at(50), at(50) + EVENT_TTL) is False
    [event] = store.revocations.since(0)
    assert (event.kind, event.key) == (RevocationKind.GRANT, "ghost")


def test_grant_list_active_is_unrevoked_unexpired_grants_newest_first(store: Store) -> None:
    store.grants.start(a_grant("old", created_at=at(0)), None)
    store.grants.start(a_grant("new", created_at=at(20)), None)
    store.grants.start(a_grant("mid", created_at=at(10)), None)
    store.grants.start(a_grant("revoked", created_at=at(30)), None)
    store.grants.revoke("revoked", at(40), at(40) + EVENT_TTL)
    store.grants.start(a_grant("expired", created_at=at(30), absolute_expiry=at(100)), None)

    active = store.grants.list_active(at(100))

    assert [g.grant_id for g in active] == ["new", "mid", "old"]


def test_grant_list_active_filters_by_user_and_client(store: Store) -> None:
    store.grants.start(a_grant("u1c1", user_id="u1", client_id="c1", created_at=at(1)), None)
    store.grants.start(a_grant("u1c2", user_id="u1", client_id="c2", created_at=at(2)), None)
    store.grants.start(a_grant("u2c1", user_id="u2", client_id="c1", created_at=at(3)), None)

    def ids(**kw: str) -> list[str]:
        return [g.grant_id for g in store.grants.list_active(at(10), **kw)]

    assert ids(user_id="u1") == ["u1c2", "u1c1"]
    assert ids(client_id="c1") == ["u2c1", "u1c1"]
    assert ids(user_id="u1", client_id="c1") == ["u1c1"]
    assert ids(user_id="nobody") == []


# --- refresh tokens ------------------------------------------------------------------------


def start_family(store: Store, **grant_kw: Any) -> None:
    """Grant g1 with its first refresh token rt1 (issued at T0, expiring after a day)."""
    store.grants.start(a_grant(**grant_kw), a_refresh_token("rt1"))


def successor(token_hash: str = "rt2", parent: str = "rt1", at_: datetime = T0) -> RefreshToken:
    return a_refresh_token(token_hash, issued_at=at_, parent_hash=parent)


def rotate_in_store(
    store: Store,
    token_hash: str,
    succ: RefreshToken,
    now: datetime,
    grace: float,
    event_expires_at: datetime,
    client_id: str = "c1",
) -> RotateResult:
    """A rotation as the token endpoint runs it: the rule of `tessera.oauth.grants.refresh_token`
    on the store's primitives, in one unit of work."""
    with store.transaction() as work:
        return refresh_rule.rotate(work, token_hash, succ, client_id, now, grace, event_expires_at)


def redeem(
    store: Store,
    code_hash: str,
    now: datetime,
    issue: Callable[[AuthorizationCode], tuple[Grant, RefreshToken | None]],
) -> tuple[AuthorizationCode | None, bool]:
    """A redemption on the store's primitives in one unit of work, as the token endpoint runs
    it (`tessera.oauth.grants.authorization_code`): consume, the subject's cut-off, then `issue`
    (the checks) and the grant; a failed check still commits the consume, then raises."""
    failure: Exception | None = None
    with store.transaction() as work:
        code, won = work.codes.consume(code_hash, now)
        if won and code is not None:
            if work.revocations.cut_off_after(code.user_id, code.issued_at):
                return code, False
            try:
                grant, refresh_token = issue(code)
            except Exception as exc:
                failure = exc
            else:
                work.grants.start(grant, refresh_token)
    if failure is not None:
        raise failure
    return code, won


def rotate(
    store: Store, token_hash: str, succ: RefreshToken, now: datetime
) -> tuple[RotateOutcome, str | None]:
    result = rotate_in_store(store, token_hash, succ, now, GRACE, now + EVENT_TTL)
    return result.outcome, (result.token.token_hash if result.token else None)


def test_rotate_marks_the_token_used_and_inserts_the_successor(store: Store) -> None:
    start_family(store)
    succ = successor(at_=at(100))

    result = rotate_in_store(store, "rt1", succ, at(100), GRACE, at(100) + EVENT_TTL)

    assert result.outcome is RotateOutcome.ROTATED
    assert result.token is not None and result.token.token_hash == "rt1"
    assert result.grant == a_grant()
    assert store.refresh_tokens.get("rt1") == a_refresh_token(
        "rt1", used_at=at(100), successor_hash="rt2"
    )
    assert store.refresh_tokens.get("rt2") == succ


def test_rotate_of_the_successor_rotates_again(store: Store) -> None:
    start_family(store)
    rotate(store, "rt1", successor("rt2", "rt1", at(100)), at(100))
    assert rotate(store, "rt2", successor("rt3", "rt2", at(200)), at(200)) == (
        RotateOutcome.ROTATED,
        "rt2",
    )


def test_rotate_retry_inside_grace_with_the_same_successor_is_retry(store: Store) -> None:
    start_family(store)
    succ = successor(at_=at(100))
    rotate(store, "rt1", succ, at(100))

    result = rotate_in_store(store, "rt1", succ, at(105), GRACE, at(105) + EVENT_TTL)

    assert result.outcome is RotateOutcome.RETRY
    assert result.token is not None and result.token.successor_hash == "rt2"
    assert result.grant == a_grant()
    assert store.refresh_tokens.get("rt1") == a_refresh_token(
        "rt1", used_at=at(100), successor_hash="rt2"
    )
    assert store.refresh_tokens.get("rt2") == succ
    assert store.revocations.last_seq() == 0


def test_rotate_reuse_outside_grace_is_replay_and_revokes_the_grant(store: Store) -> None:
    start_family(store)
    succ = successor(at_=at(100))
    rotate(store, "rt1", succ, at(100))

    result = rotate_in_store(
        store, "rt1", succ, at(100 + GRACE), GRACE, at(100 + GRACE) + EVENT_TTL
    )

    assert result.outcome is RotateOutcome.REPLAY
    assert result.token is not None and result.token.token_hash == "rt1"
    assert store.grants.get("g1") == a_grant(revoked_at=at(100 + GRACE))
    [event] = store.revocations.since(0)
    assert (event.kind, event.key, event.expires_at) == (
        RevocationKind.GRANT,
        "g1",
        at(100 + GRACE) + EVENT_TTL,
    )
    # The family is dead: the successor no longer rotates.
    assert rotate(store, "rt2", successor("rt3", "rt2"), at(120))[0] is RotateOutcome.INVALID


def test_rotate_reuse_inside_grace_asking_another_successor_is_replay(store: Store) -> None:
    start_family(store)
    rotate(store, "rt1", successor("rt2"), at(100))
    assert rotate(store, "rt1", successor("rt2-other"), at(101))[0] is RotateOutcome.REPLAY
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at == at(101)
    assert store.refresh_tokens.get("rt2-other") is None


def test_rotate_reuse_of_a_used_token_after_its_expiry_is_replay(store: Store) -> None:
    # Used tokens are reuse first: only an unused token is INVALID for being expired.
    start_family(store)
    rotate(store, "rt1", successor("rt2"), at(100))
    outcome, _ = rotate(store, "rt1", successor("rt2"), at(2 * 86400))
    assert outcome is RotateOutcome.REPLAY


def test_rotate_of_an_unknown_token_is_invalid(store: Store) -> None:
    result = rotate_in_store(store, "nope", successor(), at(1), GRACE, at(1) + EVENT_TTL)
    assert result.outcome is RotateOutcome.INVALID
    assert result.token is None
    assert store.refresh_tokens.get("rt2") is None


def test_rotate_of_an_expired_token_is_invalid(store: Store) -> None:
    start_family(store)
    assert rotate(store, "rt1", successor(), at(86400)) == (RotateOutcome.INVALID, "rt1")
    assert store.refresh_tokens.get("rt2") is None
    assert store.refresh_tokens.get("rt1") == a_refresh_token("rt1")
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at is None


def test_rotate_of_a_token_of_a_revoked_grant_is_invalid(store: Store) -> None:
    start_family(store)
    store.grants.revoke("g1", at(10), at(10) + EVENT_TTL)
    seq = store.revocations.last_seq()
    assert rotate(store, "rt1", successor(), at(20)) == (RotateOutcome.INVALID, "rt1")
    assert store.refresh_tokens.get("rt2") is None
    assert store.revocations.last_seq() == seq


def test_rotate_of_a_token_of_a_grant_past_its_absolute_expiry_is_invalid(store: Store) -> None:
    start_family(store, absolute_expiry=at(50))
    assert rotate(store, "rt1", successor(), at(50)) == (RotateOutcome.INVALID, "rt1")
    assert store.refresh_tokens.get("rt2") is None


def test_rotate_by_twenty_threads_gives_one_rotated_and_the_rest_retry(store: Store) -> None:
    start_family(store)
    succ = successor(at_=at(100))

    results = run_concurrently(
        20,
        lambda: rotate_in_store(store, "rt1", succ, at(100), GRACE, at(100) + EVENT_TTL),
    )

    outcomes = [r.outcome for r in results]
    assert outcomes.count(RotateOutcome.ROTATED) == 1
    assert outcomes.count(RotateOutcome.RETRY) == 19
    # Exactly one successor row: the one recorded on the presented token, itself unused.
    assert store.refresh_tokens.get("rt1") == a_refresh_token(
        "rt1", used_at=at(100), successor_hash="rt2"
    )
    assert store.refresh_tokens.get("rt2") == succ
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at is None
    assert store.revocations.last_seq() == 0


def test_refresh_token_purge_deletes_expired_tokens_and_tokens_of_ended_grants(
    store: Store,
) -> None:
    store.grants.start(a_grant("live"), a_refresh_token("live-rt", "live"))
    store.grants.start(a_grant("live2"), a_refresh_token("expired-rt", "live2", expires_at=at(100)))
    store.grants.start(a_grant("revoked"), a_refresh_token("revoked-rt", "revoked"))
    store.grants.revoke("revoked", at(10), at(10) + EVENT_TTL)
    store.grants.start(
        a_grant("ended", absolute_expiry=at(100)), a_refresh_token("ended-rt", "ended")
    )

    assert store.refresh_tokens.purge(at(100)) == 3

    assert store.refresh_tokens.get("live-rt") == a_refresh_token("live-rt", "live")
    for gone in ("expired-rt", "revoked-rt", "ended-rt"):
        assert store.refresh_tokens.get(gone) is None


# --- revocation events ---------------------------------------------------------------------


def test_revocation_append_returns_strictly_increasing_seq_from_one(store: Store) -> None:
    assert store.revocations.last_seq() == 0
    seqs = [
        store.revocations.append(RevocationKind.JTI, f"jti-{i}", at(i), at(3600), at(i))
        for i in range(3)
    ]
    assert seqs == [1, 2, 3]
    assert store.revocations.last_seq() == 3


def test_revocation_last_seq_async_sees_every_append_made_before_it(store: Store) -> None:
    """The event-loop variant answers as fresh as `last_seq`, also when many ask at once (on
    PostgreSQL concurrent callers share a query that started after they asked)."""

    async def check() -> None:
        assert await store.revocations.last_seq_async() == 0
        for i in range(5):
            seq = store.revocations.append(RevocationKind.JTI, f"j{i}", at(i), at(3600), at(i))
            answers = await asyncio.gather(*(store.revocations.last_seq_async() for _ in range(10)))
            assert answers == [seq] * 10

    asyncio.run(check())


def test_revocation_since_returns_later_events_ascending_up_to_limit(store: Store) -> None:
    store.revocations.append(RevocationKind.JTI, "j1", at(0), at(3600), at(0))
    store.revocations.append(RevocationKind.GRANT, "g1", at(1), at(3600), at(1))
    store.revocations.append(RevocationKind.SUBJECT, "u1", at(2), at(7200), at(2))

    events = store.revocations.since(1)
    assert [(e.seq, e.kind, e.key) for e in events] == [
        (2, RevocationKind.GRANT, "g1"),
        (3, RevocationKind.SUBJECT, "u1"),
    ]
    assert (events[1].not_before, events[1].expires_at, events[1].created_at) == (
        at(2),
        at(7200),
        at(2),
    )
    assert [e.seq for e in store.revocations.since(0, limit=2)] == [1, 2]
    assert store.revocations.since(3) == []


def test_revocation_purge_deletes_events_whose_expiry_has_passed(store: Store) -> None:
    store.revocations.append(RevocationKind.JTI, "short", at(0), at(100), at(0))
    store.revocations.append(RevocationKind.JTI, "long", at(0), at(200), at(0))
    assert store.revocations.purge(at(100)) == 1
    assert [e.key for e in store.revocations.since(0)] == ["long"]
    assert store.revocations.last_seq() == 2


def test_revocation_seq_is_not_reused_after_a_purge_of_every_event(store: Store) -> None:
    # A follower that saw seq 2 must see the next event, also when the table was emptied.
    store.revocations.append(RevocationKind.JTI, "j1", at(0), at(100), at(0))
    store.revocations.append(RevocationKind.JTI, "j2", at(0), at(100), at(0))
    store.revocations.purge(at(100))
    seq = store.revocations.append(RevocationKind.JTI, "j3", at(101), at(200), at(101))
    assert seq > 2
    assert [e.key for e in store.revocations.since(2)] == ["j3"]


# --- login throttle ------------------------------------------------------------------------


def test_login_failures_count_attempts_at_or_after_since(store: Store) -> None:
    for seconds in (0, 10, 20):
        store.login_throttle.record_failure("alice|203.0.113.7", at(seconds))
    store.login_throttle.record_failure("bob", at(10))
    assert store.login_throttle.failures("alice|203.0.113.7", at(10)) == 2
    assert store.login_throttle.failures("alice|203.0.113.7", at(0)) == 3
    assert store.login_throttle.failures("alice|203.0.113.7", at(21)) == 0
    assert store.login_throttle.failures("nobody", at(0)) == 0


def test_login_clear_forgets_the_failures_of_that_key_only(store: Store) -> None:
    store.login_throttle.record_failure("alice", at(0))
    store.login_throttle.record_failure("bob", at(0))
    store.login_throttle.clear("alice")
    store.login_throttle.clear("nobody")
    assert store.login_throttle.failures("alice", at(0)) == 0
    assert store.login_throttle.failures("bob", at(0)) == 1


def test_login_purge_deletes_failures_recorded_before_the_cutoff(store: Store) -> None:
    store.login_throttle.record_failure("alice", at(0))
    store.login_throttle.record_failure("alice", at(10))
    store.login_throttle.record_failure("bob", at(5))
    assert store.login_throttle.purge(at(10)) == 2
    assert store.login_throttle.failures("alice", at(0)) == 1
    assert store.login_throttle.failures("bob", at(0)) == 0


# --- audit ---------------------------------------------------------------------------------


def test_audit_append_assigns_increasing_ids_and_query_is_newest_first(store: Store) -> None:
    store.audit.append(
        [
            an_event(
                "login.success",
                at(0),
                actor="alice",
                user_id="u1",
                ip="203.0.113.7",
                details={"method": "password", "mfa": False},
            ),
            an_event("token.issued", at(1), user_id="u1", client_id="c1", details={"n": 1}),
        ]
    )
    store.audit.append([an_event("login.failure", at(2), details={"reason": "bad password"})])

    events = store.audit.query()

    assert [e.type for e in events] == ["login.failure", "token.issued", "login.success"]
    ids = [e.id for e in events]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids, key=lambda i: i or 0, reverse=True)
    assert len(set(ids)) == 3
    assert replace(events[2], id=None) == an_event(
        "login.success",
        at(0),
        actor="alice",
        user_id="u1",
        ip="203.0.113.7",
        details={"method": "password", "mfa": False},
    )


def test_audit_append_of_no_events_is_a_no_op(store: Store) -> None:
    store.audit.append([])
    assert store.audit.query() == []


def test_audit_query_filters_by_type_user_and_client(store: Store) -> None:
    store.audit.append(
        [
            an_event("login.success", at(0), user_id="u1"),
            an_event("token.issued", at(1), user_id="u1", client_id="c1"),
            an_event("token.issued", at(2), user_id="u2", client_id="c1"),
            an_event("token.issued", at(3), user_id="u1", client_id="c2"),
        ]
    )

    def times(**kw: Any) -> list[datetime]:
        return [e.at for e in store.audit.query(**kw)]

    assert times(type="token.issued") == [at(3), at(2), at(1)]
    assert times(user_id="u1") == [at(3), at(1), at(0)]
    assert times(client_id="c1") == [at(2), at(1)]
    assert times(type="token.issued", user_id="u1", client_id="c1") == [at(1)]
    assert times(type="nothing") == []


def test_audit_query_since_is_inclusive_and_until_is_exclusive(store: Store) -> None:
    store.audit.append([an_event("e", at(s)) for s in range(5)])
    assert [e.at for e in store.audit.query(since=at(1), until=at(3))] == [at(2), at(1)]
    assert [e.at for e in store.audit.query(since=at(3))] == [at(4), at(3)]
    assert [e.at for e in store.audit.query(until=at(1))] == [at(0)]


def test_audit_query_pages_backwards_with_before_id(store: Store) -> None:
    store.audit.append([an_event("e", at(s)) for s in range(5)])

    first = store.audit.query(limit=2)
    assert [e.at for e in first] == [at(4), at(3)]
    second = store.audit.query(limit=2, before_id=first[-1].id)
    assert [e.at for e in second] == [at(2), at(1)]
    third = store.audit.query(limit=2, before_id=second[-1].id)
    assert [e.at for e in third] == [at(0)]
    assert store.audit.query(limit=2, before_id=third[-1].id) == []


def test_audit_query_limit_applies_after_the_filters(store: Store) -> None:
    store.audit.append(
        [
            an_event("a", at(0)),
            an_event("b", at(1)),
            an_event("a", at(2)),
            an_event("b", at(3)),
        ]
    )
    assert [e.at for e in store.audit.query(type="a", limit=1)] == [at(2)]


def test_a_grant_revoked_before_it_is_started_is_stored_revoked(store: Store) -> None:
    # A replayed code may revoke the grant it names before the winning redemption writes it.
    store.grants.revoke("g1", at(0), at(3600))
    store.grants.start(a_grant("g1"), a_refresh_token("r1", "g1"))
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at is not None
    result = rotate_in_store(store, "r1", a_refresh_token("r2", "g1"), at(1), GRACE, at(3600))
    assert result.outcome is RotateOutcome.INVALID


def test_redeem_consumes_and_starts_the_grant_in_one_step(store: Store) -> None:
    store.codes.add(a_code("c1"))
    code, won = redeem(
        store, "c1", at(1), lambda c: (a_grant(c.grant_id), a_refresh_token("r1", c.grant_id))
    )
    assert won and code is not None and code.consumed_at == at(1)
    assert store.grants.get(code.grant_id) is not None
    assert store.refresh_tokens.get("r1") is not None


def test_redeem_that_fails_its_checks_burns_the_code_and_writes_nothing(store: Store) -> None:
    store.codes.add(a_code("c1"))

    def refuse(_: AuthorizationCode) -> tuple[Grant, RefreshToken | None]:
        raise ValueError("wrong verifier")

    with pytest.raises(ValueError):
        redeem(store, "c1", at(1), refuse)
    code, won = redeem(store, "c1", at(2), lambda c: (a_grant(c.grant_id), None))
    assert not won and code is not None and code.consumed_at == at(1)
    assert store.grants.get(code.grant_id) is None


def test_twenty_parallel_redemptions_start_exactly_one_grant(store: Store) -> None:
    store.codes.add(a_code("c1"))
    barrier = threading.Barrier(20)
    counter = iter(range(100))

    def one(_: int) -> bool:
        barrier.wait()
        _, won = redeem(
            store,
            "c1",
            at(1),
            lambda c: (a_grant(c.grant_id), a_refresh_token(f"r{next(counter)}", c.grant_id)),
        )
        return won

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert results.count(True) == 1


def test_rotate_for_another_client_is_foreign_and_writes_nothing(store: Store) -> None:
    store.grants.start(a_grant("g1"), a_refresh_token("r1", "g1"))
    result = rotate_in_store(
        store, "r1", a_refresh_token("r2", "g1"), at(1), GRACE, at(3600), client_id="someone-else"
    )
    assert result.outcome is RotateOutcome.FOREIGN
    token = store.refresh_tokens.get("r1")
    assert token is not None and token.used_at is None
    assert store.refresh_tokens.get("r2") is None


def test_login_throttle_counts_several_keys_at_once_with_the_latest_failure(
    store: Store,
) -> None:
    store.login_throttle.record_failure("ip:1", at(0))
    store.login_throttle.record_failure("ip:1", at(7))
    store.login_throttle.record_failure("ip:1", at(5))
    store.login_throttle.record_failure("pair:a|1", at(5))
    assert store.login_throttle.recent(["ip:1", "pair:a|1", "acct:a"], at(1)) == {
        "ip:1": Failures(2, at(7)),
        "pair:a|1": Failures(1, at(5)),
        "acct:a": Failures(0, None),
    }


def test_a_single_statement_connection_refuses_a_second_statement(tmp_path: Path) -> None:
    """`fast_statement` autocommits; two statements there would not be one transaction."""
    from tessera.store.sql import schema
    from tessera.store.sql.engine import make_engine
    from tessera.store.sql.fast import fast_statement
    from tessera.store.sql.store import _lookup

    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    schema.metadata.create_all(engine)
    lookup = _lookup(schema.users, "id")
    with fast_statement(engine) as tx:
        assert tx.first(lookup, {"domain_id": "d", "id": "u"}) is None
        with pytest.raises(RuntimeError, match="one statement"):
            tx.first(lookup, {"domain_id": "d", "id": "u"})
    engine.dispose()


# --- issue 12: codes and refresh retries after a revocation ------------------------------------


def test_a_code_issued_before_a_password_change_or_revocation_is_never_redeemed(
    store: Store,
) -> None:
    # The cut-off event came after the code was issued: redeeming it must start no grant.
    store.codes.add(a_code("c1", issued_at=at(1)))
    store.codes.add(a_code("c2", issued_at=at(1), user_id="u2", grant_id="g2"))
    store.revocations.append(RevocationKind.SUBJECT, "u1", at(5), at(3600), at(5))

    code, won = redeem(store, "c1", at(6), lambda c: (a_grant(c.grant_id), None))

    assert not won and code is not None and code.consumed_at == at(6)
    assert store.grants.get("g1") is None
    # Another user's code, and a code issued after the cut-off, are redeemed.
    _, won = redeem(store, "c2", at(6), lambda c: (a_grant(c.grant_id, user_id="u2"), None))
    assert won
    store.codes.add(a_code("c3", issued_at=at(7), grant_id="g3"))
    _, won = redeem(store, "c3", at(8), lambda c: (a_grant(c.grant_id), None))
    assert won


def test_revoking_a_user_burns_the_users_outstanding_codes(store: Store) -> None:
    store.codes.add(a_code("c1"))
    store.codes.add(a_code("c2", grant_id="g2"))
    store.codes.add(a_code("c3", user_id="u2", grant_id="g3"))

    assert store.codes.burn_for_user("u1", at(2)) == 2

    code, won = redeem(store, "c1", at(3), lambda c: (a_grant(c.grant_id), None))
    assert not won and code is not None and code.consumed_at == at(2)
    assert store.grants.get("g1") is None
    _, won = redeem(store, "c3", at(3), lambda c: (a_grant(c.grant_id, user_id="u2"), None))
    assert won


def test_a_grace_retry_after_the_successor_was_used_is_a_replay(store: Store) -> None:
    # RFC 9700 §4.14.2: the old token presented again once its successor has been used is a
    # replay (someone else holds the family), not a lost response.
    start_family(store)
    rotate(store, "rt1", successor("rt2", "rt1", at(100)), at(100))
    rotate(store, "rt2", successor("rt3", "rt2", at(101)), at(101))

    outcome, _ = rotate(store, "rt1", successor("rt2", "rt1", at(102)), at(102))

    assert outcome is RotateOutcome.REPLAY
    grant = store.grants.get("g1")
    assert grant is not None and grant.revoked_at == at(102)
    assert rotate(store, "rt3", successor("rt4", "rt3"), at(103))[0] is RotateOutcome.INVALID


def test_a_grace_retry_for_the_client_after_the_successor_was_used_is_a_replay(
    store: Store,
) -> None:
    # The same through the client-bound rotation (the SQL store's one-statement path first).
    start_family(store)
    for token, succ, t in (("rt1", "rt2", 100), ("rt2", "rt3", 101)):
        result = rotate_in_store(
            store,
            token,
            successor(succ, token, at(t)),
            at(t),
            GRACE,
            at(t) + EVENT_TTL,
            client_id="c1",
        )
        assert result.outcome is RotateOutcome.ROTATED
    result = rotate_in_store(
        store, "rt1", successor("rt2", "rt1", at(102)), at(102), GRACE, at(3600), client_id="c1"
    )
    assert result.outcome is RotateOutcome.REPLAY


def test_a_redemption_racing_a_revocation_of_its_user_leaves_no_live_grant(store: Store) -> None:
    # Either the redemption sees the cut-off and is refused, or the revocation sees the grant
    # it wrote and revokes it: never a 90-day family that outlives the revocation.
    from tessera.manage.revocation import revoke_subject

    for round_ in range(10):
        user = f"u-race-{round_}"
        store.codes.add(a_code(f"race{round_}", user_id=user, grant_id=f"g-race-{round_}"))
        barrier = threading.Barrier(2)

        def redeem_it(_: int, code_hash: str = f"race{round_}", user_id: str = user) -> None:
            barrier.wait()
            redeem(
                store,
                code_hash,
                at(2),
                lambda c: (
                    a_grant(c.grant_id, user_id=user_id),
                    a_refresh_token(f"r-{c.grant_id}", c.grant_id),
                ),
            )

        def revoke(_: int, user_id: str = user) -> None:
            barrier.wait()
            revoke_subject(store, user_id, at(1))

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda f: f(0), [redeem_it, revoke]))
        assert store.grants.list_active(at(3), user_id=user) == [], round_


# --- the unit of work --------------------------------------------------------------------------


def test_a_transaction_commits_every_write_when_its_block_ends(store: Store) -> None:
    store.codes.add(a_code("c1"))
    store.users.add(a_user())
    with store.transaction() as work:
        code, won = work.codes.consume("c1", at(1))
        assert won and code is not None
        assert work.users.get("u1") == a_user()
        work.grants.start(a_grant("g1"), a_refresh_token("rt1"))
        assert work.grants.get("g1") == a_grant("g1")
        seq = work.revocations.append(RevocationKind.JTI, "j1", at(1), at(3600), at(1))
    code = store.codes.consume("c1", at(2))[0]
    assert code is not None and code.consumed_at == at(1)
    assert store.grants.get("g1") == a_grant("g1")
    assert store.refresh_tokens.get("rt1") == a_refresh_token("rt1")
    assert store.revocations.last_seq() == seq


def test_a_transaction_rolls_back_every_write_when_its_block_raises(store: Store) -> None:
    store.codes.add(a_code("c1"))
    store.grants.start(a_grant("g0"), a_refresh_token("rt0", "g0"))
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as work:
        assert work.codes.consume("c1", at(1))[1]
        work.grants.start(a_grant("g1"), a_refresh_token("rt1"))
        assert work.refresh_tokens.use("rt0", "rt0-next", at(1))
        work.refresh_tokens.add(a_refresh_token("rt0-next", "g0"))
        work.grants.revoke("g0", at(1), at(3600))
        raise RuntimeError("boom")
    # Nothing of it happened: the code is still usable, no grant, token or event was written.
    assert store.codes.consume("c1", at(2)) == (replace(a_code("c1"), consumed_at=at(2)), True)
    assert store.grants.get("g1") is None
    assert store.refresh_tokens.get("rt1") is None
    assert store.refresh_tokens.get("rt0") == a_refresh_token("rt0", "g0")
    assert store.refresh_tokens.get("rt0-next") is None
    assert store.grants.get("g0") == a_grant("g0")
    assert store.revocations.last_seq() == 0


def test_use_for_client_burns_a_live_token_of_that_client_once(store: Store) -> None:
    start_family(store)
    with store.transaction() as work:
        assert work.refresh_tokens.use_for_client("rt1", "rt2", "c2", at(1)) is None
        used = work.refresh_tokens.use_for_client("rt1", "rt2", "c1", at(1))
        assert used is not None
        token, grant = used
        assert (token.token_hash, token.used_at, token.successor_hash) == ("rt1", at(1), "rt2")
        assert grant == a_grant()
        assert work.refresh_tokens.use_for_client("rt1", "rt2", "c1", at(1)) is None
        assert not work.refresh_tokens.use("rt1", "rt2", at(1))
        assert work.refresh_tokens.with_grant("rt1") == (
            a_refresh_token("rt1", used_at=at(1), successor_hash="rt2"),
            a_grant(),
        )
        assert work.refresh_tokens.with_grant("nope") == (None, None)
        assert not work.refresh_tokens.unused("rt2")  # not written yet
        work.refresh_tokens.add(a_refresh_token("rt2", parent_hash="rt1"))
        assert work.refresh_tokens.unused("rt2")


def test_use_for_client_refuses_a_token_of_a_revoked_or_ended_grant(store: Store) -> None:
    store.grants.start(a_grant("g1"), a_refresh_token("rt1", "g1"))
    store.grants.start(a_grant("g2", absolute_expiry=at(10)), a_refresh_token("rt2", "g2"))
    store.grants.revoke("g1", at(1), at(3600))
    with store.transaction() as work:
        assert work.refresh_tokens.use_for_client("rt1", "x1", "c1", at(2)) is None
        assert work.refresh_tokens.use_for_client("rt2", "x2", "c1", at(10)) is None
        assert work.refresh_tokens.use_for_client("rt2", "x2", "c1", at(86400)) is None
    token = store.refresh_tokens.get("rt2")
    assert token is not None and token.used_at is None


def test_cut_off_after_sees_only_later_subject_events_of_that_subject(store: Store) -> None:
    store.revocations.append(RevocationKind.SUBJECT, "u1", at(5), at(3600), at(5))
    store.revocations.append(RevocationKind.GRANT, "u2", at(9), at(3600), at(9))
    with store.transaction() as work:
        assert work.revocations.cut_off_after("u1", at(4))
        assert not work.revocations.cut_off_after("u1", at(5))
        assert not work.revocations.cut_off_after("u2", at(1))
