"""Groups written through SCIM (RFC 7644 §3.3, §3.5, §3.6), by `manage.groups`.

Members are users of the domain, named by id; anything else (another group, an unknown id) is
`invalidValue` and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scim2_models import (
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    UniquenessException,
)

from tessera.domain.model import Group
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.manage.groups import create_group, delete_group, update_group
from tessera.manage.scim.documents import GroupFields
from tessera.store.protocols import Store

__all__ = ["create_scim_group", "delete_scim_group", "update_scim_group"]


def _member_ids(store: Store, ids: Sequence[str]) -> list[str]:
    """User ids only (a username or a group's id is not a member's value)."""
    for value in ids:
        if store.users.get(value) is None:
            nested = store.groups.get(value) is not None
            raise InvalidValueException(
                detail="groups do not nest: a member must be a user"
                if nested
                else f"no user {value!r} to be a member"
            )
    return list(ids)


def create_scim_group(store: Store, fields: GroupFields, now: datetime, actor: Actor) -> Group:
    members = _member_ids(store, fields.members)
    try:
        return create_group(
            store,
            name=fields.name,
            now=now,
            actor=actor,
            members=members,
            external_id=fields.external_id,
        )
    except Conflicting as exc:
        raise UniquenessException(detail=str(exc)) from None
    except InvalidInput as exc:
        raise InvalidValueException(detail=str(exc)) from None
    except NotFoundError as exc:
        raise InvalidValueException(detail=str(exc)) from None


def update_scim_group(
    store: Store,
    group_id: str,
    fields: GroupFields,
    now: datetime,
    actor: Actor,
    *,
    expected_version: int | None,
) -> Group:
    """Name, external id and the whole member list in one conditional write."""
    group = store.groups.get(group_id)
    if group is None:
        raise NotFoundException(detail=f"no group {group_id!r}")
    version = group.version if expected_version is None else expected_version
    if group.version != version:
        raise PreconditionFailedException
    members = _member_ids(store, fields.members)
    try:
        return update_group(
            store,
            group.id,
            now=now,
            actor=actor,
            name=fields.name,
            external_id=fields.external_id,
            clear_external_id=fields.external_id is None,
            members=members,
            expected_version=version,
        )
    except Conflicting as exc:
        # `manage.groups` says Conflicting for a taken name and for a stale version alike.
        current = store.groups.get(group.id)
        if current is None or current.version != version:
            raise PreconditionFailedException from None
        raise UniquenessException(detail=str(exc)) from None
    except InvalidInput as exc:
        raise InvalidValueException(detail=str(exc)) from None
    except NotFoundError as exc:
        raise NotFoundException(detail=str(exc)) from None


def delete_scim_group(
    store: Store, group_id: str, now: datetime, actor: Actor, *, expected_version: int | None
) -> None:
    group = store.groups.get(group_id)
    if group is None:
        raise NotFoundException(detail=f"no group {group_id!r}")
    try:
        delete_group(
            store,
            group.id,
            now,
            actor,
            expected_version=group.version if expected_version is None else expected_version,
        )
    except Conflicting:
        raise PreconditionFailedException from None
    except NotFoundError as exc:
        raise NotFoundException(detail=str(exc)) from None
