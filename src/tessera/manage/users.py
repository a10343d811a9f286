"""Users of an identity domain: create, find, change password, disable, delete.

Every change is audited through the caller's `Actor`. Passwords follow the password policy with
the domain's `password_min_length` when it sets one (docs/domains.md).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from tessera.domain.emails import is_email
from tessera.domain.model import User
from tessera.domain.passwords import WeakPassword, check_policy, hash_password
from tessera.domain.usernames import valid_username
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_name
from tessera.manage.revocation import RevokedSummary, revoke_subject
from tessera.store.protocols import Conflict, NotFound, Store

__all__ = [
    "checked_password_hash",
    "checked_username",
    "create_user",
    "delete_user",
    "disable_user",
    "domain_min_length",
    "enable_user",
    "end_sessions",
    "find_user",
    "new_user",
    "revoke_consent",
    "revoke_user_tokens",
    "set_password",
]


def _check_password(password: str, username: str, min_length: int | None) -> None:
    """The policy, with the domain's minimum length when it sets one."""
    try:
        check_policy(password, username=username, min_length=min_length)
    except WeakPassword as exc:
        raise InvalidInput(str(exc)) from None


def checked_username(username: str) -> str:
    """A username as the domain accepts them (the CLI's, the admin API's and SCIM's rule)."""
    if not valid_username(username):
        raise InvalidInput(
            "a username is 1 to 200 characters: letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return username


def checked_password_hash(store: Store, password: str, username: str) -> str:
    """The hash of a password that follows the domain's policy; `InvalidInput` otherwise."""
    _check_password(password, username, domain_min_length(store))
    return hash_password(password)


def domain_min_length(store: Store) -> int | None:
    """The domain's `password_min_length` (None: the policy's own)."""
    domain = store.domains.get(store.domain_id)
    return domain.settings.password_min_length if domain is not None else None


def new_user(
    *,
    username: str,
    password: str,
    now: datetime,
    email: str | None = None,
    display_name: str | None = None,
    is_admin: bool = False,
    min_length: int | None = None,
) -> User:
    """A checked new user (not stored): the username, e-mail, name and password policy
    (`min_length`: the domain's `password_min_length`)."""
    checked_username(username)
    if email is not None and not is_email(email):
        raise InvalidInput(f"{email!r} is not an email address")
    name = checked_name(display_name or username, "the display name")
    _check_password(password, username, min_length)
    return User(
        id=uuid.uuid4().hex,
        username=username,
        password_hash=hash_password(password),
        display_name=name,
        email=email,
        is_admin=is_admin,
        created_at=now,
        password_changed_at=now,
        # An administrator set it: verified (docs/federation.md, "Accounts").
        email_verified=email is not None,
    )


def create_user(
    store: Store,
    *,
    username: str,
    password: str,
    now: datetime,
    actor: Actor,
    email: str | None = None,
    display_name: str | None = None,
    is_admin: bool = False,
) -> User:
    user = new_user(
        username=username,
        password=password,
        now=now,
        email=email,
        display_name=display_name,
        is_admin=is_admin,
        min_length=domain_min_length(store),
    )
    if store.users.get_by_username(username) is not None:
        raise Conflicting(f"a user named {username!r} already exists")
    if store.clients.get(user.id) is not None:  # a `sub` is never also a client id
        user = replace(user, id=uuid.uuid4().hex)
    try:
        store.users.add(user)
    except Conflict:
        raise Conflicting(f"a user named {username!r} already exists") from None
    actor.audit("admin.user_created", user_id=user.id, username=user.username)
    return user


def find_user(store: Store, ref: str) -> User:
    """By id or by username."""
    user = store.users.get(ref) or store.users.get_by_username(ref)
    if user is None:
        raise NotFoundError(f"no user {ref!r}")
    return user


def set_password(store: Store, ref: str, password: str, now: datetime, actor: Actor) -> User:
    """Change the password and end every session and refresh token of the user."""
    user = find_user(store, ref)
    _check_password(password, user.username, domain_min_length(store))
    updated = replace(user, password_hash=hash_password(password), password_changed_at=now)
    store.users.update(updated)
    revoke_subject(store, user.id, now)
    actor.audit("admin.password_set", user_id=user.id)
    return updated


def disable_user(store: Store, ref: str, now: datetime, actor: Actor) -> User:
    """Disable the user and revoke all of the user's tokens."""
    user = find_user(store, ref)
    updated = user if user.disabled_at else replace(user, disabled_at=now)
    store.users.update(updated)
    revoke_subject(store, user.id, now)
    actor.audit("admin.user_disabled", user_id=user.id)
    return updated


def enable_user(store: Store, ref: str, actor: Actor) -> User:
    user = find_user(store, ref)
    updated = replace(user, disabled_at=None)
    store.users.update(updated)
    actor.audit("admin.user_enabled", user_id=user.id)
    return updated


def revoke_user_tokens(store: Store, ref: str, now: datetime, actor: Actor) -> RevokedSummary:
    """End every session and grant of the user, and refuse the access tokens already issued."""
    user = find_user(store, ref)
    summary = revoke_subject(store, user.id, now)
    actor.audit(
        "admin.user_tokens_revoked",
        user_id=user.id,
        sessions=summary.sessions,
        grants=summary.grants,
    )
    return summary


def end_sessions(store: Store, ref: str, now: datetime, actor: Actor) -> int:
    user = find_user(store, ref)
    count = store.sessions.end_all_for_user(user.id, now)
    actor.audit("admin.sessions_ended", user_id=user.id, sessions=count)
    return count


def revoke_consent(store: Store, ref: str, client_id: str, now: datetime, actor: Actor) -> None:
    user = find_user(store, ref)
    if not store.consents.revoke(user.id, client_id, now):
        raise NotFoundError(f"no consent of {user.username} for {client_id}")
    actor.audit("admin.consent_revoked", user_id=user.id, client_id=client_id)


def delete_user(store: Store, ref: str, now: datetime, actor: Actor) -> User:
    """Delete a user: revoke first, then remove the row with the personal data.

    Order matters: the subject revocation event (kept until every token it covers has expired)
    makes resource servers refuse access tokens already issued (RFC 7009 §2.1 spirit), sessions
    end and grants are revoked, consents are withdrawn, and only then the row (username, email,
    name, password hash) is deleted. No foreign key references users; rows that keep the opaque
    `sub` (revoked grants, ended sessions) expire and are purged by housekeeping, and audit
    events keep the `sub` only, never the personal data. The last administrator cannot be
    deleted (nor the last enabled one), so the domain never loses its way in.
    """
    user = find_user(store, ref)
    others = [u for u in store.users.list() if u.id != user.id]
    if user.is_admin and not any(u.is_admin and u.disabled_at is None for u in others):
        raise Conflicting(f"{user.username!r} is the last administrator: make another first")
    summary = revoke_subject(store, user.id, now)
    consents = store.consents.list_for_user(user.id)
    for consent in consents:
        store.consents.revoke(user.id, consent.client_id, now)
    try:
        store.users.delete(user.id)
    except NotFound:
        raise NotFoundError(f"no user {ref!r}") from None
    actor.audit(
        "admin.user_deleted",
        user_id=user.id,
        sessions=summary.sessions,
        grants=summary.grants,
        consents=len(consents),
    )
    return user
