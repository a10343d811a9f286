"""Removing a linked provider (docs/federation.md, `unlink_refused`) or a passkey from one's
account: never the last way to sign in. Home-realm discovery has its tests in
federation/test_home_realm.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tessera.domain.model import FederatedIdentity, Passkey, UpstreamProvider, User
from tessera.oauth.interaction.account import unlink_refused
from tessera.oauth.interaction.enrollment import FactorRefused, remove_passkey
from tessera.oauth.interaction.requirements import SignInRules
from tests.unit.oauth.conftest import Core

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENABLED = {"up_corp", "up_other"}


def _user(password_hash: str) -> User:
    return User(
        id="u1",
        username="ada",
        password_hash=password_hash,
        display_name="Ada",
        email=None,
        is_admin=False,
        created_at=NOW,
        password_changed_at=NOW,
    )


def _link(provider_id: str, subject: str = "s1") -> FederatedIdentity:
    return FederatedIdentity(provider_id=provider_id, subject=subject, user_id="u1", created_at=NOW)


def test_a_link_may_go_while_another_way_to_sign_in_stays() -> None:
    one = [_link("up_corp")]
    assert unlink_refused(_user("$argon2id$x"), one, "up_corp", "s1", passkeys=0, enabled=ENABLED) is None
    assert unlink_refused(_user(""), one, "up_corp", "s1", passkeys=1, enabled=ENABLED) is None
    two = [_link("up_corp"), _link("up_other", "s2")]
    assert unlink_refused(_user(""), two, "up_corp", "s1", passkeys=0, enabled=ENABLED) is None


def test_the_last_way_to_sign_in_stays() -> None:
    refusal = unlink_refused(_user(""), [_link("up_corp")], "up_corp", "s1", passkeys=0, enabled=ENABLED)
    assert refusal is not None and "set a password first" in refusal


def test_a_link_to_a_disabled_provider_is_no_way_to_sign_in() -> None:
    two = [_link("up_corp"), _link("up_off", "s2")]
    refusal = unlink_refused(_user(""), two, "up_corp", "s1", passkeys=0, enabled={"up_corp"})
    assert refusal is not None and "only way to sign in" in refusal
    # The disabled provider's own link may go: it signs nobody in now.
    assert unlink_refused(_user(""), two, "up_off", "s2", passkeys=0, enabled={"up_corp"}) is None


def test_only_the_users_own_link_is_removed() -> None:
    links = [_link("up_corp")]
    for provider_id, subject in (("up_corp", "s2"), ("up_other", "s1"), ("", "")):
        refusal = unlink_refused(_user("$argon2id$x"), links, provider_id, subject, passkeys=0, enabled=ENABLED)
        assert refusal == "This provider is not linked to your account."


def test_the_last_passkey_of_an_account_without_a_password_or_a_link_stays(core: Core) -> None:
    """A user who unlinked their provider, keeping a passkey (allowed above), cannot then
    remove that passkey: nothing would be left to sign in with."""
    user = replace(core.add_user("ada"), password_hash=None)
    core.store.users.update(user)
    now = core.clock()
    for credential in ("k1", "k2"):
        core.store.factors.add_passkey(Passkey(credential, user.id, credential, b"cose", 0, now))
    rules = SignInRules("optional")
    remove_passkey(core.store, user, rules, "k1", now)  # another one stays
    with pytest.raises(FactorRefused, match="only way to sign in"):
        remove_passkey(core.store, user, rules, "k2", now)
    assert [p.credential_id for p in core.store.factors.passkeys_for(user.id)] == ["k2"]
    # With a linked provider it may go.
    provider = UpstreamProvider(
        "up_corp", "corp", "Corp", "https://corp.test", "c", "client_secret_basic", now, now
    )
    core.store.upstream_providers.add(provider)
    core.store.federated_identities.link(
        FederatedIdentity(provider_id="up_corp", subject="s1", user_id=user.id, created_at=now)
    )
    # Not while that provider is disabled: it signs nobody in.
    core.store.upstream_providers.update(replace(provider, enabled=False))
    with pytest.raises(FactorRefused, match="only way to sign in"):
        remove_passkey(core.store, user, rules, "k2", now)
    core.store.upstream_providers.update(provider)
    remove_passkey(core.store, user, rules, "k2", now)
    assert core.store.factors.passkeys_for(user.id) == []
    # Someone else's credential, or none: not registered, whatever is left.
    with pytest.raises(FactorRefused, match="not registered"):
        remove_passkey(core.store, user, rules, "k2", now)
