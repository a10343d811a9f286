"""How long revocation events are kept (`tessera.oauth.retention`): the one formula."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tessera.domain.model import RevocationKind
from tessera.oauth.keyring import MAX_TOKEN_LIFETIME
from tessera.oauth.retention import family_bound, kept_until

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_subject_cut_off_is_kept_as_long_as_an_access_token_can_live() -> None:
    assert kept_until(RevocationKind.SUBJECT, NOW) == NOW + MAX_TOKEN_LIFETIME


def test_a_jti_is_kept_until_the_tokens_exp_never_longer_than_a_token_can_live() -> None:
    exp = NOW + timedelta(minutes=5)
    assert kept_until(RevocationKind.JTI, NOW, exp) == exp
    assert kept_until(RevocationKind.JTI, NOW, NOW + timedelta(days=400)) == (
        NOW + MAX_TOKEN_LIFETIME
    )


def test_a_family_is_kept_while_its_refresh_or_access_tokens_can_live() -> None:
    assert kept_until(RevocationKind.GRANT, NOW, NOW + timedelta(days=90)) == (
        NOW + timedelta(days=90)
    )
    # A family ending sooner still has access tokens that live up to their longest lifetime.
    assert kept_until(RevocationKind.GRANT, NOW, NOW) == NOW + MAX_TOKEN_LIFETIME
    assert kept_until(RevocationKind.GRANT, NOW, family_bound(NOW, 90 * 86400)) == (
        NOW + timedelta(days=90)
    )


@pytest.mark.parametrize("kind", [RevocationKind.JTI, RevocationKind.GRANT])
def test_a_token_or_family_event_needs_what_it_covers(kind: RevocationKind) -> None:
    with pytest.raises(ValueError):
        kept_until(kind, NOW)
