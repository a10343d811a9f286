"""Password reset by e-mail: the request, the reset, and the messages (OWASP Forgot Password
Cheat Sheet; the link's rules are in `oauth/interaction/password_reset.py`).

A request answers the same whether or not the account exists, and only the audit log tells the
outcomes apart; mails go through the node's `BackgroundMailer`, so the answer does not wait on
(or time) the SMTP server. A reset ends everything the old password opened exactly as an
administrator's password change does (`revoke_subject`: sessions, codes, grants, and a subject
cut-off for access tokens already issued; docs/security.md rule 18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from typing import Literal

from tessera.domain.model import User
from tessera.domain.passwords import WeakPassword, check_policy, hash_password
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput
from tessera.manage.mail import Mail, Mailer, MailError
from tessera.manage.revocation import revoke_subject
from tessera.oauth.interaction.login import Timer
from tessera.oauth.interaction.password_reset import (
    DEFAULT_RESET_TTL,
    ResetMailPolicy,
    ResetTokenInvalid,
    check_reset_token,
    issue_reset_token,
    reset_expiry,
    reset_jti,
    reset_mail_allowed,
    reset_request_allowed,
)
from tessera.store.protocols import Store

__all__ = [
    "ResetRequested",
    "ResetSetup",
    "changed_mail",
    "request_reset",
    "reset_mail",
    "reset_password",
]

Outcome = Literal["sent", "unknown", "disabled", "no_email", "throttled", "mail_failed"]
_MAX_USERNAME = 200
_MAX_PER_ADDRESS = 5  # accounts one e-mail address may get links for at once


@dataclass(frozen=True, slots=True)
class ResetSetup:
    """An identity domain's password reset: its link key (`Context.subkey(RESET_KEY_PURPOSE)`),
    the node's mailer, the name mails give the domain, the mail throttle and the link's life."""

    key: bytes
    mailer: Mailer
    domain_display_name: str
    throttle: ResetMailPolicy
    ttl: int = DEFAULT_RESET_TTL


@dataclass(frozen=True, slots=True)
class ResetRequested:
    """For the audit log only: the page shows the same thing for every outcome."""

    outcome: Outcome
    user_id: str | None


def _accounts(store: Store, given: str) -> list[User]:
    """The account a reset request names: a username, else (when it looks like one) an e-mail
    address, which several accounts may share (each gets its own link)."""
    if not 0 < len(given) <= _MAX_USERNAME:
        return []
    user = store.users.get_by_username(given)
    if user is not None:
        return [user]
    return store.users.find_by_email(given)[:_MAX_PER_ADDRESS] if "@" in given else []


def _request_one(
    store: Store,
    setup: ResetSetup,
    user: User | None,
    now: datetime,
    link_for: Callable[[str], str],
) -> Outcome:
    outcome: Outcome = "sent"
    if user is None:
        outcome = "unknown"
    elif not user.active:
        outcome = "disabled"
    elif user.email is None:
        outcome = "no_email"
    usable = user if outcome == "sent" else None
    if usable is not None and not reset_mail_allowed(store, setup.throttle, usable.id, now):
        return "throttled"
    if usable is not None:
        token = issue_reset_token(setup.key, usable, now, setup.ttl)
        try:
            setup.mailer.send(
                reset_mail(usable, link_for(token), setup.domain_display_name, setup.ttl)
            )
        except MailError:  # a synchronous mailer; the page must not tell (nor fail)
            return "mail_failed"
    return outcome


def request_reset(
    store: Store,
    setup: ResetSetup,
    username: str,
    *,
    ip: str,
    now: datetime,
    link_for: Callable[[str], str],
    actor: Actor,
) -> ResetRequested:
    """Mail a reset link to the account `username` names (a username or an e-mail address) if
    it exists, is enabled, has an e-mail address and has not had its share of mails in the
    throttle window. `link_for` turns a token into the page's URL. `MailError` only when
    e-mail is off (say so before asking). The outcome of the first account named."""
    if not setup.mailer.enabled:
        raise MailError("password reset by e-mail is off: e-mail is not configured")
    name = username.strip()
    if not reset_request_allowed(store, setup.throttle, ip, now):
        actor.audit("password_reset.requested", outcome="throttled", username=name[:200])
        return ResetRequested("throttled", None)
    outcomes: list[ResetRequested] = []
    named: list[User | None] = [*_accounts(store, name)] or [None]
    for user in named:
        outcome = _request_one(store, setup, user, now, link_for)
        user_id = user.id if user is not None else None
        actor.audit(
            "password_reset.requested", user_id=user_id, outcome=outcome, username=name[:200]
        )
        outcomes.append(ResetRequested(outcome, user_id))
    return outcomes[0]


def reset_password(
    store: Store,
    key: bytes,
    token: str,
    new_password: str,
    now: datetime,
    *,
    min_length: int | None,
    timed: Timer,
    actor: Actor,
) -> User:
    """Set the password a reset link allows, once, and end everything the old one opened.

    `ResetTokenInvalid` for a bad, expired or used link; `InvalidInput` for a password the
    policy refuses (`min_length`: the domain's `password_min_length`). Nothing is written then.
    """
    user = check_reset_token(key, token, store.users.get, now)
    try:
        check_policy(new_password, username=user.username, min_length=min_length)
    except WeakPassword as exc:
        raise InvalidInput(str(exc)) from None
    # Of two submissions of one link, both past the fingerprint check, one wins here.
    if not store.nonces.use_once(reset_jti(token), reset_expiry(token), now):
        raise ResetTokenInvalid("the link was used already, or the account changed since")
    new_hash = timed(lambda: hash_password(new_password))
    # The link reached the user at `user.email`, which is unchanged since it was sent (the
    # fingerprint covers it): the address is proven (docs/federation.md, "Accounts").
    updated = replace(
        user,
        password_hash=new_hash,
        password_changed_at=now,
        email_verified=user.email_verified or user.email is not None,
    )
    store.users.update(updated)
    summary = revoke_subject(store, user.id, now)
    actor.audit(
        "password_reset.completed",
        user_id=user.id,
        sessions=summary.sessions,
        grants=summary.grants,
    )
    return updated


def _recipient(user: User) -> str:
    if user.email is None:
        raise ValueError(f"the user {user.username!r} has no e-mail address")
    local, _, domain = user.email.rpartition("@")
    return str(Address(display_name=user.display_name, username=local, domain=domain))


def reset_mail(user: User, link: str, domain_display_name: str, ttl: int) -> Mail:
    """The message that carries a reset link (plain text: the link shows as it is)."""
    minutes = max(1, ttl // 60)
    text = (
        f"Hello {user.display_name},\n\n"
        f"Someone asked to reset the password of your account {user.username} at "
        f"{domain_display_name}. To choose a new password, open this link within "
        f"{minutes} minutes:\n\n"
        f"{link}\n\n"
        "The link works once. If you did not ask for this, ignore this message: your "
        "password stays as it is and nobody can use the link without access to your mail.\n"
    )
    return Mail(_recipient(user), f"Reset your {domain_display_name} password", text)


def changed_mail(user: User, what: str, when: datetime, domain_display_name: str) -> Mail:
    """A notice that the account changed: `what` such as "your password was changed" or
    "a passkey named Laptop was added"."""
    at = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"Hello {user.display_name},\n\n"
        f"This is a notice about your account {user.username} at {domain_display_name}: "
        f"{what} ({at}).\n\n"
        "If this was you, there is nothing to do. If it was not, reset your password now "
        "and tell your administrator.\n"
    )
    return Mail(_recipient(user), f"Your {domain_display_name} account changed", text)
