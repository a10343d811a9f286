"""What a signed-in user changes on their own account pages (docs/mfa.md): the profile, the
password, their sessions and the apps they connected.

A password change checks the current password on the sign-in throttle (a stolen session must
not become a guessing oracle), applies the domain's password policy, and then ends everything
the old password opened exactly as an administrator's change does (`revoke_subject`: sessions,
codes, grants, and a subject cut-off for the access tokens already issued, docs/security.md
rule 18); the browser that made the change gets a fresh session. Removing an app's access
revokes the consent and every grant of the user at that app, so its refresh tokens are refused
and its access tokens are reported revoked through the revocation events (RFC 7009 §2.1).
Every change is audited through the caller's `Actor`; `notify` mails the user a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from tessera.domain.emails import is_email
from tessera.domain.model import BrowserSession, Client, User
from tessera.domain.passwords import WeakPassword, check_policy, hash_password
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput, checked_name
from tessera.manage.mail import Mailer, MailError
from tessera.manage.password_reset import changed_mail
from tessera.manage.revocation import revoke_grants, revoke_subject
from tessera.oauth.interaction.login import (
    Attempt,
    LoginPolicy,
    SignedIn,
    Throttled,
    Timer,
    check_password,
    sign_in_verified,
)
from tessera.oauth.interaction.throttle import throttle_keys
from tessera.store.protocols import Store

__all__ = [
    "AccountRefused",
    "ConnectedApp",
    "change_password",
    "connected_apps",
    "end_one_session",
    "end_other_sessions",
    "notify",
    "remove_access",
    "update_profile",
]


class AccountRefused(Exception):
    """The change was refused; `message` is for the user (`retry_after`: a throttle's wait)."""

    def __init__(self, message: str, *, retry_after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def update_profile(
    store: Store, user: User, *, display_name: str, email: str, actor: Actor
) -> tuple[User, list[str]]:
    """Set the display name and the e-mail address (empty: none); the user as stored and the
    names of the fields that changed. `AccountRefused` for a value the rules refuse."""
    try:
        name = checked_name(display_name, "your name")
    except InvalidInput as exc:
        raise AccountRefused(str(exc).capitalize() + ".") from None
    address = email.strip() or None
    if address is not None and not is_email(address):
        raise AccountRefused("Enter an e-mail address such as name@example.com.")
    updated = replace(user, display_name=name, email=address)
    changed = [f for f in ("display_name", "email") if getattr(user, f) != getattr(updated, f)]
    if "email" in changed:
        # A new address the user typed is unverified until proven (a password reset) or set by
        # an administrator: linking by e-mail must never trust it (docs/federation.md).
        updated = replace(updated, email_verified=False)
    if changed:
        store.users.update(updated)
        actor.audit("account.profile_updated", user_id=user.id, changed=changed)
    return updated, changed


def _check_current(
    store: Store,
    policy: LoginPolicy,
    user: User,
    password: str,
    ip: str,
    now: datetime,
    timed: Timer,
) -> None:
    """The current password, counted on the sign-in throttle like a sign-in of the account."""
    keys = throttle_keys(user.username, ip)
    checked = check_password(store, policy.throttle, keys, user, password, now, timed)
    if isinstance(checked, Throttled):
        raise AccountRefused(
            f"Too many wrong passwords. Try again in {checked.retry_after} seconds.",
            retry_after=checked.retry_after,
        )
    if not checked:
        raise AccountRefused("Your current password is not correct.")


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """The new password's own fields, and this browser's session cookies."""

    current: str
    new: str
    repeated: str
    ip: str
    session_cookie: str | None
    device_cookie: str | None


def change_password(
    store: Store,
    policy: LoginPolicy,
    current: BrowserSession,
    user: User,
    change: PasswordChange,
    *,
    min_length: int | None,
    now: datetime,
    timed: Timer,
    actor: Actor,
) -> SignedIn:
    """Set a new password; the user's other sessions and grants end, and this browser gets a
    new session with the methods its sign-in used. `AccountRefused` (nothing written) for a
    wrong current password, a mismatch or a password the policy refuses. A user without a
    password (a federated or passkey-only account) sets a first one with no current password
    to give: the page's fresh sign-in is the proof (and nothing is counted on the throttle)."""
    if user.password_hash:
        _check_current(store, policy, user, change.current, change.ip, now, timed)
    if change.new != change.repeated:
        raise AccountRefused("The two new passwords are not the same.")
    try:
        check_policy(change.new, username=user.username, min_length=min_length)
    except WeakPassword as exc:
        raise AccountRefused(str(exc).capitalize() + ".") from None
    new_hash = timed(lambda: hash_password(change.new))
    updated = replace(user, password_hash=new_hash, password_changed_at=now)
    store.users.update(updated)
    summary = revoke_subject(store, user.id, now)
    cookies = Attempt(
        username=user.username,
        password="",
        ip=change.ip,
        device_cookie=change.device_cookie,
        session_cookie=change.session_cookie,
    )
    # A session started after the cut-off, with the methods this browser proved.
    outcome = sign_in_verified(
        store,
        policy,
        updated,
        current.amr,
        cookies,
        now,
        upstream_provider=current.upstream_provider,
    )
    actor.audit(
        "account.password_changed",
        user_id=user.id,
        first=not user.password_hash,
        sessions=summary.sessions,
        grants=summary.grants,
    )
    if not isinstance(outcome, SignedIn):  # disabled meanwhile
        raise AccountRefused("This account cannot sign in any more. Ask your administrator.")
    return outcome


def end_other_sessions(store: Store, user: User, keep: str, now: datetime, actor: Actor) -> int:
    """End every open session of the user but `keep` (this browser's); how many ended."""
    ended = 0
    for session in store.sessions.list_for_user(user.id, now):
        if session.id_hash != keep:
            store.sessions.end(session.id_hash, now)
            ended += 1
    actor.audit("account.sessions_ended", user_id=user.id, sessions=ended)
    return ended


def end_one_session(store: Store, user: User, id_hash: str, now: datetime, actor: Actor) -> bool:
    """End one open session of the user (not another user's); False when there is none."""
    session = store.sessions.get(id_hash) if id_hash else None
    if session is None or session.user_id != user.id or session.ended_at is not None:
        return False
    store.sessions.end(id_hash, now)
    actor.audit("account.session_ended", user_id=user.id)
    return True


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    name: str
    scopes: tuple[str, ...]
    since: datetime
    consented: bool  # a standing consent (third-party apps)
    grants: int  # refresh families open


def connected_apps(
    store: Store,
    user_id: str,
    now: datetime,
    lookup_client: Callable[[str], Client | None],
    hidden: Callable[[str], bool],
) -> list[ConnectedApp]:
    """The apps the user consented to or holds open grants of (`hidden`: apps not to list),
    by name."""
    consents = {c.client_id: c for c in store.consents.list_for_user(user_id)}
    grants: dict[str, list[datetime]] = {}
    scopes: dict[str, set[str]] = {}
    for grant in store.grants.list_active(now, user_id=user_id):
        grants.setdefault(grant.client_id, []).append(grant.created_at)
        scopes.setdefault(grant.client_id, set()).update(grant.scopes)
    out = []
    for client_id in consents.keys() | grants.keys():
        client = lookup_client(client_id)
        if client is None or hidden(client_id):
            continue
        consent = consents.get(client_id)
        since = min([*grants.get(client_id, []), *([consent.granted_at] if consent else [])])
        held = consent.scopes if consent else tuple(sorted(scopes.get(client_id, ())))
        out.append(
            ConnectedApp(
                client_id,
                client.name,
                held,
                since,
                consent is not None,
                len(grants.get(client_id, [])),
            )
        )
    return sorted(out, key=lambda a: a.name.lower())


def remove_access(store: Store, user: User, client_id: str, now: datetime, actor: Actor) -> int:
    """Revoke the user's consent to the app and every grant of the user at it (their refresh
    tokens and, through the GRANT events, their access tokens); how many grants. `AccountRefused`
    when the app holds nothing of the user's."""
    consented = store.consents.revoke(user.id, client_id, now)
    grants = store.grants.list_active(now, user_id=user.id, client_id=client_id)
    revoke_grants(store, grants, now)
    if not consented and not grants:
        raise AccountRefused("This app has no access to your account.")
    actor.audit(
        "account.app_access_removed", user_id=user.id, client_id=client_id, grants=len(grants)
    )
    return len(grants)


def notify(mailer: Mailer, user: User, what: str, now: datetime, domain_name: str) -> bool:
    """Mail the user a notice of a change (`changed_mail`) when e-mail is on and the user has
    an address; whether one was queued. A failure is logged, never raised: the change stands."""
    if not mailer.enabled or user.email is None:
        return False
    try:
        mailer.send(changed_mail(user, what, now, domain_name))
    except (MailError, ValueError) as exc:
        structlog.get_logger("tessera.account").warning("account.notice_failed", error=str(exc))
        return False
    return True
