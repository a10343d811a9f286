"""A domain's `password_min_length` holds wherever `tessera.manage.users` sets a password (the
CLI, the admin API and a new domain's first administrator all go through it): docs/domains.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.identity_domains import DomainSettings, IdentityDomain
from tessera.domain.passwords import MIN_PASSWORD_LENGTH
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput
from tessera.manage.users import create_user, new_user, set_password
from tessera.store.memory import MemoryStore
from tessera.store.protocols import DomainContent

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FOURTEEN = "Tessera-Pw-142"
SIXTEEN = "Tessera-Pass-164"
ACTOR = Actor("test", lambda type, **details: None)


@pytest.fixture
def stores() -> tuple[MemoryStore, MemoryStore]:
    """The default domain and a domain whose minimum is 16 characters."""
    default = MemoryStore()
    default.ensure_domain("Default", NOW)
    strict = IdentityDomain(
        id="dstrict",
        name="strict",
        display_name="Strict",
        created_at=NOW,
        settings=DomainSettings(password_min_length=16),
    )
    # The domain's store made first, beside the default one (as `for_domain` would).
    strict_store = MemoryStore(strict.id, default.domains)
    default.domains.create(strict, DomainContent())
    return default, strict_store


def test_the_domains_minimum_holds_when_a_user_is_created(
    stores: tuple[MemoryStore, MemoryStore],
) -> None:
    default, strict = stores
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        create_user(strict, username="dave", password=FOURTEEN, now=NOW, actor=ACTOR)
    assert strict.users.get_by_username("dave") is None
    create_user(strict, username="dave", password=SIXTEEN, now=NOW, actor=ACTOR)
    # The default domain keeps the policy's own minimum.
    create_user(default, username="dave", password=FOURTEEN, now=NOW, actor=ACTOR)


def test_the_domains_minimum_holds_when_a_password_is_set(
    stores: tuple[MemoryStore, MemoryStore],
) -> None:
    _, strict = stores
    create_user(strict, username="dave", password=SIXTEEN, now=NOW, actor=ACTOR)
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        set_password(strict, "dave", FOURTEEN, NOW, ACTOR)
    set_password(strict, "dave", SIXTEEN[::-1], NOW, ACTOR)


def test_a_new_user_is_checked_against_the_minimum_given() -> None:
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        new_user(username="root", password=FOURTEEN, now=NOW, min_length=16)
    assert new_user(username="root", password=FOURTEEN, now=NOW).username == "root"
    with pytest.raises(InvalidInput, match=f"at least {MIN_PASSWORD_LENGTH} characters"):
        new_user(username="root", password="Short-pw-1", now=NOW, min_length=None)
    # A domain's minimum replaces the policy's own, also below it.
    assert len("Short-pw-1") < MIN_PASSWORD_LENGTH
    assert new_user(username="root", password="Short-pw-1", now=NOW, min_length=8).username


def test_the_rest_of_the_policy_still_holds_under_a_domain_minimum() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        new_user(username="root", password=" " * 20, now=NOW, min_length=16)
    with pytest.raises(InvalidInput, match="username"):
        new_user(username="rootuser", password="my-rootuser-secret-1", now=NOW, min_length=16)
