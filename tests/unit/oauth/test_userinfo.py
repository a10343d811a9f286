"""The UserInfo endpoint's decisions (OIDC Core §5.3, RFC 6750 §3.1) on the protocol core."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.model import RevocationKind, User
from tessera.oauth import errors
from tessera.oauth.tokens import AccessTokenSpec

from .conftest import Core

AUDIENCE = "https://orders.test/"


def access_token(
    core: Core, user: User | None, scope: str = "openid", lifetime: int = 600
) -> tuple[str, dict[str, Any]]:
    """An access token the core signed now: a user's, or an app's own (`user=None`)."""
    spec = AccessTokenSpec(
        subject=user.id if user else "app-reports",
        sub_type="user" if user else "client",
        client_id="app-web",
        audience=AUDIENCE,
        scope=scope,
        lifetime=lifetime,
    )
    return core.issuer.access_token(spec, int(core.clock().timestamp()))


def test_a_users_openid_token_gets_its_sub(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice)
    assert core.userinfo(token) == {"sub": alice.id}


def test_claims_follow_the_scopes(core: Core) -> None:
    alice = core.add_user(display_name="Alice Example", email="alice@example.test")
    profile, _ = access_token(core, alice, "openid profile")
    assert core.userinfo(profile) == {
        "sub": alice.id,
        "name": "Alice Example",
        "preferred_username": "alice",
    }
    email, _ = access_token(core, alice, "openid email")
    assert core.userinfo(email) == {
        "sub": alice.id,
        "email": "alice@example.test",
        "email_verified": False,
    }
    both, _ = access_token(core, alice, "openid profile email https://orders.test/read")
    all_of_them = {"sub", "name", "preferred_username", "email", "email_verified"}
    assert set(core.userinfo(both)) == all_of_them


def test_email_verified_is_the_stored_state(core: Core) -> None:
    """OIDC Core §5.1: `email_verified` says whether the address was verified here (an
    administrator or provisioning set it, or a password reset proved it)."""
    alice = core.add_user(email="alice@example.test")
    core.store.users.update(replace(alice, email_verified=True))
    token, _ = access_token(core, alice, "openid email")
    assert core.userinfo(token)["email_verified"] is True


def test_a_revoked_token_is_invalid_token(core: Core) -> None:
    alice = core.add_user()
    token, claims = access_token(core, alice)
    now = core.clock()
    core.store.revocations.append(
        RevocationKind.JTI, claims["jti"], now, now + timedelta(hours=1), now
    )
    with pytest.raises(errors.InvalidToken, match="revoked"):
        core.userinfo(token)


def test_a_subject_cut_off_revokes_tokens_issued_before_it(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice)
    now = core.clock.advance(1)
    core.store.revocations.append(
        RevocationKind.SUBJECT, alice.id, now, now + timedelta(hours=1), now
    )
    with pytest.raises(errors.InvalidToken, match="revoked"):
        core.userinfo(token)
    core.clock.advance(1)  # a token of the cut-off's own second is revoked too (1 s iat)
    fresh, _ = access_token(core, alice)
    assert core.userinfo(fresh) == {"sub": alice.id}


def test_an_expired_token_is_invalid_token(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice, lifetime=300)
    core.clock.advance(299)
    assert core.userinfo(token) == {"sub": alice.id}  # also puts it in the verified-token cache
    core.clock.advance(2)
    with pytest.raises(errors.InvalidToken) as caught:
        core.userinfo(token)
    assert caught.value.description == "the access token is invalid or expired"
    assert caught.value.debug  # why, for the audit log and server logs only


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 20000])
def test_what_is_not_our_access_token_is_invalid_token(core: Core, token: str) -> None:
    with pytest.raises(errors.InvalidToken):
        core.userinfo(token)


def test_an_id_token_is_not_an_access_token(core: Core) -> None:
    alice = core.add_user()
    now = int(core.clock().timestamp())
    id_token = core.issuer.id_token(
        subject=alice.id,
        client_id="app-web",
        now=now,
        lifetime=600,
        auth_time=now,
        nonce=None,
        access_token=None,
        extra={},
    )
    with pytest.raises(errors.InvalidToken):
        core.userinfo(id_token)


def test_an_apps_own_token_has_no_user_insufficient_scope(core: Core) -> None:
    token, _ = access_token(core, None, "openid")
    with pytest.raises(errors.InsufficientScope) as caught:
        core.userinfo(token)
    assert (caught.value.status, caught.value.scope) == (403, "openid")


def test_a_token_without_openid_is_insufficient_scope(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice, "profile https://orders.test/read")
    with pytest.raises(errors.InsufficientScope) as caught:
        core.userinfo(token)
    assert caught.value.body() == {
        "error": "insufficient_scope",
        "error_description": "the token lacks the openid scope",
    }
    assert caught.value.scope == "openid"


def test_a_disabled_user_is_invalid_token(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice)
    core.store.users.update(replace(alice, disabled_at=core.clock()))
    with pytest.raises(errors.InvalidToken, match="no longer active"):
        core.userinfo(token)


def test_a_deleted_user_is_invalid_token(core: Core) -> None:
    alice = core.add_user()
    token, _ = access_token(core, alice)
    core.store.users.delete(alice.id)
    with pytest.raises(errors.InvalidToken, match="no longer active"):
        core.userinfo(token)
