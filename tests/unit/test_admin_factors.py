"""The administrators' side of second factors (`tessera.manage.factors`, docs/mfa.md), on the
in-memory and SQLite stores: what a user's factors look like to an administrator (never a key,
a secret or a hash), resetting them (all or one kind; the user's sessions end; audited), the
domain's sign-in policy, and an app's own policy.

Factor rows are made through the store here; the HTTP tests (tests/e2e/test_admin_factors.py)
cover the routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tessera.domain.model import BrowserSession, Passkey, TotpFactor, User
from tessera.manage import apps as app_rules
from tessera.manage import factors as factor_rules
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import InvalidInput, NotFoundError
from tessera.store.memory import MemoryStore
from tessera.store.protocols import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PUBLIC_KEY = b"\xa5\x01\x02\x03&public-key-bytes"
SEALED = b"sealed-totp-secret-bytes"
CODE_HASHES = [f"recovery-hash-{i:02d}" for i in range(10)]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    else:
        from tessera.store.sql import SqlStore, upgrade

        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        s = SqlStore.open(url)
    s.ensure_domain("Default", T0)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def actor(store: Store) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


def _user(store: Store, username: str = "carol") -> User:
    user = User(f"id-{username}", username, "hash", username.title(), None, False, T0, T0)
    store.users.add(user)
    return user


def _passkey(user: User, credential_id: str, *, synced: bool, created: datetime) -> Passkey:
    return Passkey(
        credential_id=credential_id,
        user_id=user.id,
        name=f"Key {credential_id}",
        public_key=PUBLIC_KEY,
        sign_count=3,
        created_at=created,
        aaguid="ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4" if synced else "",
        backed_up=synced,
    )


def _enroll_everything(store: Store, user: User) -> None:
    factors = store.factors
    factors.add_passkey(_passkey(user, "cred-aaaa", synced=True, created=T0))
    factors.add_passkey(_passkey(user, "cred-bbbb", synced=False, created=T0 + timedelta(hours=1)))
    factors.use_passkey("cred-aaaa", 3, 4, T0 + timedelta(days=1))
    factors.put_totp(
        TotpFactor(user.id, SEALED, T0, confirmed_at=T0 + timedelta(minutes=1), last_step=1000)
    )
    factors.replace_recovery_codes(user.id, CODE_HASHES, T0)
    assert factors.use_recovery_code(user.id, CODE_HASHES[0], T0 + timedelta(days=2))
    assert factors.use_recovery_code(user.id, CODE_HASHES[1], T0 + timedelta(days=3))


def _open_session(store: Store, user: User, name: str) -> None:
    store.sessions.add(BrowserSession(name, user.id, T0, T0 + timedelta(days=1), "csrf"))


def test_a_user_without_factors_has_an_empty_view(store: Store) -> None:
    user = _user(store)
    assert factor_rules.factors_view(store, user) == {
        "user_id": user.id,
        "username": "carol",
        "passkeys": [],
        "authenticator_app": None,
        "recovery_codes": {"left": 0, "total": 0, "created_at": None},
        "has_second_factor": False,
    }


def test_the_view_shows_each_factor_and_never_a_key_secret_or_hash(store: Store) -> None:
    user = _user(store)
    _enroll_everything(store, user)
    view = factor_rules.factors_view(store, user)
    assert [p["credential_id"] for p in view["passkeys"]] == ["cred-aaaa", "cred-bbbb"]
    first, second = view["passkeys"]
    assert first["name"] == "Key cred-aaaa" and first["synced"] is True
    assert first["aaguid"] == "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    assert first["last_used_at"] == (T0 + timedelta(days=1)).isoformat()
    assert second["synced"] is False and second["aaguid"] is None
    assert second["last_used_at"] is None
    assert view["authenticator_app"] == {
        "status": "active",
        "since": (T0 + timedelta(minutes=1)).isoformat(),
    }
    assert view["recovery_codes"] == {"left": 8, "total": 10, "created_at": T0.isoformat()}
    assert view["has_second_factor"] is True
    text = json.dumps(view)
    assert "recovery-hash" not in text and "sealed" not in text and "public-key" not in text


def test_a_pending_authenticator_app_is_not_a_second_factor(store: Store) -> None:
    user = _user(store)
    store.factors.put_totp(TotpFactor(user.id, SEALED, T0))
    view = factor_rules.factors_view(store, user)
    assert view["authenticator_app"] == {"status": "pending", "since": T0.isoformat()}
    assert view["has_second_factor"] is False


def test_resetting_one_kind_keeps_the_others_and_ends_the_sessions(
    store: Store, actor: Actor
) -> None:
    user, other = _user(store), _user(store, "dave")
    _enroll_everything(store, user)
    store.factors.put_totp(TotpFactor(other.id, SEALED, T0))
    _open_session(store, user, "s1")
    _open_session(store, user, "s2")
    _open_session(store, other, "s3")

    done = factor_rules.reset_factors(store, "carol", T0, actor, what="passkeys")

    assert done.view() == {
        "user_id": user.id,
        "username": "carol",
        "removed": {"passkeys": 2, "authenticator_app": 0, "recovery_codes": 0},
        "sessions_ended": 2,
    }
    view = factor_rules.factors_view(store, user)
    assert view["passkeys"] == [] and view["authenticator_app"] is not None
    assert view["recovery_codes"]["left"] == 8
    assert store.sessions.list_for_user(user.id, T0) == []
    assert len(store.sessions.list_for_user(other.id, T0)) == 1  # another user's: untouched
    assert store.factors.totp(other.id) is not None
    (event,) = store.audit.query(type="admin.user_factors_reset")
    assert event.actor == "admin-sub" and event.user_id == user.id
    assert event.details == {
        "what": "passkeys",
        "passkeys": 2,
        "authenticator_app": 0,
        "recovery_codes": 0,
        "sessions": 2,
    }


def test_resetting_totp_then_recovery_codes(store: Store, actor: Actor) -> None:
    user = _user(store)
    _enroll_everything(store, user)
    assert factor_rules.reset_factors(store, user.id, T0, actor, what="totp").totp == 1
    assert store.factors.totp(user.id) is None
    assert factor_rules.reset_factors(store, user.id, T0, actor, what="recovery").recovery_codes == 10
    assert store.factors.recovery_codes(user.id) == []
    assert len(store.factors.passkeys_for(user.id)) == 2


def test_resetting_everything_leaves_nothing(store: Store, actor: Actor) -> None:
    user = _user(store)
    _enroll_everything(store, user)
    done = factor_rules.reset_factors(store, user.username, T0, actor)
    assert (done.passkeys, done.totp, done.recovery_codes) == (2, 1, 10)
    view = factor_rules.factors_view(store, user)
    assert view["passkeys"] == [] and view["authenticator_app"] is None
    assert view["recovery_codes"]["total"] == 0 and view["has_second_factor"] is False
    # A credential id removed may be registered again (nothing half-removed remains).
    store.factors.add_passkey(_passkey(user, "cred-aaaa", synced=True, created=T0))


def test_a_bad_reset_removes_nothing(store: Store, actor: Actor) -> None:
    user = _user(store)
    _enroll_everything(store, user)
    _open_session(store, user, "s1")
    with pytest.raises(InvalidInput, match="give one of all, passkeys, totp, recovery"):
        factor_rules.reset_factors(store, user.id, T0, actor, what="everything")
    with pytest.raises(NotFoundError, match="no user 'nobody'"):
        factor_rules.reset_factors(store, "nobody", T0, actor)
    assert factor_rules.factors_view(store, user)["has_second_factor"] is True
    assert len(store.sessions.list_for_user(user.id, T0)) == 1
    assert store.audit.query(type="admin.user_factors_reset") == []


def test_the_domain_sign_in_policy(store: Store, actor: Actor) -> None:
    assert factor_rules.sign_in_policy(store) == {
        "domain": _name(store),
        "mfa_policy": "optional",
        "admin_mfa_required": False,
    }
    base = "https://id.test"
    set_policy = factor_rules.set_sign_in_policy
    view = set_policy(store, base_issuer=base, now=T0, actor=actor, mfa_policy="required")
    assert (view["mfa_policy"], view["admin_mfa_required"]) == ("required", False)
    view = set_policy(store, base_issuer=base, now=T0, actor=actor, admin_mfa_required=True)
    assert (view["mfa_policy"], view["admin_mfa_required"]) == ("required", True)
    domain = store.domains.get(store.domain_id)
    assert domain is not None and domain.settings.mfa_policy == "required"
    assert domain.settings.admin_mfa_required is True
    events = store.audit.query(type="admin.sign_in_policy_set")
    assert [e.details["changed"] for e in events] == [["admin_mfa_required"], ["mfa_policy"]]
    assert events[0].details["mfa_policy"] == "required"
    # None: back to the default.
    view = set_policy(store, base_issuer=base, now=T0, actor=actor, mfa_policy=None)
    assert view["mfa_policy"] == "optional"


def _name(store: Store) -> str:
    domain = store.domains.get(store.domain_id)
    assert domain is not None
    return domain.name


def test_a_bad_sign_in_policy_is_refused_and_changes_nothing(store: Store, actor: Actor) -> None:
    base = "https://id.test"
    with pytest.raises(InvalidInput, match="mfa_policy must be one of: off, optional, required"):
        factor_rules.set_sign_in_policy(
            store, base_issuer=base, now=T0, actor=actor, mfa_policy="sometimes"
        )
    with pytest.raises(InvalidInput, match="admin_mfa_required must be true or false"):
        factor_rules.set_sign_in_policy(
            store,
            base_issuer=base,
            now=T0,
            actor=actor,
            admin_mfa_required="yes",  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInput, match="nothing to change"):
        factor_rules.set_sign_in_policy(store, base_issuer=base, now=T0, actor=actor)
    assert factor_rules.sign_in_policy(store)["mfa_policy"] == "optional"
    assert store.audit.query(type="admin.sign_in_policy_set") == []


def test_an_app_has_its_own_policy(store: Store, actor: Actor) -> None:
    app, _ = app_rules.create_app(
        store, b"pepper", name="Payroll", now=T0, actor=actor,
        redirect_uris=["https://payroll.example.test/cb"], mfa_policy="required",
    )  # fmt: skip
    assert store.clients.get(app.client_id).mfa_policy == "required"  # type: ignore[union-attr]
    updated = app_rules.update_app(store, app.client_id, actor=actor, mfa_policy=None)
    assert updated.mfa_policy is None
    assert app_rules.update_app(store, "Payroll", actor=actor, name="Pay").mfa_policy is None
    with pytest.raises(InvalidInput, match="mfa_policy must be one of"):
        app_rules.update_app(store, "Pay", actor=actor, mfa_policy="sometimes")
    with pytest.raises(InvalidInput, match="mfa_policy must be one of"):
        app_rules.create_app(store, b"pepper", name="X", now=T0, actor=actor, public=True,
                             redirect_uris=["https://x.example.test/cb"], mfa_policy="always")


def test_the_response_models_keep_every_field_of_the_views(store: Store, actor: Actor) -> None:
    # FastAPI answers `model.model_validate(view)` dumped: nothing may be lost or added.
    from tessera.domain.identity_domains import DomainSettings
    from tessera.manage.domains import domain_view
    from tessera.web.admin import schemas

    user = _user(store)
    _enroll_everything(store, user)
    policy = factor_rules.set_sign_in_policy(
        store, base_issuer="https://id.test", now=T0, actor=actor, mfa_policy="required"
    )
    domain = store.domains.get(store.domain_id)
    assert domain is not None
    settings = DomainSettings(access_token_ttl=600, mfa_policy="off", admin_mfa_required=True)
    views = [
        (schemas.FactorsOut, factor_rules.factors_view(store, user)),
        (schemas.SignInPolicyOut, policy),
        (schemas.FactorsResetOut, factor_rules.reset_factors(store, user.id, T0, actor).view()),
        (schemas.DomainOut, domain_view(domain.with_changes(settings=settings), "https://id.test")),
    ]
    for model, view in views:
        assert model.model_validate(view).model_dump(mode="json") == view, model
