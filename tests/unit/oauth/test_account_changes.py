"""A user's changes on their own account pages (`tessera.manage.account`), on the memory store:
the profile's rules, the password change (the current password throttled like a sign-in, the
cut-off, a fresh session for this browser), the sessions, and removing an app's access (its
consent and grants, so its refresh and access tokens die)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.model import BrowserSession, Consent, User
from tessera.domain.passwords import verify_password
from tessera.manage.account import (
    AccountRefused,
    PasswordChange,
    change_password,
    connected_apps,
    end_one_session,
    end_other_sessions,
    notify,
    remove_access,
    update_profile,
)
from tessera.manage.audit import Actor
from tessera.manage.mail import DisabledMailer, Mail
from tessera.oauth.errors import OAuthError
from tessera.oauth.interaction.login import LoginPolicy, current_session
from tessera.oauth.interaction.throttle import ThrottlePolicy
from tests.unit.oauth.conftest import Core

PASSWORD = "correct horse battery"
NEW = "Silver-Meadow-Harbour-73"
POLICY = LoginPolicy(ThrottlePolicy(900, 5, 50, 100, 1), 3600, b"d" * 32)


class Events:
    def __init__(self) -> None:
        self.types: list[str] = []

    def __call__(self, type: str, **_: Any) -> None:
        self.types.append(type)


@pytest.fixture
def events() -> Events:
    return Events()


def actor(events: Events) -> Actor:
    return Actor("user:test", events, "192.0.2.1")


def _session(core: Core, user: User, name: str, amr: tuple[str, ...] = ("pwd",)) -> BrowserSession:
    now = core.clock()
    session = BrowserSession(name, user.id, now, now + timedelta(hours=1), "c", amr=amr)
    core.store.sessions.add(session)
    return session


def _untimed(work: Any) -> Any:
    return work()


def _change(core: Core, user: User, events: Events, **kw: str) -> Any:
    session = core.store.sessions.get("mine") or _session(core, user, "mine", ("pwd", "otp", "mfa"))
    change = PasswordChange(
        current=kw.get("current", PASSWORD), new=kw.get("new", NEW),
        repeated=kw.get("repeated", kw.get("new", NEW)), ip="192.0.2.1",
        session_cookie=None, device_cookie=None,
    )  # fmt: skip
    return change_password(
        core.store, POLICY, session, user, change,
        min_length=None, now=core.clock(), timed=_untimed, actor=actor(events),
    )  # fmt: skip


def test_the_profile_keeps_its_rules(core: Core, events: Events) -> None:
    user = core.add_user()
    updated, changed = update_profile(
        core.store, user, display_name="  Ada  ", email="ada@example.com", actor=actor(events)
    )
    assert (updated.display_name, updated.email, changed) == ("Ada", "ada@example.com", ["display_name", "email"])
    stored = core.store.users.get(user.id)
    assert stored == replace(updated, version=2) and events.types == ["account.profile_updated"]
    _, nothing = update_profile(core.store, updated, display_name="Ada", email="ada@example.com", actor=actor(events))
    assert nothing == [] and events.types == ["account.profile_updated"]
    cleared, _ = update_profile(core.store, updated, display_name="Ada", email=" ", actor=actor(events))
    assert cleared.email is None
    for name, email in (("", "a@example.com"), ("x" * 201, ""), ("bad\x00", ""), ("Ada", "no-at"), ("Ada", "a@b")):
        with pytest.raises(AccountRefused):
            update_profile(core.store, user, display_name=name, email=email, actor=actor(events))


def test_a_password_change_ends_the_rest_and_keeps_this_browser(core: Core, events: Events) -> None:
    user = core.add_user()
    other = _session(core, user, "other")
    app, _ = core.add_app(allowed_scopes=("openid", "offline_access"), grant_types=("authorization_code", "refresh_token"))
    tokens = core.code_flow(app, user, "openid offline_access")
    core.clock.advance(1)

    signed_in = _change(core, user, events)
    assert core.store.sessions.get(other.id_hash).ended_at is not None  # type: ignore[union-attr]
    assert core.store.sessions.get("mine").ended_at is not None  # type: ignore[union-attr]
    fresh = current_session(core.store, signed_in.raw_session_id, core.clock())
    assert fresh is not None and fresh.session.amr == ("pwd", "otp", "mfa")
    with pytest.raises(OAuthError):
        core.refresh(app, tokens["refresh_token"])
    assert core.introspect(app, tokens["access_token"])["active"] is False
    assert events.types == ["account.password_changed"]


def test_a_refused_password_change_writes_nothing(core: Core, events: Events) -> None:
    user = core.add_user()
    for kw, words in (
        ({"current": "wrong"}, "not correct"),
        ({"repeated": NEW + "x"}, "not the same"),
        ({"new": "short"}, "at least"),
        ({"new": "alice-alice-alice"}, None),
    ):
        with pytest.raises(AccountRefused, match=words):
            _change(core, user, events, **kw)
    assert core.store.users.get(user.id) == user and events.types == []


def test_wrong_current_passwords_are_throttled_like_sign_ins(core: Core, events: Events) -> None:
    user = core.add_user()
    for _ in range(5):
        with pytest.raises(AccountRefused, match="not correct"):
            _change(core, user, events, current="wrong")
    with pytest.raises(AccountRefused, match="Too many") as refused:
        _change(core, user, events)  # even the right one waits
    assert refused.value.retry_after > 0
    core.clock.advance(refused.value.retry_after)
    _change(core, user, events)


def test_a_user_without_a_password_sets_a_first_one_keeping_the_provider(
    core: Core, events: Events
) -> None:
    """A federated account has no password: no current one is asked (nothing is counted on
    the throttle), and the new session keeps the provider it signed in through."""
    user = replace(core.add_user("fed-user"), password_hash=None)
    core.store.users.update(user)
    user = core.store.users.get(user.id)
    assert user is not None
    now = core.clock()
    mine = BrowserSession("mine", user.id, now, now + timedelta(hours=1), "c", amr=("fed",),
                          upstream_provider="up_corp")  # fmt: skip
    core.store.sessions.add(mine)
    for _ in range(6):  # more than the throttle's five: nothing is counted
        with pytest.raises(AccountRefused, match="not the same"):
            _change(core, user, events, current="", repeated="other-other-other-1")
    signed_in = _change(core, user, events, current="")
    stored = core.store.users.get(user.id)
    assert stored is not None and verify_password(stored.password_hash, NEW)
    fresh = current_session(core.store, signed_in.raw_session_id, core.clock())
    assert fresh is not None
    assert (fresh.session.amr, fresh.session.upstream_provider) == (("fed",), "up_corp")
    assert events.types == ["account.password_changed"]
    # Now it has one: the next change asks for it.
    with pytest.raises(AccountRefused, match="not correct"):
        _change(core, stored, events, current="", new="Another-Meadow-Harbour-74")


def test_sessions_end_one_by_one_or_all_but_this_one(core: Core, events: Events) -> None:
    user, bob = core.add_user(), core.add_user("bob")
    mine, a, b = (_session(core, user, n) for n in ("mine", "a", "b"))
    theirs = _session(core, bob, "theirs")
    assert not end_one_session(core.store, user, theirs.id_hash, core.clock(), actor(events))
    assert not end_one_session(core.store, user, "", core.clock(), actor(events))
    assert end_one_session(core.store, user, a.id_hash, core.clock(), actor(events))
    assert end_other_sessions(core.store, user, mine.id_hash, core.clock(), actor(events)) == 1
    open_ids = {s.id_hash for s in core.store.sessions.list_for_user(user.id, core.clock())}
    assert open_ids == {"mine"} and b.id_hash not in open_ids
    assert core.store.sessions.get("theirs").ended_at is None  # type: ignore[union-attr]


def test_removing_an_apps_access_revokes_its_consent_and_grants(core: Core, events: Events) -> None:
    user = core.add_user()
    app, _ = core.add_app(name="Orders", allowed_scopes=("openid", "offline_access"))
    other, _ = core.add_app(name="Billing", allowed_scopes=("openid", "offline_access"))
    core.store.consents.put(Consent(user.id, app.client_id, ("openid", "offline_access"), core.clock()))
    tokens = core.code_flow(app, user, "openid offline_access")
    kept = core.code_flow(other, user, "openid offline_access")
    listed = connected_apps(core.store, user.id, core.clock(), core.store.clients.get, lambda _: False)
    assert [(a.name, a.consented, a.grants) for a in listed] == [("Billing", False, 1), ("Orders", True, 1)]
    hidden = connected_apps(core.store, user.id, core.clock(), core.store.clients.get, lambda c: c == other.client_id)
    assert [a.name for a in hidden] == ["Orders"]

    assert remove_access(core.store, user, app.client_id, core.clock(), actor(events)) == 1
    with pytest.raises(OAuthError):
        core.refresh(app, tokens["refresh_token"])
    assert core.introspect(app, tokens["access_token"])["active"] is False
    assert core.refresh(other, kept["refresh_token"])["access_token"]
    assert core.store.consents.get(user.id, app.client_id).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(AccountRefused):
        remove_access(core.store, user, app.client_id, core.clock(), actor(events))
    assert events.types == ["account.app_access_removed"]


class Outbox:
    enabled = True

    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, message: Mail) -> None:
        self.sent.append(message)


def test_a_notice_goes_only_where_mail_is_on_and_the_user_has_an_address(core: Core) -> None:
    user = core.add_user()
    outbox = Outbox()
    assert notify(outbox, user, "your password was changed", core.clock(), "Example")
    assert "your password was changed" in outbox.sent[0].text
    assert not notify(DisabledMailer(), user, "x", core.clock(), "Example")
    bare = core.add_user("bob", email=None)
    assert not notify(outbox, bare, "x", core.clock(), "Example") and len(outbox.sent) == 1
