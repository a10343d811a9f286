"""Users of the identity domain: create, find, change password, disable."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime

from tessera.domain.model import User
from tessera.domain.passwords import WeakPassword, check_policy, hash_password
from tessera.manage.errors import InvalidInput, NotFoundError, checked_name
from tessera.manage.revocation import revoke_subject
from tessera.store.protocols import Conflict, Store

__all__ = ["create_user", "disable_user", "enable_user", "find_user", "set_password"]

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199}$")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")


def _check_password(password: str, username: str) -> None:
    try:
        check_policy(password, username=username)
    except WeakPassword as exc:
        raise InvalidInput(str(exc)) from None


def create_user(
    store: Store,
    *,
    username: str,
    password: str,
    now: datetime,
    email: str | None = None,
    display_name: str | None = None,
    is_admin: bool = False,
) -> User:
    if not _USERNAME.match(username):
        raise InvalidInput(
            "a username is 1 to 200 characters: letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    if email is not None and (len(email) > 320 or not _EMAIL.match(email)):
        raise InvalidInput(f"{email!r} is not an email address")
    name = checked_name(display_name or username, "the display name")
    _check_password(password, username)
    if store.users.get_by_username(username) is not None:
        raise InvalidInput(f"a user named {username!r} already exists")
    user_id = uuid.uuid4().hex
    if store.clients.get(user_id) is not None:  # a `sub` is never also a client id
        user_id = uuid.uuid4().hex
    user = User(
        id=user_id,
        username=username,
        password_hash=hash_password(password),
        display_name=name,
        email=email,
        is_admin=is_admin,
        created_at=now,
        password_changed_at=now,
    )
    try:
        store.users.add(user)
    except Conflict:
        raise InvalidInput(f"a user named {username!r} already exists") from None
    return user


def find_user(store: Store, ref: str) -> User:
    """By id or by username."""
    user = store.users.get(ref) or store.users.get_by_username(ref)
    if user is None:
        raise NotFoundError(f"no user {ref!r}")
    return user


def set_password(store: Store, ref: str, password: str, now: datetime) -> User:
    """Change the password and end every session and refresh token of the user."""
    user = find_user(store, ref)
    _check_password(password, user.username)
    updated = replace(user, password_hash=hash_password(password), password_changed_at=now)
    store.users.update(updated)
    revoke_subject(store, user.id, now)
    return updated


def disable_user(store: Store, ref: str, now: datetime) -> User:
    """Disable the user and revoke all of the user's tokens."""
    user = find_user(store, ref)
    updated = user if user.disabled_at else replace(user, disabled_at=now)
    store.users.update(updated)
    revoke_subject(store, user.id, now)
    return updated


def enable_user(store: Store, ref: str) -> User:
    user = find_user(store, ref)
    updated = replace(user, disabled_at=None)
    store.users.update(updated)
    return updated
