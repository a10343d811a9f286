"""Password reset by e-mail (issue 15; OWASP Forgot Password Cheat Sheet): the link's token, the
reset on the memory store with the injected clock, and the request against a real SMTP server.

A link is authentic, expires, works once (also for two submissions at once), dies when the
password or the address changes, and a reset ends the user's sessions and refresh tokens the
way an administrator's password change does. A request tells nobody whether the account exists.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tessera.domain.model import RevocationKind, User
from tessera.domain.passwords import hash_password, verify_password
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import InvalidInput
from tessera.manage.mail import BackgroundMailer, DisabledMailer, MailError, SmtpConfig, SmtpMailer
from tessera.manage.password_reset import (
    ResetSetup,
    changed_mail,
    request_reset,
    reset_mail,
    reset_password,
)
from tessera.oauth.errors import InvalidGrant
from tessera.oauth.interaction.login import Attempt, LoginPolicy, current_session, sign_in
from tessera.oauth.interaction.password_reset import (
    ResetMailPolicy,
    ResetTokenInvalid,
    check_reset_token,
    issue_reset_token,
    reset_expiry,
    reset_jti,
)
from tessera.oauth.interaction.throttle import ThrottlePolicy
from tests.support.smtp import SmtpServer, first_link, smtp_server
from tests.unit.oauth.conftest import Core

KEY = b"reset-key-".ljust(32, b"k")
NEW = "a new and long passphrase"
LOGIN = LoginPolicy(ThrottlePolicy(900, 5, 50, 50, 30), 3600, b"d" * 32)


def untimed(work: Any) -> Any:
    return work()


def actor(core: Core) -> Actor:
    return store_actor("anonymous", core.store, core.clock)


def check(core: Core, token: str) -> User:
    return check_reset_token(KEY, token, core.store.users.get, core.clock())


def reset(core: Core, token: str, password: str = NEW, min_length: int | None = None) -> User:
    return reset_password(
        core.store,
        KEY,
        token,
        password,
        core.clock(),
        min_length=min_length,
        timed=untimed,
        actor=actor(core),
    )


def audit_types(core: Core) -> list[str]:
    return [event.type for event in core.store.audit.query()]


# --- the token ---------------------------------------------------------------------------------


def test_a_token_names_its_user(core: Core) -> None:
    alice = core.add_user()
    token = issue_reset_token(KEY, alice, core.clock())
    assert check(core, token) == alice
    assert len(token) < 200 and token.isascii() and "=" not in token


def test_a_token_expires_after_its_ttl(core: Core) -> None:
    alice = core.add_user()
    token = issue_reset_token(KEY, alice, core.clock(), ttl=600)
    assert reset_expiry(token) == core.clock() + timedelta(seconds=600)
    core.clock.advance(599)
    assert check(core, token) == alice
    core.clock.advance(1)
    with pytest.raises(ResetTokenInvalid, match="expired"):
        check(core, token)


def test_a_ttl_out_of_bounds_is_refused(core: Core) -> None:
    alice = core.add_user()
    for ttl in (0, 59, 86401):
        with pytest.raises(ValueError, match="60 to 86400 seconds"):
            issue_reset_token(KEY, alice, core.clock(), ttl=ttl)


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_a_tampered_token_or_one_of_another_key_is_not_valid(core: Core) -> None:
    alice = core.add_user()
    bob = core.add_user("bob")
    token = issue_reset_token(KEY, alice, core.clock())
    payload, mac = token.split(".")
    bobs_payload = issue_reset_token(KEY, bob, core.clock()).split(".")[0]
    for forged in (_flip(token, 3), _flip(token, len(payload) + 3), f"{bobs_payload}.{mac}"):
        with pytest.raises(ResetTokenInvalid, match="not valid|malformed"):
            check(core, forged)
    with pytest.raises(ResetTokenInvalid, match="not valid"):
        check_reset_token(b"x" * 32, token, core.store.users.get, core.clock())


@pytest.mark.parametrize(
    "token",
    ["", ".", "a", "a.b.c", "é.é", "%%%.%%%", "a" * 601, "A" * 300 + "." + "B" * 300, "\x00.\x00"],
)
def test_malformed_or_oversized_tokens_are_refused_plainly(core: Core, token: str) -> None:
    core.add_user()
    with pytest.raises(ResetTokenInvalid, match="malformed|not valid"):
        check(core, token)


def test_a_password_or_address_change_kills_earlier_tokens(core: Core) -> None:
    alice = core.add_user()
    by_password = issue_reset_token(KEY, alice, core.clock())
    by_address = issue_reset_token(KEY, alice, core.clock())
    core.clock.advance(5)
    core.store.users.update(replace(alice, email="new@example.test"))
    with pytest.raises(ResetTokenInvalid, match="used already, or the account changed"):
        check(core, by_address)
    core.store.users.update(
        replace(alice, password_hash=hash_password(NEW), password_changed_at=core.clock())
    )
    with pytest.raises(ResetTokenInvalid, match="used already, or the account changed"):
        check(core, by_password)


def test_a_disabled_or_deleted_user_has_no_valid_token(core: Core) -> None:
    alice = core.add_user()
    bob = core.add_user("bob")
    for_alice = issue_reset_token(KEY, alice, core.clock())
    for_bob = issue_reset_token(KEY, bob, core.clock())
    core.store.users.update(replace(alice, disabled_at=core.clock()))
    core.store.users.delete(bob.id)
    for token in (for_alice, for_bob):
        with pytest.raises(ResetTokenInvalid, match="does not exist or is disabled"):
            check(core, token)


def test_the_single_use_key_is_a_hash_of_the_token(core: Core) -> None:
    alice = core.add_user()
    one, two = (issue_reset_token(KEY, alice, core.clock()) for _ in range(2))
    assert one != two and reset_jti(one) != reset_jti(two)
    assert one not in reset_jti(one) and len(reset_jti(one)) <= 200


# --- the reset ---------------------------------------------------------------------------------


def signed_in(core: Core, username: str = "alice") -> str:
    outcome = sign_in(
        core.store, LOGIN, Attempt(username, "correct horse battery", "198.51.100.7"), core.clock()
    )
    assert hasattr(outcome, "raw_session_id")
    return str(outcome.raw_session_id)


def test_a_reset_sets_the_password_and_ends_sessions_and_refresh_tokens(core: Core) -> None:
    core.add_resource()
    alice = core.add_user()
    bob = core.add_user("bob")
    app, _ = core.add_app()
    session, bobs_session = signed_in(core), signed_in(core, "bob")
    refresh = core.code_flow(app, alice)["refresh_token"]
    bobs_refresh = core.code_flow(app, bob)["refresh_token"]
    token = issue_reset_token(KEY, alice, core.clock())
    core.clock.advance(60)

    updated = reset(core, token)

    stored = core.store.users.get(alice.id)
    assert stored == replace(updated, version=2) and stored.password_changed_at == core.clock()
    assert verify_password(stored.password_hash, NEW)
    assert current_session(core.store, session, core.clock()) is None
    assert core.store.sessions.list_for_user(alice.id, core.clock()) == []
    assert core.store.grants.list_active(core.clock(), user_id=alice.id) == []
    with pytest.raises(InvalidGrant):
        core.refresh(app, refresh)
    # The access tokens already issued: a subject cut-off, as for an administrator's change.
    events = core.store.revocations.since(0, 100)
    assert any(e.kind == RevocationKind.SUBJECT and e.key == alice.id for e in events)
    # Bob is untouched.
    assert current_session(core.store, bobs_session, core.clock()) is not None
    assert "refresh_token" in core.refresh(app, bobs_refresh)
    assert "password_reset.completed" in audit_types(core)


def test_a_reset_proves_the_address_the_link_went_to(core: Core) -> None:
    """The link reached the user at their address (docs/federation.md, "Accounts"); the
    fingerprint makes sure it is the address stored now."""
    alice = core.add_user()
    bob = core.add_user("bob", email=None)
    assert not alice.email_verified
    assert reset(core, issue_reset_token(KEY, alice, core.clock())).email_verified
    stored = core.store.users.get(alice.id)
    assert stored is not None and stored.email_verified
    assert not reset(core, issue_reset_token(KEY, bob, core.clock())).email_verified  # none
    # Changed after the link was sent: the link is void, and the new address stays unverified.
    token = issue_reset_token(KEY, stored, core.clock())
    core.clock.advance(5)
    core.store.users.update(replace(stored, email="new@example.test", email_verified=False))
    with pytest.raises(ResetTokenInvalid):
        reset(core, token)
    after = core.store.users.get(alice.id)
    assert after is not None and not after.email_verified


def test_a_link_works_once(core: Core) -> None:
    alice = core.add_user()
    token = issue_reset_token(KEY, alice, core.clock())
    reset(core, token)
    with pytest.raises(ResetTokenInvalid, match="used already"):
        reset(core, token, "another long passphrase")
    assert verify_password(core.store.users.get(alice.id).password_hash, NEW)  # type: ignore[union-attr]


def test_of_two_submissions_at_once_only_one_resets(core: Core) -> None:
    """Both read the user before either writes: the single-use key decides (the other won)."""
    alice = core.add_user()
    token = issue_reset_token(KEY, alice, core.clock())
    assert core.store.nonces.use_once(reset_jti(token), reset_expiry(token), core.clock())
    with pytest.raises(ResetTokenInvalid, match="used already"):
        reset(core, token)
    assert core.store.users.get(alice.id) == alice


def test_a_weak_password_is_refused_and_nothing_changes(core: Core) -> None:
    alice = core.add_user()
    session = signed_in(core)
    token = issue_reset_token(KEY, alice, core.clock())
    for weak, why in [
        ("short", "at least 12 characters"),
        ("Password1234!", "too common"),
        ("my-name-is-alice-ok", "must not contain the username"),
        ("a long enough one", "at least 20 characters"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            reset(core, token, weak, min_length=20 if "long" in weak else None)
    assert core.store.users.get(alice.id) == alice
    assert current_session(core.store, session, core.clock()) is not None
    assert reset(core, token).id == alice.id  # the link was not used up


def test_a_link_spelt_another_way_is_refused(core: Core) -> None:
    """The base64 decoder skips characters outside its alphabet: a link with one added would
    decode alike but count as another link (a second use); it is refused as malformed."""
    alice = core.add_user()
    token = issue_reset_token(KEY, alice, core.clock())
    payload, mac = token.split(".")
    for variant in (f"{payload[:5]}!{payload[5:]}.{mac}", f"{payload}.{mac[:3]}*{mac[3:]}"):
        with pytest.raises(ResetTokenInvalid, match="malformed"):
            check_reset_token(KEY, variant, core.store.users.get, core.clock())
    assert check_reset_token(KEY, token, core.store.users.get, core.clock()).id == alice.id


def test_a_bad_link_changes_nothing(core: Core) -> None:
    alice = core.add_user()
    session = signed_in(core)
    with pytest.raises(ResetTokenInvalid):
        reset(core, "not-a-token")
    assert core.store.users.get(alice.id) == alice
    assert current_session(core.store, session, core.clock()) is not None


# --- the request, through a real SMTP server ---------------------------------------------------


def setup_for(server: SmtpServer) -> ResetSetup:
    config = SmtpConfig(server.host, "Tessera <no-reply@id.test>", port=server.port, security="none")
    return ResetSetup(KEY, BackgroundMailer(SmtpMailer(config)), "Example Corp", ResetMailPolicy(900))


def ask(core: Core, setup: ResetSetup, username: str, ip: str = "198.51.100.7") -> str:
    return request_reset(
        core.store,
        setup,
        username,
        ip=ip,
        now=core.clock(),
        link_for=lambda token: f"https://id.test/account/reset?token={token}",
        actor=actor(core),
    ).outcome


def test_a_mailed_link_resets_the_password_once(core: Core) -> None:
    alice = core.add_user()
    with smtp_server() as server:
        setup = setup_for(server)
        assert ask(core, setup, "Alice") == "sent"
        [message] = server.wait_for(1)
        assert setup.mailer.close()  # type: ignore[attr-defined]
    assert message["To"] == "Alice <alice@example.test>"
    assert message["Subject"] == "Reset your Example Corp password"
    assert "within 30 minutes" in message.get_content() and "ignore" in message.get_content()  # type: ignore[attr-defined]
    token = parse_qs(urlsplit(first_link(message)).query)["token"][0]
    core.clock.advance(120)
    assert reset(core, token).id == alice.id
    with pytest.raises(ResetTokenInvalid):
        reset(core, token, "another long passphrase")


def test_a_mailed_link_expires(core: Core) -> None:
    core.add_user()
    with smtp_server() as server:
        assert ask(core, setup_for(server), "alice") == "sent"
        token = parse_qs(urlsplit(first_link(server.wait_for(1)[0])).query)["token"][0]
    core.clock.advance(1800)
    with pytest.raises(ResetTokenInvalid, match="expired"):
        reset(core, token)


def test_a_request_does_not_tell_whether_the_account_exists(core: Core) -> None:
    alice = core.add_user()
    core.add_user("carol", email=None)
    core.store.users.update(replace(core.add_user("dave"), disabled_at=core.clock()))
    with smtp_server() as server:
        setup = setup_for(server)
        outcomes = [ask(core, setup, name) for name in ("nobody", "carol", "dave", "", "x" * 500)]
        assert ask(core, setup, "alice") == "sent"
        assert [m["To"] for m in server.wait_for(1)] == ["Alice <alice@example.test>"]
        assert setup.mailer.close()  # type: ignore[attr-defined]
        assert len(server.messages) == 1
    assert outcomes == ["unknown", "no_email", "disabled", "unknown", "unknown"]
    assert audit_types(core).count("password_reset.requested") == 6
    assert alice == core.store.users.get(alice.id)  # a request changes nothing


def test_an_e_mail_address_names_the_accounts_that_have_it(core: Core) -> None:
    core.add_user("alice")  # alice@example.test
    core.add_user("bob", email="Shared@Example.test")
    core.add_user("carol", email="shared@example.test")
    with smtp_server() as server:
        setup = setup_for(server)
        assert ask(core, setup, "ALICE@example.test") == "sent"
        assert ask(core, setup, " shared@example.TEST ") == "sent"
        assert ask(core, setup, "nobody@example.test") == "unknown"
        assert ask(core, setup, "example.test") == "unknown"  # not an address, not a username
        messages = server.wait_for(3)
        assert setup.mailer.close()  # type: ignore[attr-defined]
    assert sorted(m["To"] for m in messages) == [
        "Alice <alice@example.test>",
        "Bob <Shared@Example.test>",
        "Carol <shared@example.test>",
    ]
    assert audit_types(core).count("password_reset.requested") == 5


def test_a_mailbox_cannot_be_flooded(core: Core) -> None:
    core.add_user()
    with smtp_server() as server:
        setup = setup_for(server)
        outcomes = [ask(core, setup, "alice", ip=f"203.0.113.{i}") for i in range(5)]
        assert outcomes == ["sent"] * 3 + ["throttled"] * 2
        core.clock.advance(901)  # the window (ResetMailPolicy(900)) has passed
        assert ask(core, setup, "alice") == "sent"
        server.wait_for(4)
        assert setup.mailer.close()  # type: ignore[attr-defined]


def test_one_address_cannot_ask_for_many_accounts(core: Core) -> None:
    for i in range(3):
        core.add_user(f"user{i}")
    with smtp_server() as server:
        setup = replace(setup_for(server), throttle=ResetMailPolicy(900, per_address=2))
        assert [ask(core, setup, f"user{i}") for i in range(3)] == ["sent", "sent", "throttled"]
        assert ask(core, setup, "user2", ip="203.0.113.9") == "sent"
        assert setup.mailer.close()  # type: ignore[attr-defined]


def test_a_request_with_mail_off_says_so_before_anything(core: Core) -> None:
    core.add_user()
    setup = ResetSetup(KEY, DisabledMailer(), "Example Corp", ResetMailPolicy(900))
    with pytest.raises(MailError, match="off"):
        ask(core, setup, "alice")
    assert audit_types(core) == []


def test_a_failed_synchronous_send_is_not_shown(core: Core) -> None:
    core.add_user()
    with smtp_server(refuse=frozenset({"alice@example.test"})) as server:
        config = SmtpConfig(server.host, "no-reply@id.test", port=server.port, security="none")
        setup = ResetSetup(KEY, SmtpMailer(config), "Example Corp", ResetMailPolicy(900))
        assert ask(core, setup, "alice") == "mail_failed"


# --- the messages ------------------------------------------------------------------------------


def test_the_reset_mail_says_what_to_do_and_when_it_expires(core: Core) -> None:
    alice = core.add_user(display_name="Alice Liddell")
    mail = reset_mail(alice, "https://id.test/r?token=abc", "Example Corp", 3600)
    assert mail.to == "Alice Liddell <alice@example.test>"
    assert "https://id.test/r?token=abc" in mail.text
    assert "within 60 minutes" in mail.text
    assert "If you did not ask for this, ignore this message" in mail.text


def test_the_change_notice_names_the_change_and_the_time(core: Core) -> None:
    alice = core.add_user()
    mail = changed_mail(alice, "a passkey named Laptop was added", core.clock(), "Example Corp")
    assert mail.subject == "Your Example Corp account changed"
    assert "a passkey named Laptop was added (2026-03-01 09:00 UTC)" in mail.text
    assert "reset your password" in mail.text


def test_no_mail_without_an_address(core: Core) -> None:
    carol = core.add_user("carol", email=None)
    with pytest.raises(ValueError, match="no e-mail address"):
        reset_mail(carol, "https://id.test/r", "Example Corp", 1800)
