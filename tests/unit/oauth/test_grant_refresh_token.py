"""The refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2; docs/security.md rules 16-18): the
rotation rule as a pure function over what was read, then through the token endpoint on the
memory store with the injected clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import Client, Grant, RefreshToken
from tessera.oauth import errors
from tessera.oauth.grants.refresh_token import (
    RefreshState,
    RotateOutcome,
    refresh_outcome,
    successor_of,
)
from tessera.oauth.grants.response import TokenResponse
from tests.unit.oauth.conftest import T0, Core

GRACE = 2.0


# --- the rule, without a store -----------------------------------------------------------------


def a_grant(**kw: Any) -> Grant:
    values: dict[str, Any] = {
        "grant_id": "g-1",
        "client_id": "app-1",
        "user_id": "u-1",
        "scopes": ("openid",),
        "audience": None,
        "auth_time": T0,
        "created_at": T0,
        "absolute_expiry": T0 + timedelta(days=90),
    }
    values.update(kw)
    return Grant(**values)


def a_token(**kw: Any) -> RefreshToken:
    values: dict[str, Any] = {
        "token_hash": "rt-1",
        "grant_id": "g-1",
        "issued_at": T0,
        "expires_at": T0 + timedelta(days=14),
    }
    values.update(kw)
    return RefreshToken(**values)


def used(seconds_ago: float, successor: str = "rt-2") -> RefreshToken:
    return a_token(used_at=T0 - timedelta(seconds=seconds_ago), successor_hash=successor)


def outcome(
    token: RefreshToken | None = None,
    grant: Grant | None = None,
    *,
    client_id: str = "app-1",
    successor_hash: str = "rt-2",
    successor_unused: bool = True,
) -> RotateOutcome:
    state = RefreshState(
        token=token,
        grant=grant,
        client_id=client_id,
        now=T0,
        grace_seconds=GRACE,
        successor_hash=successor_hash,
        successor_unused=successor_unused,
    )
    return refresh_outcome(state)


def test_an_unused_live_token_of_the_app_rotates() -> None:
    assert outcome(a_token(), a_grant()) is RotateOutcome.ROTATED


def test_an_unknown_token_or_one_without_its_grant_is_invalid() -> None:
    assert outcome(None, None) is RotateOutcome.INVALID
    assert outcome(a_token(), None) is RotateOutcome.INVALID


def test_a_token_of_another_app_is_foreign_before_anything_else() -> None:
    assert outcome(a_token(), a_grant(), client_id="app-2") is RotateOutcome.FOREIGN
    revoked = a_grant(revoked_at=T0)
    assert outcome(used(100), revoked, client_id="app-2") is RotateOutcome.FOREIGN


def test_a_token_of_a_revoked_or_ended_family_is_invalid_even_when_reused() -> None:
    assert outcome(a_token(), a_grant(revoked_at=T0)) is RotateOutcome.INVALID
    assert outcome(a_token(), a_grant(absolute_expiry=T0)) is RotateOutcome.INVALID
    assert outcome(used(100), a_grant(revoked_at=T0)) is RotateOutcome.INVALID


def test_an_unused_token_past_its_inactivity_expiry_is_invalid() -> None:
    assert outcome(a_token(expires_at=T0), a_grant()) is RotateOutcome.INVALID


def test_a_retry_inside_the_grace_window_for_the_unused_successor_is_retry() -> None:
    assert outcome(used(0), a_grant()) is RotateOutcome.RETRY
    assert outcome(used(GRACE - 0.001), a_grant()) is RotateOutcome.RETRY


def test_a_reuse_at_or_after_the_grace_window_is_replay() -> None:
    assert outcome(used(GRACE), a_grant()) is RotateOutcome.REPLAY
    assert outcome(used(86400), a_grant()) is RotateOutcome.REPLAY


def test_a_retry_asking_another_successor_is_replay() -> None:
    assert outcome(used(0), a_grant(), successor_hash="rt-other") is RotateOutcome.REPLAY


def test_a_retry_after_the_successor_was_used_is_replay() -> None:
    assert outcome(used(0), a_grant(), successor_unused=False) is RotateOutcome.REPLAY


def test_a_used_token_is_reuse_even_past_its_own_expiry() -> None:
    token = replace(used(1), expires_at=T0 - timedelta(seconds=1))
    assert outcome(token, a_grant()) is RotateOutcome.RETRY
    assert outcome(replace(token, used_at=T0 - timedelta(days=1)), a_grant()) is (
        RotateOutcome.REPLAY
    )


def test_the_successor_is_derived_from_the_presented_token() -> None:
    assert successor_of("rt", b"k" * 32) == successor_of("rt", b"k" * 32)
    assert successor_of("rt", b"k" * 32) != successor_of("rt2", b"k" * 32)
    assert successor_of("rt", b"k" * 32) != successor_of("rt", b"j" * 32)


# --- through the token endpoint ----------------------------------------------------------------


class Family:
    """An app and a user's refresh family started by a code redemption."""

    def __init__(self, core: Core, **app_kw: Any) -> None:
        self.core = core
        self.user = core.add_user()
        core.add_resource()
        self.app, self.secret = core.add_app(**app_kw)
        code = core.issue_code(
            self.app, self.user, scopes=("openid", "https://orders.test/read"),
            audience="https://orders.test/",
        )  # fmt: skip
        first = self.call(self.app, self.secret, grant_type="authorization_code", code=code)
        self.refresh_token: str = first.body["refresh_token"]

    def call(self, app: Client, secret: str | None, **form: str) -> TokenResponse:
        values = {"client_id": app.client_id, **form}
        if secret is not None:
            values["client_secret"] = secret
        return self.core.token_endpoint().handle(None, values, set())

    def refresh(self, token: str | None = None, **form: str) -> TokenResponse:
        presented = token or self.refresh_token
        return self.call(
            self.app, self.secret, grant_type="refresh_token", refresh_token=presented, **form
        )

    def refused(self, token: str | None = None, **form: str) -> str:
        with pytest.raises(errors.OAuthError) as caught:
            self.refresh(token, **form)
        return caught.value.description

    def grant(self) -> Grant:
        token = self.core.store.refresh_tokens.get(sha256_b64(self.refresh_token))
        assert token is not None
        grant = self.core.store.grants.get(token.grant_id)
        assert grant is not None
        return grant


def test_a_refresh_rotates_and_the_successor_works(core: Core) -> None:
    family = Family(core)
    issued = family.refresh()
    assert issued.claims.grant_type == "refresh_token" and issued.claims.sub == family.user.id
    assert issued.body["refresh_token"] != family.refresh_token
    assert "id_token" in issued.body
    core.clock.advance(60)
    again = family.refresh(issued.body["refresh_token"])
    assert again.body["refresh_token"] not in (issued.body["refresh_token"], family.refresh_token)


def test_a_retry_inside_the_grace_window_gets_the_same_successor(core: Core) -> None:
    family = Family(core)
    first = family.refresh()
    core.clock.advance(core.policy.refresh_grace_seconds - 0.5)
    retry = family.refresh()
    assert retry.body["refresh_token"] == first.body["refresh_token"]
    assert family.grant().revoked_at is None


def test_a_reuse_after_the_grace_window_revokes_the_family(core: Core) -> None:
    family = Family(core)
    successor = family.refresh().body["refresh_token"]
    core.clock.advance(core.policy.refresh_grace_seconds)

    assert family.refused() == "unknown, expired or revoked refresh token"

    assert family.grant().revoked_at == core.clock()
    assert family.refused(successor) == "unknown, expired or revoked refresh token"


def test_a_replay_is_refused_like_any_unusable_token_but_the_audit_learns_why(
    core: Core,
) -> None:
    family = Family(core)
    family.refresh()
    core.clock.advance(core.policy.refresh_grace_seconds)
    with pytest.raises(errors.InvalidGrant) as caught:
        family.refresh()
    assert caught.value.body()["error_description"] == "unknown, expired or revoked refresh token"
    assert caught.value.audit_reason == "reuse of a rotated refresh token: its family is revoked"


def test_a_retry_after_the_successor_was_used_revokes_the_family(core: Core) -> None:
    family = Family(core)
    successor = family.refresh().body["refresh_token"]
    family.refresh(successor)
    assert family.refused() == "unknown, expired or revoked refresh token"
    assert family.grant().revoked_at is not None


def test_a_refresh_token_ends_with_inactivity(core: Core) -> None:
    family = Family(core, refresh_ttl=3600)
    core.clock.advance(3600)
    assert family.refused() == "unknown, expired or revoked refresh token"
    assert family.grant().revoked_at is None  # expiry is not a replay


def test_a_family_ends_at_its_absolute_expiry_however_often_it_is_used(core: Core) -> None:
    core.policy = replace(core.policy, refresh_absolute_ttl=3 * 86400)
    family = Family(core)
    token = family.refresh_token
    for _ in range(2):
        core.clock.advance(86400)
        token = family.refresh(token).body["refresh_token"]
    successor = core.store.refresh_tokens.get(sha256_b64(token))
    assert successor is not None and successor.expires_at == family.grant().absolute_expiry
    core.clock.advance(86400)
    assert family.refused(token) == "unknown, expired or revoked refresh token"


def test_a_refresh_token_works_only_for_its_app(core: Core) -> None:
    family = Family(core)
    other, other_secret = core.add_app(name="Other")
    with pytest.raises(errors.InvalidGrant, match="another app"):
        family.call(other, other_secret, grant_type="refresh_token",
                    refresh_token=family.refresh_token)  # fmt: skip
    token = core.store.refresh_tokens.get(sha256_b64(family.refresh_token))
    assert token is not None and token.used_at is None  # nothing was written
    family.refresh()


def test_a_narrower_scope_may_be_asked_for_never_a_wider_one(core: Core) -> None:
    family = Family(core)
    assert family.refused(scope="https://orders.test/write") == "scope exceeds what was granted"
    assert family.refused(scope="email") == "scope exceeds what was granted"
    token = core.store.refresh_tokens.get(sha256_b64(family.refresh_token))
    assert token is not None and token.used_at is None  # a bad scope burns nothing
    narrowed = family.refresh(scope="https://orders.test/read")
    assert narrowed.body["scope"] == "read" and "id_token" not in narrowed.body
    assert family.grant().scopes == ("openid", "https://orders.test/read")


def test_a_disabled_user_refreshes_nothing(core: Core) -> None:
    family = Family(core)
    core.store.users.update(replace(family.user, disabled_at=core.clock()))
    assert family.refused() == "the user is no longer active"


def test_a_missing_refresh_token_is_invalid_request_an_oversized_one_invalid_grant(
    core: Core,
) -> None:
    family = Family(core)
    with pytest.raises(errors.InvalidRequest):
        family.call(family.app, family.secret, grant_type="refresh_token")
    assert family.refused("x" * 257) == "unknown, expired or revoked refresh token"
    assert family.refused("never-issued") == "unknown, expired or revoked refresh token"
