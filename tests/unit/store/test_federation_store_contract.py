"""The contract of `UpstreamProviderStore` and `FederatedIdentityStore` (docs/federation.md),
and of `BrowserSession.upstream_provider`, run against every `Store` implementation (memory,
SQLite, PostgreSQL): provider names are unique per domain case-insensitively, and so are their
e-mail domains across the domain's providers, also when written at once; (provider,
subject) names one user; a just-in-time account is written whole or not at all; deleting a
user or a provider deletes its links; each domain sees only its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from tessera.domain.model import FederatedIdentity, Group, UpstreamProvider
from tessera.store.protocols import Conflict, DomainContent, EmailDomainTaken, NotFound, Store
from tessera.store.sql.schema import upstream_providers
from tessera.store.sql.store import _provider_values, hold_providers
from tests.unit.store.test_domain_store_contract import a_domain, count_of
from tests.unit.store.test_store_contract import a_session, a_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_provider(provider_id: str = "p1", name: str = "corp", **kw: Any) -> UpstreamProvider:
    values: dict[str, Any] = {
        "id": provider_id,
        "name": name,
        "display_name": name.title(),
        "issuer": f"https://{name}.example.test",
        "client_id": "tessera",
        "auth_method": "client_secret_basic",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(kw)
    return UpstreamProvider(**values)


def a_link(
    provider_id: str = "p1", subject: str = "sub-1", user_id: str = "u1", **kw: Any
) -> FederatedIdentity:
    return FederatedIdentity(provider_id, subject, user_id, kw.pop("created_at", T0), **kw)


@pytest.fixture
def fed(store: Store) -> Store:
    """The store with two users and one provider."""
    store.users.add(a_user("u1", "alice"))
    store.users.add(a_user("u2", "bob"))
    store.upstream_providers.add(a_provider())
    return store


# --- providers ---------------------------------------------------------------------------


def test_provider_round_trip_with_every_field(store: Store) -> None:
    full = a_provider(
        "p9",
        "Entra",
        auth_method="private_key_jwt",
        secret_sealed=b"\x00sealed secret\xff",
        private_key_sealed=b"\x01sealed pem",
        key_id="kid-1",
        scopes=("openid", "email", "groups"),
        username_claim="upn",
        email_claim="mail",
        name_claim="displayName",
        groups_claim="groups",
        jit=False,
        link_existing=True,
        email_domains=("corp.test", "sub.corp.test"),
        enabled=False,
        created_by="admin",
        description="The corporate directory",
    )
    store.upstream_providers.add(full)
    store.upstream_providers.add(a_provider())  # the defaults
    assert store.upstream_providers.get("p9") == full
    assert store.upstream_providers.get("p1") == a_provider()
    assert store.upstream_providers.get("nope") is None
    assert store.upstream_providers.list() == [a_provider(), full]  # by name: corp, Entra


def test_provider_names_are_unique_case_insensitively(store: Store) -> None:
    store.upstream_providers.add(a_provider("p1", "Corp"))
    assert store.upstream_providers.get_by_name("corp") == a_provider("p1", "Corp")
    assert store.upstream_providers.get_by_name("CORP") == a_provider("p1", "Corp")
    assert store.upstream_providers.get_by_name("corp2") is None
    with pytest.raises(Conflict):
        store.upstream_providers.add(a_provider("p2", "cORP"))
    with pytest.raises(Conflict):
        store.upstream_providers.add(a_provider("p1", "other"))  # the id
    store.upstream_providers.add(a_provider("p2", "other"))
    with pytest.raises(Conflict):
        store.upstream_providers.update(replace(a_provider("p2", "other"), name="CORP"))
    assert store.upstream_providers.get("p2") == a_provider("p2", "other")
    assert [p.id for p in store.upstream_providers.list()] == ["p1", "p2"]


def test_an_email_domain_sends_users_to_one_provider(store: Store) -> None:
    store.upstream_providers.add(a_provider("p1", "corp", email_domains=("corp.test",)))
    with pytest.raises(EmailDomainTaken, match="corp.test already sends users to .*'corp'"):
        store.upstream_providers.add(
            a_provider("p2", "other", email_domains=("other.test", "CORP.test"))
        )
    assert store.upstream_providers.get("p2") is None
    store.upstream_providers.add(a_provider("p2", "other", email_domains=("other.test",)))
    with pytest.raises(EmailDomainTaken):
        store.upstream_providers.update(
            a_provider("p2", "other", email_domains=("other.test", "corp.test"))
        )
    assert store.upstream_providers.get("p2") == a_provider(
        "p2", "other", email_domains=("other.test",)
    )
    # A provider's own domains are its own: keeping or reordering them is no conflict.
    mine = a_provider("p1", "corp", email_domains=("more.test", "corp.test"))
    store.upstream_providers.update(mine)
    assert store.upstream_providers.get("p1") == replace(mine, version=2)


def test_provider_update_adds_one_to_the_version(store: Store) -> None:
    store.upstream_providers.add(a_provider())
    changed = replace(
        a_provider(),
        name="Corp-Two",
        client_id="other",
        secret_sealed=b"new",
        email_domains=("corp.test",),
        updated_at=at(5),
    )
    store.upstream_providers.update(changed)
    assert store.upstream_providers.get("p1") == replace(changed, version=2)
    assert store.upstream_providers.get_by_name("corp") is None
    assert store.upstream_providers.get_by_name("corp-two") == replace(changed, version=2)
    store.upstream_providers.update(replace(changed, enabled=False))  # the stored version counts
    stored = store.upstream_providers.get("p1")
    assert stored is not None and stored.version == 3 and not stored.enabled
    with pytest.raises(NotFound):
        store.upstream_providers.update(a_provider("nope", "nope"))


def test_deleting_a_provider_deletes_its_links_not_the_users(fed: Store) -> None:
    fed.upstream_providers.add(a_provider("p2", "other"))
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    fed.federated_identities.link(a_link("p1", "s2", "u2"))
    fed.federated_identities.link(a_link("p2", "s1", "u1"))
    assert fed.federated_identities.count_for_provider("p1") == 2
    fed.upstream_providers.delete("p1")
    assert fed.upstream_providers.get("p1") is None
    assert fed.federated_identities.get("p1", "s1") is None
    assert fed.federated_identities.count_for_provider("p1") == 0
    assert fed.federated_identities.list_for_user("u1") == [a_link("p2", "s1", "u1")]
    assert fed.users.get("u1") is not None and fed.users.get("u2") is not None
    with pytest.raises(NotFound):
        fed.upstream_providers.delete("p1")
    # The name is free again, and the old links do not come back with it.
    fed.upstream_providers.add(a_provider("p3", "corp"))
    assert fed.federated_identities.count_for_provider("p3") == 0


# --- links -------------------------------------------------------------------------------


def test_link_get_list_count_touch_unlink(fed: Store) -> None:
    fed.upstream_providers.add(a_provider("p2", "other"))
    first = a_link("p2", "s-a", "u1", email="alice@corp.test", created_at=at(1))
    second = a_link("p1", "s-b", "u1", created_at=at(2))
    fed.federated_identities.link(second)
    fed.federated_identities.link(first)
    fed.federated_identities.link(a_link("p1", "s-c", "u2"))
    assert fed.federated_identities.get("p2", "s-a") == first
    assert fed.federated_identities.get("p1", "s-a") is None  # the pair is the key
    assert fed.federated_identities.get("p2", "S-A") is None  # subjects are exact
    assert fed.federated_identities.list_for_user("u1") == [first, second]  # oldest first
    assert fed.federated_identities.list_for_user("nobody") == []
    assert fed.federated_identities.count_for_provider("p1") == 2
    assert fed.federated_identities.count_for_provider("p2") == 1

    fed.federated_identities.touch("p2", "s-a", "alice@new.test", at(60))
    assert fed.federated_identities.get("p2", "s-a") == replace(
        first, email="alice@new.test", last_used_at=at(60)
    )
    fed.federated_identities.touch("p2", "gone", None, at(60))  # no link: nothing to record
    assert fed.federated_identities.get("p2", "gone") is None

    fed.federated_identities.unlink("p2", "s-a")
    assert fed.federated_identities.get("p2", "s-a") is None
    assert fed.federated_identities.list_for_user("u1") == [second]
    with pytest.raises(NotFound):
        fed.federated_identities.unlink("p2", "s-a")


def test_an_upstream_account_links_to_one_user(fed: Store) -> None:
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    with pytest.raises(Conflict):
        fed.federated_identities.link(a_link("p1", "s1", "u2"))
    assert fed.federated_identities.get("p1", "s1") == a_link("p1", "s1", "u1")
    fed.federated_identities.link(a_link("p1", "s2", "u1"))  # a user may have several


def test_link_to_a_missing_user_or_provider_is_not_found(fed: Store) -> None:
    with pytest.raises(NotFound):
        fed.federated_identities.link(a_link("p1", "s1", "nobody"))
    with pytest.raises(NotFound):
        fed.federated_identities.link(a_link("nope", "s1", "u1"))
    assert fed.federated_identities.count_for_provider("p1") == 0
    assert fed.federated_identities.count_for_provider("nope") == 0


def test_deleting_a_user_deletes_the_users_links(fed: Store) -> None:
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    fed.federated_identities.link(a_link("p1", "s2", "u2"))
    fed.users.delete("u1")
    assert fed.federated_identities.get("p1", "s1") is None
    assert fed.federated_identities.list_for_user("u1") == []
    assert fed.federated_identities.get("p1", "s2") == a_link("p1", "s2", "u2")
    # The upstream account may be linked again, to a new user.
    fed.users.add(a_user("u3", "alice"))
    fed.federated_identities.link(a_link("p1", "s1", "u3"))


# --- just-in-time accounts ---------------------------------------------------------------


def test_create_user_writes_the_user_the_link_and_the_memberships(fed: Store) -> None:
    fed.groups.add(Group("g1", "Engineers", T0, T0), ["u2"])
    fed.groups.add(Group("g2", "Admins", T0, T0))
    fed.groups.add(Group("g3", "Other", T0, T0))
    carol = a_user("u3", "carol", password_hash="", created_at=T0 + timedelta(minutes=5))
    link = a_link("p1", "s-carol", "u3", email="carol@corp.test")
    fed.federated_identities.create_user(carol, link, ["g1", "g2"])
    assert fed.users.get("u3") == carol
    assert fed.federated_identities.get("p1", "s-carol") == link
    assert [g.id for g in fed.groups.groups_of("u3")] == ["g2", "g1"]  # by name
    assert fed.groups.members("g1") == ["u2", "u3"]
    # A member more changes the group: its version (SCIM's ETag) and time move on.
    for group_id in ("g1", "g2"):
        group = fed.groups.get(group_id)
        assert group is not None
        assert (group.version, group.updated_at) == (2, carol.created_at)
    assert fed.groups.get("g3") == Group("g3", "Other", T0, T0)
    dave = a_user("u4", "dave")
    fed.federated_identities.create_user(dave, a_link("p1", "s-dave", "u4"))  # no groups
    assert fed.groups.groups_of("u4") == []


# --- memberships a provider's sign-ins made (docs/federation.md, "Groups") ----------------


@pytest.fixture
def teams(fed: Store) -> Store:
    """`fed` with a second provider and three groups, alice (u1) in none of them."""
    fed.upstream_providers.add(a_provider("p2", "partner"))
    for group_id, name in (("g1", "Engineers"), ("g2", "Admins"), ("g3", "Other")):
        fed.groups.add(Group(group_id, name, T0, T0))
    return fed


def _version(store: Store, group_id: str) -> int:
    group = store.groups.get(group_id)
    assert group is not None
    return group.version


def test_a_provider_joins_and_leaves_only_what_it_made(teams: Store) -> None:
    joined, left = teams.groups.provider_memberships("u1", "p1", ["g1", "g2"], [], at(10))
    assert (joined, left) == (["g1", "g2"], [])
    assert teams.groups.made_by_provider("u1", "p1") == ["g1", "g2"]
    assert teams.groups.made_by_provider("u1", "p2") == []
    group = teams.groups.get("g1")
    assert group is not None and (group.version, group.updated_at) == (2, at(10))
    # An administrator's membership and another provider's: never this provider's to end.
    teams.groups.change_members("g3", ["u1"], [], at(11))
    teams.groups.provider_memberships("u2", "p2", ["g2"], [], at(11))
    joined, left = teams.groups.provider_memberships("u1", "p1", [], ["g1", "g2", "g3"], at(12))
    assert (joined, left) == ([], ["g1", "g2"])
    assert [g.id for g in teams.groups.groups_of("u1")] == ["g3"]
    assert teams.groups.members("g2") == ["u2"]
    assert _version(teams, "g1") == 3 and _version(teams, "g3") == 2  # g3 unchanged by p1
    # Joining a group the user is in already changes nothing, nor does leaving one not made.
    versions = {g: _version(teams, g) for g in ("g1", "g2", "g3")}
    assert teams.groups.provider_memberships("u1", "p1", ["g3"], ["g3"], at(13)) == ([], [])
    assert {g: _version(teams, g) for g in versions} == versions
    assert teams.groups.made_by_provider("u1", "p1") == []


def test_an_administrator_adding_the_member_again_takes_the_membership_over(
    teams: Store,
) -> None:
    teams.groups.provider_memberships("u1", "p1", ["g1", "g2"], [], at(10))
    teams.groups.change_members("g1", ["u1", "u2"], [], at(11))
    assert teams.groups.made_by_provider("u1", "p1") == ["g2"]
    assert teams.groups.provider_memberships("u1", "p1", [], ["g1", "g2"], at(12)) == ([], ["g2"])
    assert [g.id for g in teams.groups.groups_of("u1")] == ["g1"]


def test_replacing_the_members_keeps_who_made_the_memberships_that_stay(teams: Store) -> None:
    teams.groups.provider_memberships("u1", "p1", ["g1"], [], at(10))
    group = teams.groups.get("g1")
    assert group is not None
    teams.groups.update(group, ["u1", "u2"])  # SCIM's PUT: alice stays, bob joins
    assert teams.groups.made_by_provider("u1", "p1") == ["g1"]
    # Removed and added again by an administrator: theirs.
    teams.groups.update(group, ["u2"])
    teams.groups.update(group, ["u1", "u2"])
    assert teams.groups.made_by_provider("u1", "p1") == []


def test_just_in_time_memberships_are_the_providers_and_outlive_it_as_ordinary_ones(
    teams: Store,
) -> None:
    carol = a_user("u3", "carol", password_hash="")
    teams.federated_identities.create_user(carol, a_link("p1", "s-carol", "u3"), ["g1", "g2"])
    assert teams.groups.made_by_provider("u3", "p1") == ["g1", "g2"]
    teams.upstream_providers.delete("p1")
    assert [g.id for g in teams.groups.groups_of("u3")] == ["g2", "g1"]
    assert teams.groups.made_by_provider("u3", "p1") == []


def test_a_missing_group_is_skipped_and_a_missing_user_is_not_found(teams: Store) -> None:
    assert teams.groups.provider_memberships("u1", "p1", ["g1", "gone"], [], at(10)) == (
        ["g1"],
        [],
    )
    with pytest.raises(NotFound):
        teams.groups.provider_memberships("nobody", "p1", ["g2"], [], at(10))
    assert teams.groups.members("g2") == []
    # A deleted user's memberships and what made them go with the user.
    teams.users.delete("u1")
    teams.users.add(a_user("u1", "alice"))
    assert teams.groups.made_by_provider("u1", "p1") == []


def _nothing_more(store: Store, users: int, links: int, members: list[tuple[str, str]]) -> None:
    assert len(store.users.list()) == users
    assert store.federated_identities.count_for_provider("p1") == links
    assert store.groups.memberships() == members


def test_create_user_with_a_taken_username_writes_nothing(fed: Store) -> None:
    fed.groups.add(Group("g1", "Engineers", T0, T0))
    for username in ("alice", "ALICE"):
        with pytest.raises(Conflict):
            fed.federated_identities.create_user(
                a_user("u3", username), a_link("p1", "s-new", "u3"), ["g1"]
            )
        assert fed.users.get("u3") is None
        assert fed.federated_identities.get("p1", "s-new") is None
        _nothing_more(fed, 2, 0, [])
    with pytest.raises(Conflict):  # a taken user id
        fed.federated_identities.create_user(
            a_user("u1", "zed"), a_link("p1", "s-new", "u1"), ["g1"]
        )
    _nothing_more(fed, 2, 0, [])


def test_create_user_with_a_linked_upstream_account_writes_nothing(fed: Store) -> None:
    fed.groups.add(Group("g1", "Engineers", T0, T0))
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    with pytest.raises(Conflict):
        fed.federated_identities.create_user(
            a_user("u3", "carol"), a_link("p1", "s1", "u3"), ["g1"]
        )
    assert fed.users.get("u3") is None
    assert fed.users.get_by_username("carol") is None
    assert fed.federated_identities.get("p1", "s1") == a_link("p1", "s1", "u1")
    _nothing_more(fed, 2, 1, [])
    # The username stayed free.
    fed.users.add(a_user("u3", "carol"))


def test_create_user_with_a_missing_provider_or_group_writes_nothing(fed: Store) -> None:
    with pytest.raises(NotFound):
        fed.federated_identities.create_user(a_user("u3", "carol"), a_link("nope", "s1", "u3"))
    with pytest.raises(NotFound):
        fed.federated_identities.create_user(
            a_user("u3", "carol"), a_link("p1", "s1", "u3"), ["no-group"]
        )
    assert fed.users.get("u3") is None
    _nothing_more(fed, 2, 0, [])


# --- sessions ----------------------------------------------------------------------------


def test_session_upstream_provider_round_trip(fed: Store) -> None:
    federated = replace(a_session("h1", "u1"), amr=("fed",), upstream_provider="p1")
    local = a_session("h2", "u1")
    fed.sessions.add(federated)
    fed.sessions.add(local)
    assert fed.sessions.get("h1") == federated
    assert fed.sessions.get("h2") == local
    assert local.upstream_provider is None
    assert fed.sessions.authenticated("h1", ("fed", "otp"), at(10), at(10))
    stored = fed.sessions.get("h1")
    assert stored is not None and stored.upstream_provider == "p1" and stored.amr == ("fed", "otp")
    listed = {s.id_hash: s.upstream_provider for s in fed.sessions.list_for_user("u1", at(10))}
    assert listed == {"h1": "p1", "h2": None}


# --- domains -----------------------------------------------------------------------------


def test_each_domain_sees_only_its_own(fed: Store) -> None:
    fed.domains.create(a_domain("d1", "one"), DomainContent())
    other = fed.for_domain("d1")
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    assert other.upstream_providers.get("p1") is None
    assert other.upstream_providers.get_by_name("corp") is None
    assert other.upstream_providers.list() == []
    assert other.federated_identities.get("p1", "s1") is None
    assert other.federated_identities.list_for_user("u1") == []
    assert other.federated_identities.count_for_provider("p1") == 0
    with pytest.raises(NotFound):
        other.upstream_providers.delete("p1")
    with pytest.raises(NotFound):
        other.federated_identities.unlink("p1", "s1")
    with pytest.raises(NotFound):  # the user and the provider are another domain's
        other.federated_identities.link(a_link("p1", "s2", "u1"))
    # The same name (and, where ids are per domain, the same id) in the other domain.
    other.users.add(a_user("d1-u1", "alice"))
    other.upstream_providers.add(a_provider("d1-p1", "corp"))
    other.federated_identities.link(a_link("d1-p1", "s1", "d1-u1"))
    assert fed.upstream_providers.list() == [a_provider()]
    assert fed.federated_identities.list_for_user("u1") == [a_link("p1", "s1", "u1")]
    other.upstream_providers.delete("d1-p1")
    assert fed.federated_identities.get("p1", "s1") == a_link("p1", "s1", "u1")


def test_purging_a_domain_removes_its_providers_and_links(fed: Store) -> None:
    fed.domains.create(a_domain("d1", "one"), DomainContent())
    other = fed.for_domain("d1")
    other.users.add(a_user("d1-u1", "alice"))
    other.upstream_providers.add(a_provider("d1-p1", "corp"))
    other.federated_identities.link(a_link("d1-p1", "s1", "d1-u1"))
    other.sessions.add(replace(a_session("d1-h1", "d1-u1"), upstream_provider="d1-p1"))
    fed.federated_identities.link(a_link("p1", "s1", "u1"))
    while fed.domains.purge_data("d1", 1):
        pass
    assert count_of(fed, "d1") == 0
    held = fed.for_domain("d1")
    assert held.upstream_providers.list() == []
    assert held.federated_identities.get("d1-p1", "s1") is None
    assert fed.domains.delete("d1") is True
    assert fed.upstream_providers.list() == [a_provider()]
    assert fed.federated_identities.get("p1", "s1") == a_link("p1", "s1", "u1")


# --- concurrent writes (PostgreSQL: writers do not queue as on SQLite) ---------------------


def _waits_for_a_lock(store: Store) -> bool:
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(conn.execute(query).scalar_one())


def _started_and_waiting(store: Store, write: Callable[[], None]) -> Callable[[], object]:
    """Start `write` in a thread and return once it waits for a lock (or has ended already);
    the function returned joins it and gives what it raised (None: it wrote)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            write()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    writer = threading.Thread(target=run)
    writer.start()
    for _ in range(500):
        if _waits_for_a_lock(store) or not writer.is_alive():
            break
        threading.Event().wait(0.02)

    def ended() -> object:
        writer.join()
        return outcome[0]

    return ended


def _while_deleting(store: Store, table: str, row_id: str, write: Callable[[], None]) -> None:
    """Run `write` while another transaction deletes the row `row_id` of `table` and the links
    naming it (as `UserStore.delete` and `UpstreamProviderStore.delete` do), committing the
    delete only once `write` waits for it."""
    engine = store.engine  # type: ignore[attr-defined]
    column = "user_id" if table == "users" else "provider_id"
    with engine.connect() as conn, conn.begin():
        conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
        ended = _started_and_waiting(store, write)
        conn.execute(text(f"DELETE FROM federated_identities WHERE {column} = :id"), {"id": row_id})
    outcome = ended()
    assert isinstance(outcome, NotFound), outcome


@pytest.mark.parametrize(
    "store", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_a_link_racing_the_users_deletion_leaves_no_orphan(fed: Store) -> None:
    _while_deleting(fed, "users", "u1", lambda: fed.federated_identities.link(a_link()))
    assert fed.federated_identities.get("p1", "sub-1") is None
    assert fed.users.get("u1") is None


@pytest.mark.parametrize(
    "store", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_an_account_racing_the_providers_deletion_is_not_written(fed: Store) -> None:
    def create() -> None:
        fed.federated_identities.create_user(a_user("u3", "carol"), a_link("p1", "s1", "u3"))

    _while_deleting(fed, "upstream_providers", "p1", create)
    assert fed.federated_identities.get("p1", "s1") is None
    assert fed.users.get("u3") is None


@pytest.mark.parametrize(
    "store", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_two_providers_written_at_once_cannot_both_take_an_email_domain(store: Store) -> None:
    """Another transaction adds a provider for corp.test and commits only once our add waits:
    the add then sees it (a check outside the lock would have read before that commit)."""
    engine = store.engine  # type: ignore[attr-defined]
    domain_id = store.upstream_providers._domain  # type: ignore[attr-defined]
    row = _provider_values(a_provider("p1", "corp", email_domains=("corp.test",)))
    with engine.connect() as conn, conn.begin():
        hold_providers(conn, domain_id)
        conn.execute(insert(upstream_providers).values(domain_id=domain_id, **row))
        ended = _started_and_waiting(
            store,
            lambda: store.upstream_providers.add(
                a_provider("p2", "other", email_domains=("corp.test",))
            ),
        )
    outcome = ended()
    assert isinstance(outcome, EmailDomainTaken), outcome
    assert [p.id for p in store.upstream_providers.list()] == ["p1"]
