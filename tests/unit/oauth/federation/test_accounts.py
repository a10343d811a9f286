"""Which local account an upstream sign-in is (docs/federation.md "Accounts", docs/security.md
rule 66), on the memory store: the claim mapping, a known link, linking by verified e-mail (never
to an administrator), just-in-time accounts with their groups, and refusals that write nothing;
then the session a federated sign-in starts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tessera.domain.model import FederatedIdentity, Group, UpstreamProvider, User
from tessera.manage.account import update_profile
from tessera.manage.audit import store_actor
from tessera.manage.users import create_user
from tessera.oauth.federation.accounts import (
    MAX_GROUPS,
    Account,
    Plan,
    Refused,
    UpstreamClaims,
    authenticated_at,
    link_identity,
    map_claims,
    plan_account,
    resolve_account,
)
from tessera.oauth.interaction.account import StepUp, step_up_needed
from tessera.oauth.interaction.login import (
    Attempt,
    LoginPolicy,
    SignedIn,
    current_session,
    sign_in_verified,
)
from tessera.oauth.interaction.requirements import UserFactors
from tessera.oauth.interaction.throttle import ThrottlePolicy
from tessera.shared.acr import ACR_PASSWORD, acr_for
from tessera.store.protocols import Store
from tests.support.stores import STORE_KINDS, opened_store
from tests.unit.oauth.federation.conftest import T0, make_provider
from tests.unit.store.conftest import pg_store_url  # noqa: F401 - the PostgreSQL fixture

PROVIDER = make_provider()
PASSWORD = "a long enough passphrase"
NOW = T0 + timedelta(hours=1)


def claims(**changes: Any) -> UpstreamClaims:
    mapped = UpstreamClaims(
        provider_id=PROVIDER.id,
        subject="upstream-user-1",
        email="ada@corp.example",
        email_verified=True,
        username="ada",
        display_name="Ada Lovelace",
        groups=("engineers",),
    )
    return replace(mapped, **changes)


def user(name: str, **changes: Any) -> User:
    local = User(
        id=f"u-{name}",
        username=name,
        password_hash="$argon2id$not-checked-here",
        display_name=name.title(),
        email=f"{name}@corp.example",
        is_admin=False,
        created_at=T0,
        password_changed_at=T0,
    )
    return replace(local, **changes)


class Domain:
    """The memory store with the provider, a group `Engineers` and the counts to compare."""

    def __init__(self, store: Store, provider: UpstreamProvider = PROVIDER) -> None:
        self.store = store
        self.provider = provider
        store.upstream_providers.add(provider)
        store.groups.add(Group("g-eng", "Engineers", T0, T0))
        store.groups.add(Group("g-ops", "Ops", T0, T0))

    def add(self, local: User) -> User:
        self.store.users.add(local)
        return local

    def counts(self) -> tuple[int, int, int]:
        users = self.store.users.list()
        links = sum(len(self.store.federated_identities.list_for_user(u.id)) for u in users)
        return len(users), links, len(self.store.groups.memberships())

    def resolve(self, mapped: UpstreamClaims | None = None, **provider: Any) -> Account | Refused:
        chosen = replace(self.provider, **provider)
        if provider:
            self.store.upstream_providers.update(chosen)
        return resolve_account(self.store, chosen, mapped or claims(), NOW)

    def refused(self, mapped: UpstreamClaims | None = None, **provider: Any) -> Refused:
        before = self.counts()
        outcome = self.resolve(mapped, **provider)
        assert isinstance(outcome, Refused), outcome
        assert self.counts() == before  # nothing written
        return outcome


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The memory store, and the SQL store on SQLite and PostgreSQL."""
    with opened_store(request, tmp_path, T0) as opened:
        yield opened


@pytest.fixture
def domain(any_store: Store) -> Domain:
    return Domain(any_store)


# --- map_claims --------------------------------------------------------------------------------


def id_token(**changes: Any) -> dict[str, Any]:
    return {
        "sub": "upstream-user-1",
        "email": "Ada@Corp.example",
        "email_verified": True,
        "preferred_username": "ada",
        "name": " Ada Lovelace ",
        "groups": ["Engineers", "Ops"],
        "amr": ["pwd", "otp"],
        **changes,
    }


def test_map_claims_reads_the_mapping() -> None:
    mapped = map_claims(PROVIDER, id_token())
    assert mapped == UpstreamClaims(
        provider_id=PROVIDER.id,
        subject="upstream-user-1",
        email="Ada@Corp.example",
        email_verified=True,
        username="ada",
        display_name="Ada Lovelace",
        groups=("Engineers", "Ops"),
        groups_complete=True,
        upstream_amr=("pwd", "otp"),
    )
    custom = replace(PROVIDER, username_claim="upn", name_claim="display", email_claim="mail")
    mapped = map_claims(custom, id_token(upn="ada.l", display="A. L.", mail="al@corp.example"))
    assert (mapped.username, mapped.display_name, mapped.email) == ("ada.l", "A. L.", "al@corp.example")


def test_userinfo_completes_the_id_token_but_never_changes_sub() -> None:
    info = {"sub": "upstream-user-1", "name": "Ada L.", "email": "new@corp.example"}
    mapped = map_claims(PROVIDER, id_token(), info | {"sub": "someone-else"})
    assert mapped.subject == "upstream-user-1"
    mapped = map_claims(PROVIDER, id_token(), info)
    assert (mapped.display_name, mapped.email) == ("Ada L.", "new@corp.example")
    # The ID token's email_verified spoke of another address: not of userinfo's.
    assert mapped.email_verified is False
    info["email_verified"] = "true"  # some providers send a string
    assert map_claims(PROVIDER, id_token(), info).email_verified is True


@pytest.mark.parametrize("verified", ["false", "yes", 1, None, False, []])
def test_email_verified_must_be_true(verified: Any) -> None:
    assert map_claims(PROVIDER, id_token(email_verified=verified)).email_verified is False


@pytest.mark.parametrize("email", ["not-an-address", "a b@corp.example", "a@corp", 7, "@x.y"])
def test_a_malformed_email_is_ignored(email: Any) -> None:
    mapped = map_claims(PROVIDER, id_token(email=email))
    assert (mapped.email, mapped.email_verified) == (None, False)


def test_the_username_falls_back_to_the_email_then_to_the_provider_and_sub() -> None:
    assert map_claims(PROVIDER, id_token(preferred_username="Ada Lovelace")).username == "Ada"
    mapped = map_claims(PROVIDER, id_token(preferred_username=None, email=None))
    assert mapped.username.startswith("corp-") and len(mapped.username) == len("corp-") + 8
    assert mapped.display_name == "Ada Lovelace"
    assert map_claims(PROVIDER, id_token(name="\x00bad")).display_name == "ada"


def test_groups_are_strings_only_and_at_most_a_hundred() -> None:
    many = [f"g{i}" for i in range(150)]
    assert map_claims(PROVIDER, id_token(groups=["a", 7, None, {"x": 1}, "a", " b "])).groups == (
        "a",
        "b",
    )
    assert len(map_claims(PROVIDER, id_token(groups=many)).groups) == MAX_GROUPS
    assert map_claims(PROVIDER, id_token(groups="admins")).groups == ()
    assert map_claims(replace(PROVIDER, groups_claim=None), id_token()).groups == ()


# --- a known link ------------------------------------------------------------------------------


def link(domain: Domain, local: User, subject: str = "upstream-user-1") -> None:
    domain.store.federated_identities.link(
        FederatedIdentity(PROVIDER.id, subject, local.id, T0, email="old@corp.example")
    )


def test_a_linked_account_signs_in_and_the_link_is_touched(domain: Domain) -> None:
    bob = domain.add(user("bob", email="bob@elsewhere.example"))
    link(domain, bob)
    outcome = domain.resolve()
    assert isinstance(outcome, Account)
    assert (outcome.user.id, outcome.outcome) == (bob.id, "signed-in")
    stored = domain.store.federated_identities.get(PROVIDER.id, "upstream-user-1")
    assert stored is not None
    assert (stored.last_used_at, stored.email) == (NOW, "ada@corp.example")


def test_a_disabled_linked_account_is_refused(domain: Domain) -> None:
    bob = domain.add(user("bob", disabled_at=T0))
    link(domain, bob)
    assert domain.refused().reason == "This account is disabled."


def test_later_sign_ins_add_mapped_groups_and_remove_none(domain: Domain) -> None:
    bob = domain.add(user("bob"))
    link(domain, bob)
    domain.store.groups.change_members("g-ops", [bob.id], [], T0)
    outcome = domain.resolve(claims(groups=("ENGINEERS", "unknown-here")))
    assert isinstance(outcome, Account) and outcome.group_ids == ("g-eng",)
    assert {g.name for g in domain.store.groups.groups_of(bob.id)} == {"Engineers", "Ops"}
    again = domain.resolve(claims(groups=()))
    assert isinstance(again, Account) and again.group_ids == ()
    assert len(domain.store.groups.groups_of(bob.id)) == 2  # upstream groups never remove
    assert [g.name for g in domain.store.groups.list()] == ["Engineers", "Ops"]  # none created


def test_the_groups_claim_is_whole_when_it_is_a_list_of_at_most_a_hundred() -> None:
    assert map_claims(PROVIDER, id_token()).groups_complete
    assert map_claims(PROVIDER, id_token(groups=[])).groups_complete
    assert map_claims(PROVIDER, id_token(groups=["a", 7])).groups_complete  # 7 is no group
    assert not map_claims(PROVIDER, id_token(groups=[f"g{i}" for i in range(101)])).groups_complete
    assert not map_claims(PROVIDER, id_token(groups=None)).groups_complete
    assert not map_claims(PROVIDER, id_token(groups="admins")).groups_complete
    assert not map_claims(replace(PROVIDER, groups_claim=None), id_token()).groups_complete


def _group_names(domain: Domain, user_id: str) -> set[str]:
    return {g.name for g in domain.store.groups.groups_of(user_id)}


def test_with_sync_groups_a_sign_in_ends_what_the_provider_made_and_no_longer_names(
    domain: Domain,
) -> None:
    """docs/federation.md, "Groups": the claim is the whole truth for the provider's own
    memberships; an administrator's stay, and a missing or cut-short claim ends nothing."""
    bob = domain.add(user("bob"))
    link(domain, bob)
    sync = {"sync_groups": True}
    both = claims(groups=("Engineers", "ops"), groups_complete=True)
    first = domain.resolve(both, **sync)
    assert isinstance(first, Account) and first.group_ids == ("g-eng", "g-ops")
    # The administrator adds bob to Ops again: Ops is theirs now.
    domain.store.groups.change_members("g-ops", [bob.id], [], NOW)
    synced = replace(domain.provider, sync_groups=True)
    plan = plan_account(domain.store, synced, claims(groups=(), groups_complete=True), NOW)
    assert isinstance(plan, Plan) and plan.leave_ids == ("g-eng",)
    assert plan.describe() == "Sign in as bob, who is linked already, and leave 1 group(s)."
    # No claim, or one cut short: nothing ends.
    for partial in (claims(groups=()), claims(groups=("Ops",), groups_complete=False)):
        kept = domain.resolve(partial, **sync)
        assert isinstance(kept, Account) and kept.left_ids == ()
        assert _group_names(domain, bob.id) == {"Engineers", "Ops"}
    # The whole claim without Engineers: the provider's membership ends, the administrator's stays.
    none = domain.resolve(claims(groups=(), groups_complete=True), **sync)
    assert isinstance(none, Account) and (none.group_ids, none.left_ids) == ((), ("g-eng",))
    assert _group_names(domain, bob.id) == {"Ops"}
    # Named again: joined again, the provider's.
    back = domain.resolve(claims(groups=("engineers",), groups_complete=True), **sync)
    assert isinstance(back, Account) and back.group_ids == ("g-eng",)
    assert domain.store.groups.made_by_provider(bob.id, PROVIDER.id) == ["g-eng"]


def test_without_sync_groups_the_whole_claim_ends_nothing(domain: Domain) -> None:
    created = domain.resolve(claims(groups=("Engineers",), groups_complete=True))
    assert isinstance(created, Account) and created.outcome == "created"
    again = domain.resolve(claims(groups=(), groups_complete=True))
    assert isinstance(again, Account) and again.left_ids == ()
    assert _group_names(domain, created.user.id) == {"Engineers"}
    # With it, the just-in-time membership is the provider's to end.
    synced = domain.resolve(claims(groups=(), groups_complete=True), sync_groups=True)
    assert isinstance(synced, Account) and synced.left_ids == ("g-eng",)
    assert _group_names(domain, created.user.id) == set()


# --- linking by e-mail -------------------------------------------------------------------------


def test_an_account_with_the_email_is_linked_only_when_allowed_and_verified(
    domain: Domain,
) -> None:
    ada = domain.add(user("ada-local", email="ADA@corp.example", email_verified=True))
    refusal = domain.refused()
    assert "Sign in with your password, then link Corp SSO" in refusal.reason
    refusal = domain.refused(claims(email_verified=False), link_existing=True)
    assert "has not verified your e-mail address" in refusal.reason
    outcome = domain.resolve(link_existing=True)
    assert isinstance(outcome, Account)
    assert (outcome.user.id, outcome.outcome, outcome.group_ids) == (ada.id, "linked", ("g-eng",))
    stored = domain.store.federated_identities.get(PROVIDER.id, "upstream-user-1")
    assert stored is not None and stored.user_id == ada.id


def test_an_administrator_is_never_linked_by_email(domain: Domain) -> None:
    domain.add(user("root", email="ada@corp.example", is_admin=True, email_verified=True))
    refusal = domain.refused(link_existing=True)
    assert "never linked automatically" in refusal.reason
    assert "administrator" in refusal.detail


def test_a_disabled_or_ambiguous_email_match_is_refused(domain: Domain) -> None:
    domain.add(user("one", email="ada@corp.example", disabled_at=T0, email_verified=True))
    assert domain.refused(link_existing=True).reason == "This account is disabled."
    domain.add(user("two", email="ada@corp.example", email_verified=True))
    assert "More than one account" in domain.refused(link_existing=True).reason


def test_an_address_the_user_set_themselves_is_never_linked(domain: Domain) -> None:
    """Security review N1: a local user types a colleague's address on their account page; the
    colleague's first federated sign-in must not land in (nor add groups to) their account."""
    actor = store_actor("mallory", domain.store, lambda: NOW)
    mallory = create_user(domain.store, username="mallory", password=PASSWORD, now=T0, actor=actor)
    mallory, changed = update_profile(
        domain.store, mallory, display_name="mallory", email="Ada@corp.example", actor=actor
    )
    assert changed == ["email"] and not mallory.email_verified
    stored = domain.store.users.get(mallory.id)
    assert stored is not None and not stored.email_verified
    refusal = domain.refused(link_existing=True)
    assert "has not verified it" in refusal.reason
    assert "Sign in with your password, then link Corp SSO on your account page" in refusal.reason
    assert "not verified here" in refusal.detail
    assert domain.store.groups.groups_of(mallory.id) == []
    linking = replace(PROVIDER, link_existing=True)
    assert plan_account(domain.store, linking, claims(), NOW) == refusal  # the test page too


def test_an_address_an_administrator_set_is_linked_until_the_user_changes_it(
    domain: Domain,
) -> None:
    actor = store_actor("admin", domain.store, lambda: NOW)
    ada = create_user(
        domain.store,
        username="ada-local",
        password=PASSWORD,
        now=T0,
        actor=actor,
        email="ada@corp.example",
    )
    assert ada.email_verified
    stored = domain.store.users.get(ada.id)
    assert stored is not None and stored.email_verified  # kept by the store
    # The user changes it and back: typed by the user, so unverified now.
    changed, _ = update_profile(
        domain.store, stored, display_name="Ada", email="ada@home.example", actor=actor
    )
    assert not changed.email_verified
    unchanged, fields = update_profile(
        domain.store, changed, display_name="Ada L.", email="ada@home.example", actor=actor
    )
    assert fields == ["display_name"] and not unchanged.email_verified
    back, _ = update_profile(
        domain.store, unchanged, display_name="Ada", email="ada@corp.example", actor=actor
    )
    assert not back.email_verified
    assert "has not verified it" in domain.refused(link_existing=True).reason

    # An administrator's account keeps a verified address after a change of the name only.
    verified = replace(back, email_verified=True)
    domain.store.users.update(verified)
    same, _ = update_profile(
        domain.store, verified, display_name="Ada Lovelace", email="ada@corp.example", actor=actor
    )
    assert same.email_verified
    outcome = domain.resolve(link_existing=True)
    assert isinstance(outcome, Account) and (outcome.user.id, outcome.outcome) == (ada.id, "linked")


def test_only_accounts_with_the_address_verified_count(domain: Domain) -> None:
    ada = domain.add(user("ada-local", email="ada@corp.example", email_verified=True))
    domain.add(user("mallory", email="ADA@corp.example"))  # typed, unverified: not a rival
    outcome = domain.resolve(link_existing=True)
    assert isinstance(outcome, Account) and (outcome.user.id, outcome.outcome) == (ada.id, "linked")


def test_without_link_existing_an_unverified_match_still_refuses(domain: Domain) -> None:
    """The account exists here: no just-in-time twin is made beside it, verified or not."""
    domain.add(user("mallory", email="ada@corp.example"))
    refusal = domain.refused()
    assert "An account here already uses your e-mail address" in refusal.reason


# --- just-in-time accounts ---------------------------------------------------------------------


def test_a_first_sign_in_creates_the_account_with_its_groups(domain: Domain) -> None:
    outcome = domain.resolve(claims(groups=("engineers", "Nobody-here")))
    assert isinstance(outcome, Account) and outcome.outcome == "created"
    created = domain.store.users.get(outcome.user.id)
    assert created is not None
    assert (created.username, created.email, created.display_name) == (
        "ada",
        "ada@corp.example",
        "Ada Lovelace",
    )
    assert created.password_hash == "" and not created.is_admin
    assert created.email_verified  # verified upstream
    assert [g.id for g in domain.store.groups.groups_of(created.id)] == ["g-eng"]
    stored = domain.store.federated_identities.get(PROVIDER.id, "upstream-user-1")
    assert stored is not None and stored.user_id == created.id
    again = domain.resolve()  # the next sign-in finds the link
    assert isinstance(again, Account) and (again.user.id, again.outcome) == (created.id, "signed-in")


def test_a_created_account_keeps_only_a_verified_email(domain: Domain) -> None:
    outcome = domain.resolve(claims(email_verified=False))
    assert isinstance(outcome, Account) and outcome.outcome == "created"
    assert outcome.user.email is None  # another provider's link by e-mail cannot find it
    assert not outcome.user.email_verified
    stored = domain.store.federated_identities.get(PROVIDER.id, "upstream-user-1")
    assert stored is not None and stored.email == "ada@corp.example"  # what upstream said


def test_a_taken_username_gets_a_suffix_from_the_provider_and_sub(domain: Domain) -> None:
    domain.add(user("ada", email="other@elsewhere.example"))
    outcome = domain.resolve()
    assert isinstance(outcome, Account) and outcome.outcome == "created"
    assert outcome.user.username.startswith("ada-") and len(outcome.user.username) == 10
    domain.store.federated_identities.unlink(PROVIDER.id, "upstream-user-1")
    refusal = domain.refused(claims(email=None))  # both taken now
    assert "username is taken" in refusal.reason


def test_without_jit_an_unknown_account_is_refused(domain: Domain) -> None:
    refusal = domain.refused(jit=False)
    assert refusal.reason.startswith("No account here is linked to your Corp SSO account")


def test_concurrent_first_sign_ins_make_one_account(domain: Domain) -> None:
    outcomes: list[Account | Refused] = []
    start = threading.Barrier(8)

    def sign_in() -> None:
        start.wait()
        outcomes.append(domain.resolve())

    threads = [threading.Thread(target=sign_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, Account) for o in outcomes), outcomes
    assert len({o.user.id for o in outcomes if isinstance(o, Account)}) == 1
    assert [o.outcome for o in outcomes if isinstance(o, Account)].count("created") == 1
    assert domain.counts() == (1, 1, 1)


def test_the_plan_is_what_resolve_would_do_without_writing(domain: Domain) -> None:
    before = domain.counts()
    plan = plan_account(domain.store, PROVIDER, claims(), NOW)
    assert isinstance(plan, Plan) and plan.action == "create"
    assert plan.describe() == "Create the account ada, and join 1 group(s)."
    assert domain.counts() == before


# --- the account page's link -------------------------------------------------------------------


def test_a_signed_in_user_links_their_upstream_account_once(domain: Domain) -> None:
    bob = domain.add(user("bob"))
    carol = domain.add(user("carol"))
    linked = link_identity(domain.store, PROVIDER, claims(), bob, NOW)
    assert isinstance(linked, FederatedIdentity) and linked.user_id == bob.id
    again = link_identity(domain.store, PROVIDER, claims(), bob, NOW)
    assert isinstance(again, Refused) and "linked to this account already" in again.reason
    other = link_identity(domain.store, PROVIDER, claims(), carol, NOW)
    assert isinstance(other, Refused) and "already linked to another account" in other.reason
    assert domain.store.federated_identities.list_for_user(carol.id) == []


# --- the session -------------------------------------------------------------------------------


def test_a_federated_sign_in_starts_a_session_that_records_the_provider(domain: Domain) -> None:
    bob = domain.add(user("bob"))
    policy = LoginPolicy(ThrottlePolicy(900, 5, 50, 50, 30), 3600, b"d" * 32)
    cookies = Attempt(username="", password="", ip="127.0.0.1")
    outcome = sign_in_verified(
        domain.store, policy, bob, ("fed",), cookies, NOW, upstream_provider=PROVIDER.id
    )
    assert isinstance(outcome, SignedIn)
    assert (outcome.session.amr, outcome.session.upstream_provider) == (("fed",), PROVIDER.id)
    assert acr_for(outcome.session.amr) == ACR_PASSWORD  # `fed` is one factor
    stored = domain.store.sessions.get(outcome.session.id_hash)
    assert stored is not None and stored.upstream_provider == PROVIDER.id


def test_the_session_was_authenticated_when_the_provider_says(domain: Domain) -> None:
    """A silent sign-in through a provider's session is no fresh sign-in here: the session's
    `auth_time` is the ID token's, so a sensitive page asks for a fresh one; never before the
    account's cut-off (its password change, creation or revocation), never after now."""
    bob = domain.add(user("bob"))  # its cut-off: T0, an hour before NOW
    policy = LoginPolicy(ThrottlePolicy(900, 5, 50, 50, 30), 3600, b"d" * 32)
    cookies = Attempt(username="", password="", ip="127.0.0.1")
    half_an_hour_ago = NOW - timedelta(minutes=30)
    for said, expected in (
        (half_an_hour_ago.timestamp(), half_an_hour_ago),
        ((T0 - timedelta(hours=5)).timestamp(), T0),  # before the cut-off
        ((NOW + timedelta(hours=1)).timestamp(), NOW),  # a clock ahead
        (None, NOW),  # the provider did not say
        (1e20, NOW),
        (-1e20, T0),
    ):
        at = authenticated_at(claims(auth_time=said), NOW)
        outcome = sign_in_verified(
            domain.store, policy, bob, ("fed",), cookies, NOW, upstream_provider=PROVIDER.id,
            auth_time=at,
        )  # fmt: skip
        assert isinstance(outcome, SignedIn) and outcome.session.auth_time == expected, said
        assert current_session(domain.store, outcome.raw_session_id, NOW) is not None
    stale = sign_in_verified(
        domain.store, policy, bob, ("fed",), cookies, NOW,
        auth_time=authenticated_at(claims(auth_time=half_an_hour_ago.timestamp()), NOW),
    )  # fmt: skip
    assert isinstance(stale, SignedIn)
    assert step_up_needed(stale.session, UserFactors(), NOW) == StepUp(fresh=True, second_factor=False)
