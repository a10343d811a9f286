"""`GroupStore` and `RoleStore` on SQL (docs/architecture.md, "Data model": `groups`,
`group_members`, `role_grants`). Every multi-row change runs in one transaction; version
checks are part of the UPDATE's WHERE clause."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, or_, select, update

from tessera.domain.model import Group, PrincipalKind, RoleGrant
from tessera.store.protocols import Conflict, NotFound, StaleVersion
from tessera.store.sql import schema as t
from tessera.store.sql.engine import read, write

__all__ = [
    "SqlGroups",
    "SqlRoles",
    "bump_groups",
    "drop_principal",
    "drop_resource_grants",
    "hold_rows",
    "insert_provider_memberships",
]

_G = t.groups
_M = t.group_members
_R = t.role_grants
_U = t.users


def drop_principal(conn: Connection, domain: str, kind: PrincipalKind, principal_id: str) -> None:
    """Forget a deleted user's or group's memberships and role grants, or a deleted app's
    roles (in the caller's transaction)."""
    if kind is PrincipalKind.USER:
        conn.execute(delete(_M).where(_M.c.domain_id == domain, _M.c.user_id == principal_id))
    elif kind is PrincipalKind.GROUP:
        conn.execute(delete(_M).where(_M.c.domain_id == domain, _M.c.group_id == principal_id))
    conn.execute(
        delete(_R).where(
            _R.c.domain_id == domain,
            _R.c.principal_kind == kind.value,
            _R.c.principal_id == principal_id,
        )
    )


def bump_groups(conn: Connection, domain: str, group_ids: Sequence[str], now: datetime) -> None:
    """A member more or less is a change of the group: its version (SCIM's ETag) and time."""
    if group_ids:
        conn.execute(
            update(_G)
            .where(_G.c.domain_id == domain, _G.c.id.in_(sorted(set(group_ids))))
            .values(version=_G.c.version + 1, updated_at=now)
        )


def insert_provider_memberships(
    conn: Connection,
    domain: str,
    user_id: str,
    group_ids: Sequence[str],
    provider_id: str,
    now: datetime,
) -> None:
    """Memberships of `user_id` that a sign-in through `provider_id` made (none of them
    exists yet), and the groups' versions moved on (in the caller's transaction)."""
    rows = [
        {"domain_id": domain, "group_id": g, "user_id": user_id, "provider_id": provider_id}
        for g in sorted(set(group_ids))
    ]
    if rows:
        conn.execute(insert(_M), rows)
        bump_groups(conn, domain, group_ids, now)


def drop_resource_grants(conn: Connection, domain: str, resource_id: str) -> None:
    conn.execute(delete(_R).where(_R.c.domain_id == domain, _R.c.resource_id == resource_id))


def _group(row: Any) -> Group:
    mapping = row._mapping
    return Group(**{f.name: mapping[f.name] for f in fields(Group)})


def _group_values(group: Group) -> dict[str, Any]:
    values = {f.name: getattr(group, f.name) for f in fields(Group)}
    return {**values, "name_lower": group.name.casefold()}


def _grant(row: Any) -> RoleGrant:
    return RoleGrant(
        resource_id=row.resource_id,
        role=row.role,
        principal_kind=PrincipalKind(row.principal_kind),
        principal_id=row.principal_id,
        granted_at=row.granted_at,
        granted_by=row.granted_by,
    )


def hold_rows(
    conn: Connection, domain_id: str, table: Table, ids: Sequence[str], what: str
) -> None:
    """`NotFound` unless every row of `ids` exists; on PostgreSQL they stay locked (FOR KEY
    SHARE: updates go on, deletes wait) until the commit, so a concurrent delete, which
    deletes the rows naming them in its own transaction, waits and then deletes ours too
    (SQLite serialises writers)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    key = table.c.id
    found = set(
        conn.execute(
            select(key)
            .where(table.c.domain_id == domain_id, key.in_(wanted))
            .with_for_update(read=True, key_share=True)
        ).scalars()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"no {what} {missing[0]!r}")


class _Part:
    def __init__(self, engine: Engine, domain_id: str) -> None:
        self._engine = engine
        self._domain = domain_id


class SqlGroups(_Part):
    def _insert_members(self, conn: Connection, group_id: str, members: Sequence[str]) -> None:
        wanted = sorted(set(members))
        if not wanted:
            return
        hold_rows(conn, self._domain, _U, wanted, "user")  # a user deleted meanwhile: no orphan
        conn.execute(
            insert(_M),
            [{"domain_id": self._domain, "group_id": group_id, "user_id": m} for m in wanted],
        )

    def add(self, group: Group, members: Sequence[str] = ()) -> None:
        with write(self._engine) as conn:  # uq_groups_name, the primary key: Conflict
            conn.execute(insert(_G).values(domain_id=self._domain, **_group_values(group)))
            self._insert_members(conn, group.id, members)

    def _one(self, where: Any) -> Group | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_G).where(_G.c.domain_id == self._domain, where)).first()
        return _group(row) if row else None

    def get(self, group_id: str) -> Group | None:
        return self._one(_G.c.id == group_id)

    def get_by_name(self, name: str) -> Group | None:
        return self._one(_G.c.name_lower == name.casefold())

    def list(self) -> builtins.list[Group]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_G).where(_G.c.domain_id == self._domain).order_by(_G.c.name_lower, _G.c.id)
            ).all()
        return [_group(r) for r in rows]

    def members(self, group_id: str) -> builtins.list[str]:
        with read(self._engine) as conn:
            where = (_M.c.domain_id == self._domain, _M.c.group_id == group_id)
            return list(
                conn.execute(select(_M.c.user_id).where(*where).order_by(_M.c.user_id)).scalars()
            )

    def memberships(self) -> builtins.list[tuple[str, str]]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_M.c.group_id, _M.c.user_id)
                .where(_M.c.domain_id == self._domain)
                .order_by(_M.c.group_id, _M.c.user_id)
            ).all()
        return [(r.group_id, r.user_id) for r in rows]

    def groups_of(self, user_id: str) -> builtins.list[Group]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_G)
                .join(_M, and_(_M.c.domain_id == _G.c.domain_id, _M.c.group_id == _G.c.id))
                .where(_G.c.domain_id == self._domain, _M.c.user_id == user_id)
                .order_by(_G.c.name_lower, _G.c.id)
            ).all()
        return [_group(r) for r in rows]

    def _write_row(self, conn: Connection, group: Group, expected_version: int | None) -> None:
        where = [_G.c.domain_id == self._domain, _G.c.id == group.id]
        if expected_version is not None:
            where.append(_G.c.version == expected_version)
        values = {**_group_values(group), "version": _G.c.version + 1}
        del values["id"]
        if conn.execute(update(_G).where(*where).values(**values)).rowcount == 1:
            return
        exists = conn.execute(select(_G.c.version).where(*where[:2])).first()
        if exists is None:
            raise NotFound(f"no group {group.id!r}")
        raise StaleVersion(f"group {group.id!r} changed")

    def update(
        self,
        group: Group,
        members: Sequence[str] | None = None,
        *,
        expected_version: int | None = None,
    ) -> None:
        with write(self._engine) as conn:
            self._write_row(conn, group, expected_version)
            if members is not None:
                # Only what changes: a membership that stays keeps who made it.
                where = (_M.c.domain_id == self._domain, _M.c.group_id == group.id)
                wanted = sorted(set(members))
                conn.execute(delete(_M).where(*where, _M.c.user_id.not_in(wanted)))
                present = set(conn.execute(select(_M.c.user_id).where(*where)).scalars())
                self._insert_members(conn, group.id, [m for m in wanted if m not in present])

    def change_members(
        self, group_id: str, add: Sequence[str], remove: Sequence[str], now: datetime
    ) -> Group:
        with write(self._engine) as conn:
            # The version bump first: it locks the group's row, so concurrent changes of its
            # members run one after the other.
            bumped = conn.execute(
                update(_G)
                .where(_G.c.domain_id == self._domain, _G.c.id == group_id)
                .values(version=_G.c.version + 1, updated_at=now)
                .returning(*_G.c)
            ).first()
            if bumped is None:
                raise NotFound(f"no group {group_id!r}")
            where = (_M.c.domain_id == self._domain, _M.c.group_id == group_id)
            if remove:
                conn.execute(delete(_M).where(*where, _M.c.user_id.in_(sorted(set(remove)))))
            if add:
                adding = _M.c.user_id.in_(sorted(set(add)))
                present = set(conn.execute(select(_M.c.user_id).where(*where, adding)).scalars())
                # Added again by an administrator: theirs now, no provider's sign-in ends it.
                made = _M.c.provider_id.is_not(None)
                conn.execute(update(_M).where(*where, adding, made).values(provider_id=None))
                self._insert_members(conn, group_id, [m for m in add if m not in present])
            return _group(bumped)

    def made_by_provider(self, user_id: str, provider_id: str) -> builtins.list[str]:
        with read(self._engine) as conn:
            query = select(_M.c.group_id).where(
                _M.c.domain_id == self._domain,
                _M.c.user_id == user_id,
                _M.c.provider_id == provider_id,
            )
            return sorted(conn.execute(query).scalars())

    def provider_memberships(
        self,
        user_id: str,
        provider_id: str,
        join: Sequence[str],
        leave: Sequence[str],
        now: datetime,
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        mine = (_M.c.domain_id == self._domain, _M.c.user_id == user_id)
        with write(self._engine) as conn:
            hold_rows(conn, self._domain, _U, [user_id], "user")
            wanted = sorted(set(join))
            # Groups that exist (a deleted one is skipped), held until the commit as for
            # `_insert_members`, and that the user is not in yet.
            existing = set(
                conn.execute(
                    select(_G.c.id)
                    .where(_G.c.domain_id == self._domain, _G.c.id.in_(wanted))
                    .with_for_update(read=True, key_share=True)
                ).scalars()
            )
            present = set(
                conn.execute(
                    select(_M.c.group_id).where(*mine, _M.c.group_id.in_(wanted))
                ).scalars()
            )
            joined = sorted(existing - present)
            insert_provider_memberships(conn, self._domain, user_id, joined, provider_id, now)
            left = sorted(
                conn.execute(
                    delete(_M)
                    .where(
                        *mine,
                        _M.c.provider_id == provider_id,
                        _M.c.group_id.in_(sorted(set(leave))),
                    )
                    .returning(_M.c.group_id)
                ).scalars()
            )
            bump_groups(conn, self._domain, left, now)
            return joined, left

    def delete(self, group_id: str, *, expected_version: int | None = None) -> None:
        with write(self._engine) as conn:
            where = [_G.c.domain_id == self._domain, _G.c.id == group_id]
            if expected_version is not None:
                where.append(_G.c.version == expected_version)
            if conn.execute(delete(_G).where(*where)).rowcount != 1:
                exists = conn.execute(select(_G.c.id).where(*where[:2])).first()
                if exists is None:
                    raise NotFound(f"no group {group_id!r}")
                raise StaleVersion(f"group {group_id!r} changed")
            drop_principal(conn, self._domain, PrincipalKind.GROUP, group_id)


class SqlRoles(_Part):
    def grant(self, grant: RoleGrant) -> bool:
        try:
            with write(self._engine) as conn:
                conn.execute(
                    insert(_R).values(
                        domain_id=self._domain,
                        resource_id=grant.resource_id,
                        role=grant.role,
                        principal_kind=grant.principal_kind.value,
                        principal_id=grant.principal_id,
                        granted_at=grant.granted_at,
                        granted_by=grant.granted_by,
                    )
                )
        except Conflict:  # the primary key: granted already
            return False
        return True

    def revoke(self, resource_id: str, role: str, kind: PrincipalKind, principal_id: str) -> bool:
        with write(self._engine) as conn:
            return bool(
                conn.execute(
                    delete(_R).where(
                        _R.c.domain_id == self._domain,
                        _R.c.resource_id == resource_id,
                        _R.c.role == role,
                        _R.c.principal_kind == kind.value,
                        _R.c.principal_id == principal_id,
                    )
                ).rowcount
            )

    def list(
        self,
        resource_id: str | None = None,
        principal: tuple[PrincipalKind, str] | None = None,
    ) -> builtins.list[RoleGrant]:
        where = [_R.c.domain_id == self._domain]
        if resource_id is not None:
            where.append(_R.c.resource_id == resource_id)
        if principal is not None:
            where += [_R.c.principal_kind == principal[0].value, _R.c.principal_id == principal[1]]
        order = (_R.c.resource_id, _R.c.role, _R.c.principal_kind, _R.c.principal_id)
        with read(self._engine) as conn:
            rows = conn.execute(select(_R).where(*where).order_by(*order)).all()
        return [_grant(r) for r in rows]

    def roles_of_user(self, user_id: str, resource_id: str) -> tuple[str, ...]:
        groups = select(_M.c.group_id).where(
            _M.c.domain_id == self._domain, _M.c.user_id == user_id
        )
        holder = or_(
            and_(_R.c.principal_kind == PrincipalKind.USER.value, _R.c.principal_id == user_id),
            and_(
                _R.c.principal_kind == PrincipalKind.GROUP.value,
                _R.c.principal_id.in_(groups.scalar_subquery()),
            ),
        )
        return self._roles(holder, resource_id)

    def roles_of_app(self, client_id: str, resource_id: str) -> tuple[str, ...]:
        holder = and_(
            _R.c.principal_kind == PrincipalKind.APP.value, _R.c.principal_id == client_id
        )
        return self._roles(holder, resource_id)

    def _roles(self, holder: Any, resource_id: str) -> tuple[str, ...]:
        where = (_R.c.domain_id == self._domain, _R.c.resource_id == resource_id, holder)
        with read(self._engine) as conn:
            rows = conn.execute(select(_R.c.role).where(*where).distinct().order_by(_R.c.role))
            return tuple(rows.scalars())
