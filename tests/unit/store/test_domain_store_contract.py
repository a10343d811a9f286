"""The `DomainStore` contract (tessera.store.protocols), run against every implementation:
memory, SQLite and PostgreSQL.

A domain is created with its first objects in one transaction; names and hosts are unique;
updates are optimistic (by version); deleting a domain's data leaves no row of it in any table
and touches no row of another domain; housekeeping purges every domain at once.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tessera.domain.identity_domains import DomainSettings, IdentityDomain
from tessera.domain.model import (
    AuditEvent,
    DeviceAuthorization,
    FederatedIdentity,
    Group,
    KeyState,
    Passkey,
    PrincipalKind,
    PushedRequest,
    RegistrationToken,
    RevocationKind,
    RoleGrant,
    TotpFactor,
    TrustedIssuer,
    UpstreamProvider,
)
from tessera.store.memory import MemoryStore
from tessera.store.protocols import Conflict, DomainContent, ExpiredRows, NotFound, Store
from tessera.store.sql.schema import metadata
from tests.unit.store.test_store_contract import (
    a_client,
    a_code,
    a_consent,
    a_grant,
    a_key,
    a_refresh_token,
    a_resource,
    a_session,
    a_user,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=2)
# Every table that holds a domain's rows (all but `domains` itself).
DOMAIN_TABLES = [table for table in metadata.sorted_tables if "domain_id" in table.c]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- builders and inspection ---------------------------------------------------------------


def a_domain(domain_id: str = "dacme", name: str = "acme", **kw: Any) -> IdentityDomain:
    values: dict[str, Any] = {
        "id": domain_id,
        "name": name,
        "display_name": name.title(),
        "created_at": T0,
    }
    values.update(kw)
    return IdentityDomain(**values)


def content_of(prefix: str, **kw: Any) -> DomainContent:
    """A new domain's first objects; ids start with `prefix` (primary keys are global on SQL)."""
    values: dict[str, Any] = {
        "keys": (a_key(f"{prefix}-k1", state=KeyState.ACTIVE, activated_at=T0),),
        "resources": (a_resource(f"{prefix}-r1", "Admin API", f"https://{prefix}.test/admin"),),
        "clients": (a_client(f"{prefix}-c1", "Console"),),
        "users": (a_user(f"{prefix}-u1", "alice", is_admin=True),),
    }
    values.update(kw)
    return DomainContent(**values)


def fill(store: Store, domain_id: str, prefix: str) -> None:
    """Rows of every kind in the domain (on top of what `content_of` gave it)."""
    s = store.for_domain(domain_id)
    user, client = f"{prefix}-u1", f"{prefix}-c1"
    s.users.add(a_user(f"{prefix}-u2", "bob"))
    s.clients.add(a_client(f"{prefix}-c2", "Payroll"))
    s.resources.add(a_resource(f"{prefix}-r2", "Orders", f"https://{prefix}.test/orders"))
    s.keys.add(a_key(f"{prefix}-k2", created_at=at(1)))
    for i in range(3):
        s.sessions.add(a_session(f"{prefix}-s{i}", user))
        s.codes.add(a_code(f"{prefix}-code{i}", client_id=client, user_id=user))
        s.login_throttle.record_failure(f"user:{prefix}", at(i))
    for consenting in (user, f"{prefix}-u2", f"{prefix}-u3"):  # more than a batch
        s.consents.put(a_consent(consenting, client))
    with s.transaction() as tx:
        for i in range(3):
            grant = a_grant(f"{prefix}-g{i}", client_id=client, user_id=user)
            tx.grants.start(grant, a_refresh_token(f"{prefix}-rt{i}", grant.grant_id))
    s.grants.revoke(f"{prefix}-g0", at(5), at(3600))
    s.revocations.append(RevocationKind.SUBJECT, user, at(6), at(3600), at(6))
    s.audit.append([AuditEvent(type="login.success", at=at(i), user_id=user) for i in range(3)])
    for i in range(3):
        s.factors.add_passkey(Passkey(f"{prefix}-cred{i}", user, f"Key {i}", b"cose", 0, at(i)))
        s.nonces.use_once(f"{prefix}-challenge{i}", at(300), T0)
    s.factors.put_totp(TotpFactor(user, b"sealed", T0))
    s.factors.put_totp(TotpFactor(f"{prefix}-u2", b"sealed", T0))
    s.factors.replace_recovery_codes(user, [f"{prefix}-rc{i}" for i in range(3)], T0)
    for i in range(3):
        pushed = PushedRequest(f"{prefix}-par{i}", client, (("scope", "openid"),), T0, at(60))
        s.pushed_requests.add(pushed)
        s.registration_tokens.add(RegistrationToken(f"{prefix}-iat{i}", f"{prefix}-h{i}", at(i)))
        s.trusted_issuers.add(TrustedIssuer(f"{prefix}-ti{i}", f"{prefix}-iss{i}", at(i), at(i)))
        s.device_authorizations.add(a_device_request(f"{prefix}-dc{i}", client, at(600)))
        group = Group(f"{prefix}-grp{i}", f"Group {i}", at(i), at(i))
        s.groups.add(group, [f"{prefix}-u2"])
        s.roles.grant(RoleGrant(f"{prefix}-r2", "Reader", PrincipalKind.GROUP, group.id, T0))
        s.roles.grant(RoleGrant(f"{prefix}-r2", f"Role{i}", PrincipalKind.USER, user, T0))
        issuer, basic = f"https://idp{i}.test", "client_secret_basic"
        provider = UpstreamProvider(f"{prefix}-up{i}", f"idp{i}", "IdP", issuer, "c", basic, T0, T0)
        s.upstream_providers.add(provider)
        s.federated_identities.link(FederatedIdentity(provider.id, "sub", f"{prefix}-u2", at(i)))


def a_device_request(key: str, client_id: str, expires_at: datetime) -> DeviceAuthorization:
    """An RFC 8628 request whose device and user code hashes are `key`."""
    return DeviceAuthorization(key, key, client_id, ("openid",), None, T0, expires_at, 5)


def sql_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every domain table, by table (SQL stores)."""
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(table)))
            for table in DOMAIN_TABLES
        }


def rows_of(store: Store, domain_id: str) -> dict[str, Any]:
    """What the domain holds, table by table: on SQL the rows with its `domain_id`; in memory
    the containers of its state (the memory store's equivalent of tables)."""
    if isinstance(store, MemoryStore):
        state = store.for_domain(domain_id)._state
        return {
            f.name: repr(getattr(state, f.name))
            for f in dataclasses.fields(state)
            if isinstance(getattr(state, f.name), dict | list)
        }
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            table.name: sorted(
                tuple(map(repr, row))
                for row in conn.execute(select(table).where(table.c.domain_id == domain_id))
            )
            for table in DOMAIN_TABLES
        }


def count_of(store: Store, domain_id: str) -> int:
    """How many rows of the domain exist in all its tables (SQL), or in its state (memory)."""
    if isinstance(store, MemoryStore):
        state = store.for_domain(domain_id)._state
        return sum(
            len(value)
            for f in dataclasses.fields(state)
            if isinstance(value := getattr(state, f.name), dict | list)
        )
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return sum(
            int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.domain_id == domain_id)
                ).scalar_one()
            )
            for table in DOMAIN_TABLES
        )


# --- create and read -------------------------------------------------------------------------


def test_create_writes_the_row_and_its_content(store: Store) -> None:
    domain = a_domain(host="login.acme.test", settings=DomainSettings(access_token_ttl=600))
    content = content_of("acme")
    store.domains.create(domain, content)
    assert store.domains.get("dacme") == domain
    assert store.domains.get_by_name("acme") == domain
    assert store.domains.get_by_host("login.acme.test") == domain
    mine = store.for_domain("dacme")
    assert mine.domain_id == "dacme"
    assert mine.keys.list() == list(content.keys)
    assert mine.resources.list() == list(content.resources)
    assert mine.clients.list() == list(content.clients)
    assert mine.users.list() == list(content.users)
    # Nothing of it is in the default domain.
    assert store.users.get("acme-u1") is None
    assert store.clients.get("acme-c1") is None


def test_get_of_a_missing_domain_is_none(store: Store) -> None:
    assert store.domains.get("nope") is None
    assert store.domains.get_by_name("nope") is None
    assert store.domains.get_by_host("nope.example.test") is None


def test_create_with_a_taken_name_is_a_conflict_and_writes_nothing(store: Store) -> None:
    store.domains.create(a_domain(), content_of("acme"))
    with pytest.raises(Conflict):
        store.domains.create(a_domain("dother", "acme"), content_of("other"))
    assert store.domains.get("dother") is None
    assert count_of(store, "dother") == 0
    assert store.domains.count() == 2


def test_create_with_a_taken_host_is_a_conflict_and_writes_nothing(store: Store) -> None:
    store.domains.create(a_domain(host="login.acme.test"), content_of("acme"))
    with pytest.raises(Conflict):
        store.domains.create(
            a_domain("dother", "other", host="login.acme.test"), content_of("other")
        )
    assert store.domains.get("dother") is None
    assert store.domains.get_by_name("other") is None
    assert count_of(store, "dother") == 0


def test_domains_without_a_host_do_not_conflict(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), content_of("one"))
    store.domains.create(a_domain("d2", "two"), content_of("two"))
    assert store.domains.get_by_name("two") is not None


def test_create_whose_content_conflicts_writes_nothing(store: Store) -> None:
    """One transaction: a conflict inside the content leaves neither the row nor any object."""
    twins = (a_user("x-u1", "alice"), a_user("x-u2", "ALICE"))
    with pytest.raises(Conflict):
        store.domains.create(a_domain("dx", "x"), content_of("x", users=twins))
    assert store.domains.get("dx") is None
    assert store.domains.get_by_name("x") is None
    assert count_of(store, "dx") == 0
    # The name is free for a next try.
    store.domains.create(a_domain("dx2", "x"), content_of("x2"))
    assert store.domains.get_by_name("x") == a_domain("dx2", "x")


def test_the_same_username_and_app_name_in_two_domains_are_two_things(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), content_of("one"))
    store.domains.create(a_domain("d2", "two"), content_of("two"))
    one, two = store.for_domain("d1"), store.for_domain("d2")
    alice_one, alice_two = one.users.get_by_username("alice"), two.users.get_by_username("alice")
    assert alice_one is not None and alice_two is not None
    assert alice_one.id != alice_two.id
    assert [c.client_id for c in one.clients.list()] == ["one-c1"]
    assert [c.client_id for c in two.clients.list()] == ["two-c1"]
    assert one.users.get(alice_two.id) is None
    assert one.clients.get("two-c1") is None


# --- list and count --------------------------------------------------------------------------


def test_list_pages_by_name_with_a_keyset(store: Store) -> None:
    names = ["delta", "alpha", "echo", "charlie", "bravo", "foxtrot", "golf"]
    for i, name in enumerate(names):
        store.domains.create(a_domain(f"d{i}", name), content_of(name))
    everything = sorted([*names, "default"])
    assert [d.name for d in store.domains.list()] == everything
    assert store.domains.count() == len(everything)
    pages: list[list[str]] = []
    after: str | None = None
    while page := store.domains.list(after=after, limit=3):
        pages.append([d.name for d in page])
        after = page[-1].name
    assert pages == [everything[0:3], everything[3:6], everything[6:]]
    assert store.domains.list(after="golf") == []
    assert [d.name for d in store.domains.list(after="c", limit=2)] == ["charlie", "default"]


def test_list_pages_every_name_once_whatever_the_characters(store: Store) -> None:
    """Hyphens and digits sort by the database's collation; the keyset still sees each name
    exactly once, in the order of a full listing."""
    names = ["a-c", "ab", "a0", "a-b", "a1-x", "zz", "0a", "9-9"]
    for i, name in enumerate(names):
        store.domains.create(a_domain(f"d{i}", name), content_of(f"p{i}"))
    full = [d.name for d in store.domains.list(limit=1000)]
    assert sorted(full) == sorted([*names, "default"])
    paged: list[str] = []
    after: str | None = None
    while page := store.domains.list(after=after, limit=2):
        paged.extend(d.name for d in page)
        after = page[-1].name
    assert paged == full


def test_count_follows_creates_and_deletes(store: Store) -> None:
    assert store.domains.count() == 1  # the default domain
    store.domains.create(a_domain(), content_of("acme"))
    assert store.domains.count() == 2
    while store.domains.purge_data("dacme", 100):
        pass
    assert store.domains.delete("dacme") is True
    assert store.domains.count() == 1


# --- update --------------------------------------------------------------------------------


def test_update_with_the_next_version_replaces_the_row(store: Store) -> None:
    domain = a_domain()
    store.domains.create(domain, content_of("acme"))
    changed = domain.with_changes(
        display_name="Acme Corp",
        host="id.acme.test",
        disabled_at=at(10),
        settings=DomainSettings(session_ttl=600, password_min_length=12),
    )
    store.domains.update(changed)
    assert changed.version == 2
    assert store.domains.get("dacme") == changed
    assert store.domains.get_by_host("id.acme.test") == changed
    released = changed.with_changes(host=None, disabled_at=None, settings=DomainSettings())
    store.domains.update(released)
    assert store.domains.get("dacme") == released
    assert store.domains.get_by_host("id.acme.test") is None


def test_update_with_a_stale_version_is_not_found_and_changes_nothing(store: Store) -> None:
    domain = a_domain()
    store.domains.create(domain, content_of("acme"))
    first = domain.with_changes(display_name="First")
    store.domains.update(first)
    second = domain.with_changes(display_name="Second")  # read before `first` was stored
    with pytest.raises(NotFound):
        store.domains.update(second)
    skipping = first.with_changes(display_name="Skip").with_changes(display_name="Skip")
    with pytest.raises(NotFound):
        store.domains.update(skipping)  # version 4 over a stored 2
    assert store.domains.get("dacme") == first


def test_update_of_a_missing_domain_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.domains.update(a_domain("dnone", "none").with_changes(display_name="x"))
    assert store.domains.get("dnone") is None


def test_update_to_another_domains_host_is_a_conflict_and_changes_nothing(store: Store) -> None:
    store.domains.create(a_domain("d1", "one", host="one.test"), content_of("one"))
    two = a_domain("d2", "two")
    store.domains.create(two, content_of("two"))
    with pytest.raises(Conflict):
        store.domains.update(two.with_changes(host="one.test"))
    assert store.domains.get("d2") == two
    assert store.domains.get_by_host("one.test") == a_domain("d1", "one", host="one.test")


# --- purge_data and delete -----------------------------------------------------------------


def test_purge_data_in_batches_leaves_nothing_of_the_domain_and_touches_no_other(
    store: Store,
) -> None:
    for domain_id, name in [("d1", "one"), ("d2", "two")]:
        store.domains.create(a_domain(domain_id, name), content_of(name))
        fill(store, domain_id, name)
    fill(store, "default", "def")
    # Every table holds rows of both domains before.
    before = {d: rows_of(store, d) for d in ("d1", "d2", "default")}
    for d in ("d1", "d2", "default"):
        assert all(before[d].values()), f"{d}: {before[d]}"
    if not isinstance(store, MemoryStore):
        assert {t.name for t in DOMAIN_TABLES} == set(before["d1"])
        assert all(before["d1"][t.name] for t in DOMAIN_TABLES)
    held = store.for_domain("d1")  # a store bound to the domain, kept across the purge
    rows_before = count_of(store, "d1")

    total, calls = 0, 0
    while deleted := store.domains.purge_data("d1", 2):
        if not isinstance(store, MemoryStore):  # memory has no transaction to keep short
            assert deleted <= 2
        total += deleted
        calls += 1
        assert calls < 1000
    assert total > 0
    if not isinstance(store, MemoryStore):
        assert total == rows_before  # each row counted once
    assert store.domains.purge_data("d1", 2) == 0  # nothing left: idempotent

    assert count_of(store, "d1") == 0
    if isinstance(store, MemoryStore):
        assert rows_of(store, "d1") == {k: repr(type(v)()) for k, v in _empty_state().items()}
    else:
        assert all(rows == [] for rows in rows_of(store, "d1").values())
    assert held.users.list() == [] and held.clients.list() == [] and held.keys.list() == []
    assert held.revocations.since(0) == [] and held.audit.query() == []
    assert rows_of(store, "d2") == before["d2"]
    assert rows_of(store, "default") == before["default"]

    assert store.domains.get("d1") is not None  # the row goes last, with `delete`
    assert store.domains.delete("d1") is True
    assert store.domains.delete("d1") is False
    assert store.domains.get("d1") is None
    assert store.domains.get_by_name("one") is None
    assert rows_of(store, "d2") == before["d2"]
    # The name is free again, for a new id.
    store.domains.create(a_domain("d3", "one"), content_of("three"))
    assert store.domains.get_by_name("one") == a_domain("d3", "one")


def _empty_state() -> dict[str, Any]:
    state = MemoryStore("empty")._state
    return {
        f.name: getattr(state, f.name)
        for f in dataclasses.fields(state)
        if isinstance(getattr(state, f.name), dict | list)
    }


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_purge_data_leaves_no_row_in_any_sql_table_with_a_domain_id(store: Store) -> None:
    """Every table of the schema with a `domain_id` is emptied of the domain (a table added
    later and forgotten by `purge_data` fails here; the memory store is checked above)."""
    store.domains.create(a_domain("d1", "one"), content_of("one"))
    fill(store, "d1", "one")
    before = sql_rows(store)
    while store.domains.purge_data("d1", 1000):
        pass
    assert count_of(store, "d1") == 0
    assert store.domains.delete("d1") is True  # no foreign key holds it back
    after = sql_rows(store)
    for table in DOMAIN_TABLES:
        kept = [r for r in before[table.name] if "'d1'" not in r]
        assert after[table.name] == kept, table.name


def test_purge_data_of_an_unknown_domain_deletes_nothing(store: Store) -> None:
    fill(store, "default", "def")
    before = rows_of(store, "default")
    assert store.domains.purge_data("dnone", 10) == 0
    assert store.domains.delete("dnone") is False
    assert rows_of(store, "default") == before


# --- housekeeping across domains ---------------------------------------------------------------


def expiring(store: Store, domain_id: str, prefix: str) -> None:
    """One expired and one live row of each kind housekeeping purges."""
    s = store.for_domain(domain_id)
    s.codes.add(a_code(f"{prefix}-old-code", expires_at=at(60)))
    s.codes.add(a_code(f"{prefix}-new-code", expires_at=LATER + timedelta(minutes=1)))
    s.sessions.add(a_session(f"{prefix}-old-s", expires_at=at(60)))
    s.sessions.add(a_session(f"{prefix}-new-s", expires_at=LATER + timedelta(hours=1)))
    s.revocations.append(RevocationKind.SUBJECT, "u-old", T0, at(60), T0)
    s.revocations.append(RevocationKind.SUBJECT, "u-new", T0, LATER + timedelta(hours=1), T0)
    s.login_throttle.record_failure(f"user:{prefix}", T0)
    s.login_throttle.record_failure(f"user:{prefix}", LATER)
    with s.transaction() as tx:
        grant = a_grant(f"{prefix}-g", absolute_expiry=LATER + timedelta(days=30))
        tx.grants.start(grant, a_refresh_token(f"{prefix}-old-rt", grant.grant_id))
    with s.transaction() as tx:
        tx.refresh_tokens.add(
            a_refresh_token(
                f"{prefix}-new-rt", f"{prefix}-g", LATER, expires_at=LATER + timedelta(days=1)
            )
        )
    s.keys.add(
        a_key(f"{prefix}-retired", state=KeyState.RETIRED, retire_after=at(3600), activated_at=T0)
    )
    s.keys.add(a_key(f"{prefix}-active", created_at=at(1), state=KeyState.ACTIVE))
    s.nonces.use_once(f"{prefix}-old-nonce", at(60), T0)
    s.nonces.use_once(f"{prefix}-new-nonce", LATER + timedelta(minutes=5), T0)
    for name, expires_at in [("old", at(60)), ("new", LATER + timedelta(seconds=30))]:
        s.pushed_requests.add(PushedRequest(f"{prefix}-{name}-par", "c1", (), T0, expires_at))
    for name, expires_at in [("old", at(60)), ("revoked", None), ("new", None)]:
        s.registration_tokens.add(
            RegistrationToken(f"{prefix}-{name}-iat", f"{prefix}-{name}", T0, expires_at)
        )
    s.registration_tokens.revoke(f"{prefix}-revoked-iat", at(60))
    for name, expires_at in [("old", at(600)), ("new", LATER + timedelta(seconds=30))]:
        s.device_authorizations.add(a_device_request(f"{prefix}-{name}-dc", "c1", expires_at))
    s.keys.add(
        a_key(
            f"{prefix}-retiring",
            created_at=at(2),
            state=KeyState.RETIRED,
            retire_after=LATER + timedelta(hours=1),
        )
    )


def test_purge_expired_deletes_the_expired_rows_of_every_domain(store: Store) -> None:
    for domain_id, name in [("d1", "one"), ("d2", "two")]:
        store.domains.create(a_domain(domain_id, name), DomainContent())
        expiring(store, domain_id, name)
    expiring(store, "default", "def")

    purged = store.domains.purge_expired(LATER, LATER - timedelta(hours=1), 1)

    assert purged == ExpiredRows(
        codes=3,
        refresh_tokens=3,
        revocation_events=3,
        sessions=3,
        login_failures=3,
        signing_keys=3,
        nonces=3,
        pushed_requests=3,
        registration_tokens=6,
        device_authorizations=3,
    )
    for domain_id, prefix in [("d1", "one"), ("d2", "two"), ("default", "def")]:
        s = store.for_domain(domain_id)
        assert s.codes.consume(f"{prefix}-old-code", LATER) == (None, False)
        assert s.codes.consume(f"{prefix}-new-code", LATER)[1] is True
        assert s.sessions.get(f"{prefix}-old-s") is None
        assert s.sessions.get(f"{prefix}-new-s") is not None
        assert [e.key for e in s.revocations.since(0)] == ["u-new"]
        assert s.login_throttle.failures(f"user:{prefix}", T0) == 1
        assert s.refresh_tokens.get(f"{prefix}-old-rt") is None
        assert s.refresh_tokens.get(f"{prefix}-new-rt") is not None
        assert s.grants.get(f"{prefix}-g") is not None
        assert sorted(k.kid for k in s.keys.list()) == [f"{prefix}-active", f"{prefix}-retiring"]
        assert s.nonces.use_once(f"{prefix}-old-nonce", LATER + timedelta(minutes=5), LATER)
        assert not s.nonces.use_once(f"{prefix}-new-nonce", LATER + timedelta(minutes=5), LATER)
        assert s.pushed_requests.take(f"{prefix}-old-par", "c1", T0) is None
        assert s.pushed_requests.take(f"{prefix}-new-par", "c1", LATER) is not None
        assert [t.id for t in s.registration_tokens.list()] == [f"{prefix}-new-iat"]
        assert s.device_authorizations.get(f"{prefix}-old-dc") is None
        assert s.device_authorizations.get(f"{prefix}-new-dc") is not None
    assert store.domains.purge_expired(LATER, LATER - timedelta(hours=1), 1) == ExpiredRows()


def test_purge_expired_deletes_ended_sessions_and_what_ended_grants_leave(store: Store) -> None:
    """The other reasons a row goes, in every domain: a session ended before it expires, the
    refresh tokens of a revoked grant or of one past its absolute expiry, and that grant."""
    store.domains.create(a_domain("d1", "one"), DomainContent())
    for domain_id, p in [("d1", "one"), ("default", "def")]:
        s = store.for_domain(domain_id)
        s.sessions.add(a_session(f"{p}-ended", expires_at=LATER + timedelta(hours=1)))
        s.sessions.end(f"{p}-ended", at(60))
        s.sessions.add(a_session(f"{p}-open", expires_at=LATER + timedelta(hours=1)))
        for grant_id, absolute_expiry in [
            (f"{p}-revoked", LATER + timedelta(days=30)),
            (f"{p}-over", at(3600)),
            (f"{p}-live", LATER + timedelta(days=30)),
        ]:
            with s.transaction() as tx:
                tx.grants.start(
                    a_grant(grant_id, absolute_expiry=absolute_expiry),
                    a_refresh_token(f"{grant_id}-rt", grant_id, LATER - timedelta(hours=2)),
                )
        assert s.grants.revoke(f"{p}-revoked", at(60), LATER + timedelta(hours=1))

    purged = store.domains.purge_expired(LATER, LATER - timedelta(hours=1), 1)

    assert (purged.sessions, purged.refresh_tokens) == (2, 4)
    for domain_id, p in [("d1", "one"), ("default", "def")]:
        s = store.for_domain(domain_id)
        assert s.sessions.get(f"{p}-ended") is None
        assert s.sessions.get(f"{p}-open") is not None
        assert s.refresh_tokens.get(f"{p}-revoked-rt") is None
        assert s.refresh_tokens.get(f"{p}-over-rt") is None
        assert s.refresh_tokens.get(f"{p}-live-rt") is not None
        assert s.grants.get(f"{p}-over") is None
        assert s.grants.get(f"{p}-revoked") is not None  # kept until its absolute expiry
        assert s.grants.get(f"{p}-live") is not None


def test_purge_expired_finds_the_expired_rows_through_indexes(tmp_path: Path) -> None:
    """Housekeeping's statements serve every domain at once, so none may walk a whole table
    (issue 14: bounded batches, indexes to match): SQLite's plan of each one searches by an
    index, it never scans a table."""
    from sqlalchemy import event

    from tessera.store.sql import SqlStore, upgrade

    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    store = SqlStore.open(url)
    store.ensure_domain("Default", T0)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("DELETE"):
            statements.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.domains.purge_expired(LATER, LATER - timedelta(hours=1), 100)
        event.remove(store.engine, "before_cursor_execute", seen)
        assert len(statements) == 11  # ten kinds of rows, then the grants
        scans: list[str] = []
        with store.engine.connect() as conn:
            for sql, params in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
                scans += [f"{row[-1]} in {sql.split()[2]}" for row in plan if row[-1].startswith("SCAN")]
        assert scans == []
    finally:
        store.close()
