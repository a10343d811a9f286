"""Users written through SCIM (RFC 7644 §3.3, §3.5, §3.6), by the rules of `manage.users`.

The same rules as the CLI and the admin API: the username rule and the password policy, a
disabled user's tokens revoked everywhere (the subject cut-off resource servers follow), the
last administrator kept, every change audited. A write is one store call (an update carries
the version the request read, so a concurrent change answers 412, docs/security.md rule 62);
what it refuses writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from scim2_models import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    UniquenessException,
)

from tessera.domain.emails import is_email
from tessera.domain.model import User
from tessera.manage.audit import Actor
from tessera.manage.errors import (
    Conflicting,
    InvalidInput,
    NotFoundError,
    checked_external_id,
    checked_name,
)
from tessera.manage.revocation import revoke_subject
from tessera.manage.scim.documents import UserFields
from tessera.manage.users import checked_password_hash, checked_username, delete_user
from tessera.store.protocols import Conflict, NotFound, StaleVersion, Store

__all__ = ["create_scim_user", "delete_scim_user", "update_scim_user"]


def _checked(fields: UserFields) -> UserFields:
    """The fields as the domain's rules accept them; `InvalidValueException` otherwise."""
    try:
        checked_username(fields.username)
        name = checked_name(fields.display_name, "the display name")
        for part, what in ((fields.given_name, "givenName"), (fields.family_name, "familyName")):
            if part is not None:
                checked_name(part, f"name.{what}")
        checked_external_id(fields.external_id)
    except InvalidInput as exc:
        raise InvalidValueException(detail=str(exc)) from None
    if fields.email is not None and not is_email(fields.email):
        raise InvalidValueException(detail=f"{fields.email!r} is not an e-mail address")
    return replace(fields, display_name=name)


def _password_hash(store: Store, password: str, username: str) -> str:
    try:
        return checked_password_hash(store, password, username)
    except InvalidInput as exc:
        raise InvalidValueException(detail=f"password: {exc}") from None


def _existing(store: Store, user_id: str, expected_version: int | None, admins: bool) -> User:
    """The stored user a request changes; an administrator's account only for a caller who
    is an administrator (a provisioning app could otherwise take it over with a password)."""
    user = store.users.get(user_id)
    if user is None:
        raise NotFoundException(detail=f"no user {user_id!r}")
    if user.is_admin and not admins:
        raise ForbiddenException(detail="administrators are changed by administrators only")
    if expected_version is not None and user.version != expected_version:
        raise PreconditionFailedException
    return user


def _taken(store: Store, username: str, user_id: str | None) -> None:
    found = store.users.get_by_username(username)
    if found is not None and found.id != user_id:
        raise UniquenessException(detail=f"the userName {username!r} is taken")


def create_scim_user(store: Store, fields: UserFields, now: datetime, actor: Actor) -> User:
    """A new user (never an administrator: administrators are made by administrators, in the
    console, the CLI or the admin API). Without a password the user signs in by other means
    (a reset link, a passkey) until one is set."""
    fields = _checked(fields)
    _taken(store, fields.username, None)
    password_hash = (
        "" if fields.password is None else _password_hash(store, fields.password, fields.username)
    )
    user = User(
        id=uuid.uuid4().hex,
        username=fields.username,
        password_hash=password_hash,  # empty: no password sign-in (domain/passwords.py)
        display_name=fields.display_name,
        email=fields.email,
        # The directory is authoritative for its addresses (docs/federation.md, "Accounts").
        email_verified=fields.email is not None,
        is_admin=False,
        created_at=now,
        password_changed_at=now,
        disabled_at=now if fields.active is False else None,
        external_id=fields.external_id,
        given_name=fields.given_name,
        family_name=fields.family_name,
        attributes=fields.attributes,
    )
    try:
        store.users.add(user)
    except Conflict:
        raise UniquenessException(detail=f"the userName {user.username!r} is taken") from None
    actor.audit("admin.user_created", user_id=user.id, username=user.username, via="scim")
    return user


def _keeps_an_admin(store: Store, user: User) -> None:
    """Disabling the last enabled administrator would lock the domain out."""
    if user.is_admin and not any(
        u.is_admin and u.active and u.id != user.id for u in store.users.list()
    ):
        raise ConflictException(
            detail=f"{user.username!r} is the last administrator: make another first"
        )


def _changed(store: Store, user: User, fields: UserFields, now: datetime) -> User:
    changes: dict[str, object] = {
        "username": fields.username,
        "display_name": fields.display_name,
        "email": fields.email,
        # An address the directory sets is verified (it is authoritative); one it leaves as it
        # is keeps its state, so a PATCH of another attribute never verifies an address the
        # user typed on the account page (docs/federation.md, "Accounts").
        "email_verified": (
            fields.email is not None
            if fields.email != user.email
            else user.email_verified and user.email is not None
        ),
        "external_id": fields.external_id,
        "given_name": fields.given_name,
        "family_name": fields.family_name,
        "attributes": fields.attributes,
        "updated_at": now,
    }
    if fields.password is not None:
        changes["password_hash"] = _password_hash(store, fields.password, fields.username)
        changes["password_changed_at"] = now
    # An absent `active` changes nothing: a client that does not know it never re-enables.
    if fields.active is False and user.active:
        _keeps_an_admin(store, user)
        changes["disabled_at"] = now
    elif fields.active is True and not user.active:
        changes["disabled_at"] = None
    return replace(user, **changes)  # type: ignore[arg-type]


def update_scim_user(
    store: Store,
    user_id: str,
    fields: UserFields,
    now: datetime,
    actor: Actor,
    *,
    expected_version: int | None,
    admins: bool = True,
) -> User:
    """Replace a user's SCIM attributes in one conditional write. Deactivating the user or
    setting a password then revokes every token of the user (as `disable_user` and
    `set_password` do). `admins`: the caller may change administrators' accounts."""
    user = _existing(store, user_id, expected_version, admins)
    fields = _checked(fields)
    _taken(store, fields.username, user.id)
    updated = _changed(store, user, fields, now)
    try:
        store.users.update(updated, expected_version=user.version)
    except StaleVersion:
        raise PreconditionFailedException from None
    except NotFound:
        raise NotFoundException(detail=f"no user {user_id!r}") from None
    except Conflict:
        raise UniquenessException(detail=f"the userName {fields.username!r} is taken") from None
    _after_update(store, user, updated, now, actor)
    return updated


def _after_update(store: Store, before: User, after: User, now: datetime, actor: Actor) -> None:
    """Revocation and audit of a written update (the user's row changed first, as in
    `manage.users`: a token issued meanwhile meets the disabled user or the cut-off)."""
    disabled = before.active and not after.active
    password = after.password_changed_at != before.password_changed_at
    if disabled or password:
        revoke_subject(store, after.id, now)
    if disabled:
        actor.audit("admin.user_disabled", user_id=after.id, via="scim")
    elif after.active and not before.active:
        actor.audit("admin.user_enabled", user_id=after.id, via="scim")
    if password:
        actor.audit("admin.password_set", user_id=after.id, via="scim")
    actor.audit("admin.user_updated", user_id=after.id, via="scim")


def delete_scim_user(
    store: Store,
    user_id: str,
    now: datetime,
    actor: Actor,
    *,
    expected_version: int | None,
    admins: bool = True,
) -> None:
    """`manage.users.delete_user`: revoke everything of the user, then delete; never the last
    administrator (409)."""
    user = _existing(store, user_id, expected_version, admins)
    try:
        delete_user(store, user.id, now, actor)
    except Conflicting as exc:
        raise ConflictException(detail=str(exc)) from None
    except NotFoundError:
        raise NotFoundException(detail=f"no user {user_id!r}") from None
