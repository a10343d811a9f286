"""The deployment's identity domains on SQL (`DomainStore`), and the expiry conditions that
housekeeping shares with the per-domain purges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Table,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)

from tessera.domain.identity_domains import DomainSettings, IdentityDomain
from tessera.store.protocols import DomainContent, ExpiredRows, NotFound
from tessera.store.sql import schema as t
from tessera.store.sql.engine import read, write

__all__ = [
    "SqlDomains",
    "dead_grants",
    "domain_row",
    "expired_codes",
    "expired_device_authorizations",
    "expired_events",
    "expired_failures",
    "expired_keys",
    "expired_nonces",
    "expired_pushed_requests",
    "expired_refresh_tokens",
    "expired_registration_tokens",
    "expired_sessions",
]

_D = t.domains

# A domain's data, children before parents.
_DATA: tuple[Table, ...] = (
    t.refresh_tokens,
    t.authorization_codes,
    t.grants,
    t.browser_sessions,
    t.consents,
    t.revocation_events,
    t.login_failures,
    t.audit_events,
    t.clients,
    t.resources,
    t.passkeys,
    t.totp_factors,
    t.recovery_codes,
    t.used_nonces,
    t.pushed_requests,
    t.registration_tokens,
    t.trusted_issuers,
    t.device_authorizations,
    t.group_members,
    t.role_grants,
    t.groups,
    t.federated_identities,
    t.upstream_providers,
    t.users,
    t.signing_keys,
)


# --- what has expired (one definition for the per-domain purges and housekeeping) --------------


# "Ended by now", not "ended at all": a range an index serves (SQLite's planner uses none for
# IS NOT NULL); a row ended on a node whose clock runs ahead waits for the next round.


def expired_sessions(now: datetime) -> ColumnElement[bool]:
    s = t.browser_sessions
    return (s.c.ended_at <= now) | (s.c.expires_at <= now)


def expired_codes(now: datetime) -> ColumnElement[bool]:
    # Consumed codes stay until they expire: a replay must still be recognised.
    return t.authorization_codes.c.expires_at <= now


def dead_grants(now: datetime) -> ColumnElement[bool]:
    g = t.grants
    return (g.c.revoked_at <= now) | (g.c.absolute_expiry <= now)


def expired_refresh_tokens(now: datetime, grants: Any) -> ColumnElement[bool]:
    """Refresh tokens past their inactivity expiry, or of a grant in `grants` (a select of
    dead grant ids)."""
    r = t.refresh_tokens
    return (r.c.expires_at <= now) | r.c.grant_id.in_(grants)


def expired_events(now: datetime) -> ColumnElement[bool]:
    return t.revocation_events.c.expires_at <= now


def expired_failures(before: datetime) -> ColumnElement[bool]:
    return t.login_failures.c.at < before


def expired_nonces(now: datetime) -> ColumnElement[bool]:
    # Expired at `expires_at` itself, as `NonceStore.use_once` takes such a row over.
    return t.used_nonces.c.expires_at <= now


def expired_pushed_requests(now: datetime) -> ColumnElement[bool]:
    # A used request stays until it expires (seconds later), like a consumed code.
    return t.pushed_requests.c.expires_at <= now


def expired_registration_tokens(now: datetime) -> ColumnElement[bool]:
    r = t.registration_tokens
    return (r.c.expires_at <= now) | (r.c.revoked_at <= now)


def expired_device_authorizations(now: datetime) -> ColumnElement[bool]:
    # A redeemed or decided request stays until it expires, so its codes are recognised.
    return t.device_authorizations.c.expires_at <= now


def expired_keys(now: datetime) -> ColumnElement[bool]:
    k = t.signing_keys
    return (k.c.state == "retired") & k.c.retire_after.is_not(None) & (k.c.retire_after <= now)


# --- rows --------------------------------------------------------------------------------------


def _domain(row: Row[Any]) -> IdentityDomain:
    return IdentityDomain(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        created_at=row.created_at,
        host=row.host,
        disabled_at=row.disabled_at,
        settings=DomainSettings.from_dict(dict(row.settings or {})),
        version=row.version,
    )


def domain_row(domain: IdentityDomain) -> dict[str, Any]:
    """The `domains` row of a domain (also for bulk inserts, e.g. by `bench/`)."""
    return {
        "id": domain.id,
        "name": domain.name,
        "display_name": domain.display_name,
        "created_at": domain.created_at,
        "host": domain.host,
        "disabled_at": domain.disabled_at,
        "settings": domain.settings.as_dict(),
        "version": domain.version,
    }


def _batched_delete(conn: Any, table: Table, where: ColumnElement[bool], batch: int) -> int:
    """Delete at most `batch` rows matching `where` (a subquery of primary keys: portable
    LIMIT)."""
    keys = list(table.primary_key.columns)
    chosen = select(*keys).where(where).limit(batch)
    if len(keys) == 1:
        return int(conn.execute(delete(table).where(keys[0].in_(chosen))).rowcount)
    # A composite key, compared as a row value.
    return int(conn.execute(delete(table).where(tuple_(*keys).in_(chosen))).rowcount)


class SqlDomains:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _one(self, where: ColumnElement[bool]) -> IdentityDomain | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_D).where(where)).first()
        return _domain(row) if row else None

    def get(self, domain_id: str) -> IdentityDomain | None:
        return self._one(_D.c.id == domain_id)

    def get_by_name(self, name: str) -> IdentityDomain | None:
        return self._one(_D.c.name == name)

    def get_by_host(self, host: str) -> IdentityDomain | None:
        return self._one(_D.c.host == host)

    def list(self, *, after: str | None = None, limit: int = 100) -> list[IdentityDomain]:
        query = select(_D).order_by(_D.c.name).limit(limit)
        if after is not None:
            query = query.where(_D.c.name > after)
        with read(self._engine) as conn:
            return [_domain(r) for r in conn.execute(query).all()]

    def count(self) -> int:
        with read(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(_D)).scalar_one())

    def create(self, domain: IdentityDomain, content: DomainContent) -> None:
        # Imported here: the row converters live with the per-domain store.
        from tessera.store.sql.store import content_rows

        with write(self._engine) as conn:
            conn.execute(insert(_D).values(**domain_row(domain)))
            for table, rows in content_rows(domain.id, content):
                if rows:
                    conn.execute(insert(table), rows)

    def update(self, domain: IdentityDomain) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                update(_D)
                .where(_D.c.id == domain.id, _D.c.version == domain.version - 1)
                .values(**domain_row(domain))
            )
            if result.rowcount != 1:
                raise NotFound(f"the domain {domain.name} is gone or was changed meanwhile")

    def purge_data(self, domain_id: str, batch: int) -> int:
        for table in _DATA:
            with write(self._engine) as conn:
                deleted = _batched_delete(conn, table, table.c.domain_id == domain_id, batch)
            if deleted:
                return deleted
        return 0

    def delete(self, domain_id: str) -> bool:
        with write(self._engine) as conn:
            return bool(conn.execute(delete(_D).where(_D.c.id == domain_id)).rowcount)

    def purge_expired(self, now: datetime, login_before: datetime, batch: int) -> ExpiredRows:
        dead = select(t.grants.c.grant_id).where(dead_grants(now))
        steps: list[tuple[str, Table, ColumnElement[bool]]] = [
            ("codes", t.authorization_codes, expired_codes(now)),
            ("refresh_tokens", t.refresh_tokens, expired_refresh_tokens(now, dead)),
            ("revocation_events", t.revocation_events, expired_events(now)),
            ("sessions", t.browser_sessions, expired_sessions(now)),
            ("login_failures", t.login_failures, expired_failures(login_before)),
            ("signing_keys", t.signing_keys, expired_keys(now)),
            ("nonces", t.used_nonces, expired_nonces(now)),
            ("pushed_requests", t.pushed_requests, expired_pushed_requests(now)),
            ("registration_tokens", t.registration_tokens, expired_registration_tokens(now)),
            (
                "device_authorizations",
                t.device_authorizations,
                expired_device_authorizations(now),
            ),
        ]
        counts: dict[str, int] = {}
        for name, table, where in steps:
            total = 0
            while True:
                with write(self._engine) as conn:
                    deleted = _batched_delete(conn, table, where, batch)
                total += deleted
                if deleted < batch:
                    break
            counts[name] = total
        # Grants go once their refresh tokens are gone and their absolute expiry has passed.
        g = t.grants
        while True:
            with write(self._engine) as conn:
                deleted = _batched_delete(conn, g, g.c.absolute_expiry <= now, batch)
            if deleted < batch:
                break
        return ExpiredRows(**counts)
