"""The two decisions of the federation pages (docs/federation.md): home-realm discovery
(`provider_for_email`: whole e-mail domains only, enabled providers only) and removing a linked
provider from one's account (`unlink_refused`: never the last way to sign in)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.model import FederatedIdentity, UpstreamProvider, User
from tessera.oauth.federation.home_realm import provider_for_email
from tessera.oauth.interaction.account import unlink_refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _provider(name: str, domains: tuple[str, ...], enabled: bool = True) -> UpstreamProvider:
    return UpstreamProvider(
        id="up_" + name,
        name=name,
        display_name=name.title(),
        issuer=f"https://{name}.example",
        client_id="tessera",
        auth_method="client_secret_basic",
        created_at=NOW,
        updated_at=NOW,
        email_domains=domains,
        enabled=enabled,
    )


PROVIDERS = [
    _provider("corp", ("corp.example", "corp-mail.example")),
    _provider("old", ("old.example",), enabled=False),
]


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ada@corp.example", "corp"),
        ("Ada@CORP.Example", "corp"),
        ("  ada@corp-mail.example ", "corp"),
        ("ada@corp.example.", "corp"),
        ("ada@mail.corp.example", None),  # a subdomain is not claimed
        ("ada@evilcorp.example", None),
        ("ada@old.example", None),  # a disabled provider sends nobody
        ("corp.example", None),
        ("@corp.example", None),
        ("ada@", None),
        ("ada", None),
    ],
)
def test_home_realm_discovery(email: str, expected: str | None) -> None:
    found = provider_for_email(PROVIDERS, email)
    assert (found.name if found else None) == expected


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
