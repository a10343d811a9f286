"""Removing a linked provider from one's account (docs/federation.md, `unlink_refused`): never
the last way to sign in. Home-realm discovery has its tests in federation/test_home_realm.py."""

from __future__ import annotations

from datetime import UTC, datetime

from tessera.domain.model import FederatedIdentity, User
from tessera.oauth.interaction.account import unlink_refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)


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
    assert unlink_refused(_user("$argon2id$x"), one, "up_corp", "s1", passkeys=0) is None
    assert unlink_refused(_user(""), one, "up_corp", "s1", passkeys=1) is None
    two = [_link("up_corp"), _link("up_other", "s2")]
    assert unlink_refused(_user(""), two, "up_corp", "s1", passkeys=0) is None


def test_the_last_way_to_sign_in_stays() -> None:
    refusal = unlink_refused(_user(""), [_link("up_corp")], "up_corp", "s1", passkeys=0)
    assert refusal is not None and "set a password first" in refusal


def test_only_the_users_own_link_is_removed() -> None:
    links = [_link("up_corp")]
    for provider_id, subject in (("up_corp", "s2"), ("up_other", "s1"), ("", "")):
        refusal = unlink_refused(_user("$argon2id$x"), links, provider_id, subject, passkeys=0)
        assert refusal == "This provider is not linked to your account."
