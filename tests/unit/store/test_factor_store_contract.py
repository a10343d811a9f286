"""The contract of issue 15's storage, run against every `Store` implementation (memory, SQLite,
PostgreSQL): `FactorStore`, `NonceStore`, `SessionStore.authenticated`, and the sign-in methods
(`amr`) and app policy (`mfa_policy`) kept with sessions, codes, grants and apps.

Each "use once" step is raced by several threads released together: exactly one wins.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import Passkey, RecoveryCode, TotpFactor
from tessera.store.protocols import Conflict, DomainContent, NotFound, Store
from tests.unit.store.test_domain_store_contract import a_domain
from tests.unit.store.test_store_contract import (
    a_client,
    a_code,
    a_grant,
    a_refresh_token,
    a_session,
    a_user,
    run_concurrently,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MFA = ("pwd", "otp", "mfa")


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_passkey(credential_id: str = "cred1", user_id: str = "u1", **kw: Any) -> Passkey:
    values: dict[str, Any] = {
        "credential_id": credential_id,
        "user_id": user_id,
        "name": "YubiKey 5",
        "public_key": b"\xa5\x01\x02\x03&\x00\xff",  # not UTF-8: stored as bytes
        "sign_count": 7,
        "created_at": T0,
        "aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
        "transports": ("usb", "nfc"),
        "backed_up": True,
    }
    values.update(kw)
    return Passkey(**values)


def a_totp(user_id: str = "u1", **kw: Any) -> TotpFactor:
    values: dict[str, Any] = {"user_id": user_id, "secret_sealed": b"\x00sealed\xff", "created_at": T0}
    values.update(kw)
    return TotpFactor(**values)


def confirmed_totp(store: Store, user_id: str = "u1", step: int = 100) -> None:
    store.factors.put_totp(a_totp(user_id, confirmed_at=at(1), last_step=step))


def winners(results: list[bool]) -> int:
    return sum(1 for won in results if won)


# --- passkeys ------------------------------------------------------------------------------


def test_passkey_add_then_get_returns_the_same_passkey(store: Store) -> None:
    passkey = a_passkey(sign_count=2**32 - 1)  # the counter is 32 bits unsigned
    plain = a_passkey("cred2", aaguid="", transports=(), backed_up=False, sign_count=0)
    store.factors.add_passkey(passkey)
    store.factors.add_passkey(plain)
    assert store.factors.passkey("cred1") == passkey
    assert store.factors.passkey("cred2") == plain
    assert store.factors.passkey("missing") is None


def test_passkey_add_of_a_registered_credential_id_is_a_conflict(store: Store) -> None:
    store.factors.add_passkey(a_passkey())
    with pytest.raises(Conflict):
        store.factors.add_passkey(a_passkey(user_id="u2", name="Another"))
    assert store.factors.passkey("cred1") == a_passkey()
    assert store.factors.passkeys_for("u2") == []


def test_passkeys_for_lists_the_users_passkeys_oldest_first(store: Store) -> None:
    newest = a_passkey("a-newest", created_at=at(20))
    oldest = a_passkey("z-oldest", created_at=at(10))
    store.factors.add_passkey(newest)
    store.factors.add_passkey(oldest)
    store.factors.add_passkey(a_passkey("theirs", user_id="u2"))
    assert store.factors.passkeys_for("u1") == [oldest, newest]
    assert store.factors.passkeys_for("nobody") == []


def test_use_passkey_stores_the_count_only_if_the_seen_count_is_still_stored(
    store: Store,
) -> None:
    store.factors.add_passkey(a_passkey(sign_count=7))
    assert store.factors.use_passkey("cred1", 7, 8, at(5))
    assert store.factors.passkey("cred1") == a_passkey(sign_count=8, last_used_at=at(5))
    assert not store.factors.use_passkey("cred1", 7, 9, at(6))  # a stale read: refused
    assert store.factors.use_passkey("cred1", 8, 9, at(7))
    assert store.factors.passkey("cred1") == a_passkey(sign_count=9, last_used_at=at(7))
    assert not store.factors.use_passkey("missing", 0, 1, at(8))


def test_use_passkey_by_ten_threads_has_one_winner(store: Store) -> None:
    store.factors.add_passkey(a_passkey(sign_count=7))
    results = run_concurrently(10, lambda: store.factors.use_passkey("cred1", 7, 8, at(5)))
    assert winners(results) == 1
    passkey = store.factors.passkey("cred1")
    assert passkey is not None and passkey.sign_count == 8


def test_rename_passkey_renames_only_the_users_own_passkey(store: Store) -> None:
    store.factors.add_passkey(a_passkey())
    assert not store.factors.rename_passkey("u2", "cred1", "Stolen")
    assert not store.factors.rename_passkey("u1", "missing", "Nothing")
    assert store.factors.rename_passkey("u1", "cred1", "Laptop")
    assert store.factors.passkey("cred1") == a_passkey(name="Laptop")


def test_remove_passkey_removes_only_the_users_own_passkey(store: Store) -> None:
    store.factors.add_passkey(a_passkey())
    assert not store.factors.remove_passkey("u2", "cred1")
    assert store.factors.passkey("cred1") is not None
    assert store.factors.remove_passkey("u1", "cred1")
    assert store.factors.passkey("cred1") is None
    assert not store.factors.remove_passkey("u1", "cred1")
    store.factors.add_passkey(a_passkey(user_id="u2"))  # the id is free again


# --- TOTP ----------------------------------------------------------------------------------


def test_put_totp_then_totp_returns_it(store: Store) -> None:
    store.factors.put_totp(a_totp())
    assert store.factors.totp("u1") == a_totp()
    assert store.factors.totp("u2") is None


def test_put_totp_replaces_an_unconfirmed_factor(store: Store) -> None:
    store.factors.put_totp(a_totp())
    again = a_totp(secret_sealed=b"another", created_at=at(30))
    store.factors.put_totp(again)
    assert store.factors.totp("u1") == again


def test_put_totp_over_a_confirmed_factor_is_a_conflict_and_keeps_it(store: Store) -> None:
    confirmed_totp(store, step=100)
    kept = store.factors.totp("u1")
    assert kept == a_totp(confirmed_at=at(1), last_step=100)
    with pytest.raises(Conflict):
        store.factors.put_totp(a_totp(secret_sealed=b"attacker's"))
    assert store.factors.totp("u1") == kept


def test_a_factor_stored_with_its_first_step_has_that_step_spent(store: Store) -> None:
    store.factors.put_totp(a_totp(confirmed_at=at(1), last_step=100))
    assert store.factors.totp("u1") == a_totp(confirmed_at=at(1), last_step=100)
    assert not store.factors.use_totp_step("u1", 100)  # the set-up's code is spent


def test_use_totp_step_accepts_a_later_step_once(store: Store) -> None:
    store.factors.put_totp(a_totp())
    assert not store.factors.use_totp_step("u1", 5)  # unconfirmed: not usable
    store.factors.put_totp(a_totp(confirmed_at=at(1), last_step=100))
    assert store.factors.use_totp_step("u1", 101)
    assert not store.factors.use_totp_step("u1", 101)  # a replay
    assert not store.factors.use_totp_step("u1", 100)  # an earlier step
    assert store.factors.use_totp_step("u1", 103)
    factor = store.factors.totp("u1")
    assert factor is not None and factor.last_step == 103
    assert not store.factors.use_totp_step("nobody", 200)


def test_use_totp_step_by_ten_threads_has_one_winner(store: Store) -> None:
    confirmed_totp(store, step=100)
    assert winners(run_concurrently(10, lambda: store.factors.use_totp_step("u1", 101))) == 1


def test_remove_totp_removes_the_factor(store: Store) -> None:
    confirmed_totp(store)
    assert store.factors.remove_totp("u1")
    assert store.factors.totp("u1") is None
    assert not store.factors.remove_totp("u1")
    store.factors.put_totp(a_totp())  # a new enrollment may start


# --- recovery codes ------------------------------------------------------------------------


def test_replace_recovery_codes_drops_the_old_codes_and_stores_the_new(store: Store) -> None:
    store.factors.replace_recovery_codes("u1", ["h-old1", "h-old2"], T0)
    assert store.factors.use_recovery_code("u1", "h-old1", at(1))
    store.factors.replace_recovery_codes("u2", ["h-theirs"], T0)
    store.factors.replace_recovery_codes("u1", ["h-b", "h-a"], at(10))
    assert store.factors.recovery_codes("u1") == [
        RecoveryCode("u1", "h-a", at(10)),
        RecoveryCode("u1", "h-b", at(10)),
    ]
    assert not store.factors.use_recovery_code("u1", "h-old2", at(11))
    assert store.factors.recovery_codes("u2") == [RecoveryCode("u2", "h-theirs", T0)]
    store.factors.replace_recovery_codes("u1", [], at(20))
    assert store.factors.recovery_codes("u1") == []


def test_replace_recovery_codes_with_a_repeated_hash_changes_nothing(store: Store) -> None:
    store.factors.replace_recovery_codes("u1", ["h1", "h2"], T0)
    with pytest.raises(Conflict):
        store.factors.replace_recovery_codes("u1", ["h3", "h4", "h3"], at(10))
    assert [c.code_hash for c in store.factors.recovery_codes("u1")] == ["h1", "h2"]


def test_use_recovery_code_marks_an_unused_code_used_once(store: Store) -> None:
    store.factors.replace_recovery_codes("u1", ["h1", "h2"], T0)
    assert not store.factors.use_recovery_code("u2", "h1", at(1))  # another user's
    assert not store.factors.use_recovery_code("u1", "unknown", at(1))
    assert store.factors.use_recovery_code("u1", "h1", at(1))
    assert not store.factors.use_recovery_code("u1", "h1", at(2))
    assert store.factors.recovery_codes("u1") == [
        RecoveryCode("u1", "h1", T0, used_at=at(1)),
        RecoveryCode("u1", "h2", T0),
    ]


def test_use_recovery_code_by_ten_threads_has_one_winner(store: Store) -> None:
    store.factors.replace_recovery_codes("u1", ["h1"], T0)
    results = run_concurrently(10, lambda: store.factors.use_recovery_code("u1", "h1", at(1)))
    assert winners(results) == 1


# --- removing factors ----------------------------------------------------------------------


def add_every_factor(store: Store, user_id: str) -> None:
    store.factors.add_passkey(a_passkey(f"{user_id}-cred1", user_id))
    store.factors.add_passkey(a_passkey(f"{user_id}-cred2", user_id))
    confirmed_totp(store, user_id)
    store.factors.replace_recovery_codes(user_id, ["h1", "h2", "h3"], T0)


def has_factors(store: Store, user_id: str) -> bool:
    f = store.factors
    return bool(f.passkeys_for(user_id) or f.totp(user_id) or f.recovery_codes(user_id))


def test_remove_all_removes_every_factor_of_the_user_and_counts_the_rows(store: Store) -> None:
    add_every_factor(store, "u1")
    add_every_factor(store, "u2")
    assert store.factors.remove_all("u1") == 6  # two passkeys, an app, three codes
    assert not has_factors(store, "u1")
    assert store.factors.remove_all("u1") == 0
    assert len(store.factors.passkeys_for("u2")) == 2
    assert store.factors.totp("u2") is not None
    assert len(store.factors.recovery_codes("u2")) == 3


def test_deleting_a_user_deletes_the_users_factors(store: Store) -> None:
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob"))
    add_every_factor(store, "u1")
    add_every_factor(store, "u2")
    store.users.delete("u1")
    assert store.users.get("u1") is None
    assert not has_factors(store, "u1")
    assert store.factors.passkey("u1-cred1") is None
    assert has_factors(store, "u2")
    # A failed delete removes nothing.
    add_every_factor(store, "ghost")
    with pytest.raises(NotFound):
        store.users.delete("ghost")
    assert has_factors(store, "ghost")


def test_factors_of_one_domain_are_invisible_in_another(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    other = store.for_domain("d1")
    add_every_factor(store, "u1")
    assert other.factors.passkey("u1-cred1") is None
    assert not has_factors(other, "u1")
    assert not other.factors.use_recovery_code("u1", "h1", at(1))
    assert not other.factors.use_totp_step("u1", 500)
    assert not other.factors.use_passkey("u1-cred1", 7, 8, at(1))
    assert not other.factors.rename_passkey("u1", "u1-cred1", "Moved")
    assert not other.factors.remove_passkey("u1", "u1-cred1")
    assert not other.factors.remove_totp("u1")
    assert other.factors.remove_all("u1") == 0
    # A credential id is unique within its domain only.
    other.factors.add_passkey(a_passkey("u1-cred1", "u1", name="Elsewhere"))
    other.factors.put_totp(a_totp("u1"))  # the confirmed app is the other domain's
    assert store.factors.passkey("u1-cred1") == a_passkey("u1-cred1", "u1")
    assert store.factors.use_recovery_code("u1", "h1", at(2))
    assert has_factors(store, "u1") and has_factors(other, "u1")


# --- use-once values -----------------------------------------------------------------------


def test_use_once_accepts_a_key_once_until_it_expires(store: Store) -> None:
    assert store.nonces.use_once("webauthn:abc", at(300), T0)
    assert not store.nonces.use_once("webauthn:abc", at(600), at(299))
    assert store.nonces.use_once("webauthn:other", at(300), T0)
    # Recorded until `expires_at`: then it may be recorded again, for its new lifetime.
    assert store.nonces.use_once("webauthn:abc", at(600), at(300))
    assert not store.nonces.use_once("webauthn:abc", at(900), at(599))


def test_use_once_keys_are_per_domain(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    assert store.nonces.use_once("reset:xyz", at(300), T0)
    assert store.for_domain("d1").nonces.use_once("reset:xyz", at(300), T0)
    assert not store.for_domain("d1").nonces.use_once("reset:xyz", at(300), T0)


def test_use_once_by_ten_threads_has_one_winner(store: Store) -> None:
    results = run_concurrently(10, lambda: store.nonces.use_once("jti:1", at(300), T0))
    assert winners(results) == 1


def test_use_once_of_an_expired_key_by_ten_threads_has_one_winner(store: Store) -> None:
    """The takeover of an expired row is as atomic as the first insert."""
    assert store.nonces.use_once("jti:1", at(60), T0)
    results = run_concurrently(10, lambda: store.nonces.use_once("jti:1", at(360), at(60)))
    assert winners(results) == 1
    assert not store.nonces.use_once("jti:1", at(400), at(359))


def test_use_once_refuses_a_key_longer_than_200_characters(store: Store) -> None:
    assert store.nonces.use_once("k" * 200, at(300), T0)
    with pytest.raises(ValueError, match="200"):
        store.nonces.use_once("k" * 201, at(300), T0)


def test_nonce_purge_deletes_values_expired_by_now_only(store: Store) -> None:
    store.nonces.use_once("old", at(60), T0)
    store.nonces.use_once("due", at(120), T0)
    store.nonces.use_once("live", at(121), T0)
    assert store.nonces.purge(at(120)) == 2
    assert store.nonces.purge(at(120)) == 0
    assert not store.nonces.use_once("live", at(500), at(120))


# --- sessions: a further authentication ------------------------------------------------------


def test_authenticated_sets_the_methods_and_time_of_an_open_session(store: Store) -> None:
    store.sessions.add(a_session("s1", expires_at=at(3600)))
    assert store.sessions.authenticated("s1", MFA, at(30), at(30))
    assert store.sessions.get("s1") == a_session("s1", expires_at=at(3600), amr=MFA, auth_time=at(30))
    assert store.sessions.list_for_user("u1", at(31))[0].amr == MFA


def test_authenticated_refuses_an_ended_expired_or_unknown_session(store: Store) -> None:
    store.sessions.add(a_session("ended", expires_at=at(3600)))
    store.sessions.end("ended", at(10))
    store.sessions.add(a_session("expired", expires_at=at(60)))
    assert not store.sessions.authenticated("ended", MFA, at(20), at(20))
    assert not store.sessions.authenticated("expired", MFA, at(60), at(60))
    assert not store.sessions.authenticated("unknown", MFA, at(20), at(20))
    assert store.sessions.get("ended") == a_session("ended", expires_at=at(3600), ended_at=at(10))
    assert store.sessions.get("expired") == a_session("expired", expires_at=at(60))


# --- amr and mfa_policy kept with what carries them ------------------------------------------


def test_a_session_keeps_its_methods(store: Store) -> None:
    for id_hash, amr in [("s1", ("pwd",)), ("s2", ("hwk", "user")), ("s3", ())]:
        store.sessions.add(a_session(id_hash, amr=amr))
        stored = store.sessions.get(id_hash)
        assert stored is not None and stored.amr == amr


def test_a_code_keeps_its_methods(store: Store) -> None:
    store.codes.add(a_code("code1", amr=MFA))
    code, won = store.codes.consume("code1", T0)
    assert won and code is not None and code.amr == MFA
    with store.transaction() as tx:
        code, won = tx.codes.consume("code1", T0)
    assert not won and code is not None and code.amr == MFA


def test_a_grant_keeps_its_methods_on_every_path_that_reads_it(store: Store) -> None:
    grant = a_grant("g1", amr=("swk", "user"))
    with store.transaction() as tx:
        tx.grants.start(grant, a_refresh_token("rt1", "g1"))
        assert tx.grants.get("g1") == grant
    assert store.grants.get("g1") == grant
    assert store.grants.list_active(T0) == [grant]
    with store.transaction() as tx:
        assert tx.refresh_tokens.with_grant("rt1")[1] == grant
        used = tx.refresh_tokens.use_for_client("rt1", "rt2", "c1", T0)
        assert used is not None and used[1] == grant
        tx.refresh_tokens.add(a_refresh_token("rt2", "g1", parent_hash="rt1"))
    with store.transaction() as tx:  # the cached grant, on the next rotation
        used = tx.refresh_tokens.use_for_client("rt2", "rt3", "c1", T0)
        assert used is not None and used[1] == grant


def test_a_grant_revoked_when_started_keeps_its_methods(store: Store) -> None:
    store.grants.revoke("g1", T0, at(3600))
    with store.transaction() as tx:
        tx.grants.start(a_grant("g1", amr=MFA), None)
    assert store.grants.get("g1") == a_grant("g1", amr=MFA, revoked_at=T0)


def test_an_app_keeps_its_mfa_policy(store: Store) -> None:
    required = a_client("c1", "Payroll", mfa_policy="required")
    default = a_client("c2", "Wiki")
    store.clients.add(required)
    store.clients.add(default)
    assert store.clients.get("c1") == required
    assert store.clients.get("c2") == default and default.mfa_policy is None
    assert store.clients.list() == [required, default]
    store.clients.update(replace(required, mfa_policy="off", version=2))
    assert store.clients.get("c1") == replace(required, mfa_policy="off", version=2)
