"""Users and groups as SCIM documents, and back (RFC 7643 §4.1, §4.2, §4.3).

A user's SCIM attributes live in the user's columns where Tessera reads them (`userName`,
`externalId`, `displayName`, `active`, the primary e-mail, `name.givenName`,
`name.familyName`) and the rest in `attributes`, a JSON object (nickName, title,
phoneNumbers, every e-mail, addresses, the enterprise extension…). `password` is write-only
and never stored there; `groups` is derived from the memberships. A group's members are users
only (groups do not nest, docs/architecture.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim2_models import InvalidValueException

from tessera.domain.model import Group, User

__all__ = [
    "ENTERPRISE_SCHEMA",
    "GROUP_SCHEMA",
    "USER_SCHEMA",
    "GroupFields",
    "UserFields",
    "group_document",
    "group_fields",
    "parse_version",
    "user_document",
    "user_fields",
    "version_tag",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Held in columns, derived or never stored: the rest of a user's document is `attributes`.
_USER_COLUMNS = frozenset(
    ("schemas", "id", "meta", "userName", "externalId", "displayName", "active")
) | {"password", "groups"}
# What `attributes` may hold, as JSON text: plenty for a directory entry, bounded.
MAX_ATTRIBUTES = 64 * 1024
_VERSION = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def version_tag(version: int) -> str:
    """The weak ETag of a stored version (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def parse_version(tag: str | None) -> int | None:
    """The stored version an ETag names; -1 (never stored) for one we did not issue."""
    if tag is None:
        return None
    found = _VERSION.match(tag.strip())
    return int(found.group(1)) if found else -1


def _meta(kind: str, created: datetime, modified: datetime, version: int) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": created.isoformat(),
        "lastModified": modified.isoformat(),
        "version": version_tag(version),
    }


def user_document(user: User, groups: Sequence[Group]) -> dict[str, Any]:
    """The SCIM User of a stored user and the groups it is a member of."""
    extra: dict[str, Any] = json.loads(user.attributes) if user.attributes else {}
    doc: dict[str, Any] = {
        "schemas": [USER_SCHEMA, *([ENTERPRISE_SCHEMA] if ENTERPRISE_SCHEMA in extra else [])],
        "id": user.id,
        "userName": user.username,
        "active": user.active,
    }
    if user.display_name != user.username:  # the username stands in for a missing one
        doc["displayName"] = user.display_name
    if user.external_id is not None:
        doc["externalId"] = user.external_id
    name = dict(extra.pop("name", None) or {})
    if user.given_name is not None:
        name["givenName"] = user.given_name
    if user.family_name is not None:
        name["familyName"] = user.family_name
    if name:
        doc["name"] = name
    if "emails" not in extra and user.email:  # a user made by the CLI or the admin API
        doc["emails"] = [{"value": user.email, "primary": True}]
    doc.update(extra)
    if groups:
        doc["groups"] = [
            {"value": g.id, "display": g.name, "$ref": f"Groups/{g.id}", "type": "direct"}
            for g in groups
        ]
    doc["meta"] = _meta("User", user.created_at, user.last_modified, user.version)
    return doc


@dataclass(frozen=True, slots=True)
class UserFields:
    """What a SCIM User document sets of a user (validated by the SCIM models already)."""

    username: str
    display_name: str
    active: bool | None  # None: not given (a new user is active, a stored one keeps its state)
    password: str | None
    email: str | None
    external_id: str | None
    given_name: str | None
    family_name: str | None
    attributes: str | None


def _primary_email(extra: Mapping[str, Any]) -> str | None:
    emails = [e for e in extra.get("emails") or () if isinstance(e, Mapping)]
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    value = primary.get("value") if primary is not None else None
    return value if isinstance(value, str) else None


def user_fields(doc: Mapping[str, Any]) -> UserFields:
    """The user's columns and `attributes` of a SCIM User document (a model's dump)."""
    extra = {k: v for k, v in doc.items() if k not in _USER_COLUMNS and v is not None}
    name = {k: v for k, v in (extra.pop("name", None) or {}).items() if v is not None}
    given, family = name.pop("givenName", None), name.pop("familyName", None)
    if name:
        extra["name"] = name
    attributes = json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else None
    if attributes is not None and len(attributes) > MAX_ATTRIBUTES:
        raise InvalidValueException(detail=f"the attributes exceed {MAX_ATTRIBUTES} bytes")
    username = str(doc.get("userName") or "")
    return UserFields(
        username=username,
        display_name=str(doc.get("displayName") or username),
        active=doc.get("active"),
        password=doc.get("password"),
        email=_primary_email(extra),
        external_id=doc.get("externalId"),
        given_name=given,
        family_name=family,
        attributes=attributes,
    )


def group_document(group: Group, members: Sequence[User]) -> dict[str, Any]:
    """The SCIM Group of a stored group and its member users."""
    doc: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": group.id, "displayName": group.name}
    if group.external_id is not None:
        doc["externalId"] = group.external_id
    if members:
        doc["members"] = [
            {"value": u.id, "display": u.username, "$ref": f"Users/{u.id}", "type": "User"}
            for u in members
        ]
    doc["meta"] = _meta("Group", group.created_at, group.updated_at, group.version)
    return doc


@dataclass(frozen=True, slots=True)
class GroupFields:
    name: str
    external_id: str | None
    members: tuple[str, ...]  # user ids, each once


def group_fields(doc: Mapping[str, Any]) -> GroupFields:
    """A SCIM Group document's name, external id and member ids; a member that is not a user
    (`type` Group, or a `$ref` to a group) is refused: groups do not nest."""
    ids: list[str] = []
    for member in doc.get("members") or ():
        kind = str(member.get("type") or "User")
        ref = str(member.get("$ref") or "")
        if kind.lower() != "user" or "/Groups/" in ref or ref.startswith("Groups/"):
            raise InvalidValueException(
                detail="a group's members are users only: groups do not nest"
            )
        value = member.get("value")
        if not isinstance(value, str) or not value:
            raise InvalidValueException(detail="a member needs the user's id as its value")
        ids.append(value)
    return GroupFields(
        name=str(doc.get("displayName") or ""),
        external_id=doc.get("externalId"),
        members=tuple(dict.fromkeys(ids)),
    )
