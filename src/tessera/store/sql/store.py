"""The SQL store: SQLite by default, PostgreSQL in production (SQLAlchemy 2.0 Core).

Every method is one short transaction; `SqlStore.transaction()` binds the small stores a token
request needs to one (a unit of work on the hot path's `fast_transaction`). The "use once"
writes are conditional UPDATEs whose row count names the one winner (code consumption, refresh
token use, `GrantStore.revoke`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from tessera.domain.model import DEFAULT_DOMAIN as _DEFAULT_DOMAIN
from tessera.domain.model import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    Client,
    ClientKind,
    Consent,
    DeviceAuthorization,
    FederatedIdentity,
    Grant,
    KeyState,
    Passkey,
    PrincipalKind,
    PushedRequest,
    RecoveryCode,
    RefreshToken,
    RegistrationToken,
    Resource,
    ResourceRole,
    RevocationEvent,
    RevocationKind,
    SecretHash,
    SigningKey,
    TotpFactor,
    TrustedIssuer,
    UpstreamProvider,
    User,
)
from tessera.store.protocols import (
    AuditStore,
    ClientStore,
    CodeStore,
    Conflict,
    ConsentStore,
    DeviceAuthorizationStore,
    DomainContent,
    DomainStore,
    EmailDomainTaken,
    FactorStore,
    Failures,
    FederatedIdentityStore,
    GrantStore,
    GroupStore,
    KeyStore,
    LoginThrottleStore,
    NonceStore,
    NotFound,
    PushedRequestStore,
    RefreshTokenStore,
    RegistrationTokenStore,
    ResourceStore,
    RevocationStore,
    RoleStore,
    SessionStore,
    StaleVersion,
    StoreUnavailable,
    TrustedIssuerStore,
    TxCodes,
    TxDeviceAuthorizations,
    TxGrants,
    TxRefreshTokens,
    TxRevocations,
    TxUsers,
    UnitOfWork,
    UpstreamProviderStore,
    UserStore,
)
from tessera.store.sql import fast
from tessera.store.sql import schema as t
from tessera.store.sql.domains import (
    SqlDomains,
    dead_grants,
    expired_codes,
    expired_device_authorizations,
    expired_events,
    expired_failures,
    expired_nonces,
    expired_pushed_requests,
    expired_refresh_tokens,
    expired_registration_tokens,
    expired_sessions,
)
from tessera.store.sql.engine import make_engine, read, write
from tessera.store.sql.fast import FastTx, fast_statement, fast_transaction
from tessera.store.sql.groups import (
    SqlGroups,
    SqlRoles,
    drop_principal,
    drop_resource_grants,
    hold_rows,
    insert_provider_memberships,
)
from tessera.store.sql.migrate import ensure_current

if TYPE_CHECKING:
    import psycopg

__all__ = ["SqlStore"]

_E = TypeVar("_E")


_Row = Row[Any] | Mapping[str, Any]


def _from_row(cls: type[_E], row: _Row, **converted: Any) -> _E:
    """An entity from a row of the same column names (JSON lists become tuples)."""
    mapping = row._mapping if isinstance(row, Row) else row
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in mapping:
            value = mapping[f.name]
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(converted)
    return cls(**values)


def _to_row(entity: Any, **converted: Any) -> dict[str, Any]:
    """Column values of an entity (tuples become JSON lists, enums their value)."""
    values: dict[str, Any] = {}
    for f in fields(entity):
        value = getattr(entity, f.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Enum):
            value = value.value
        values[f.name] = value
    values.update(converted)
    return values


@functools.cache
def _lookup(table: Table, *columns: str) -> Any:
    """A prebuilt `SELECT * FROM table WHERE domain_id = :domain_id AND col = :col …`.

    Built once: hot paths skip statement construction and cache-key generation (SQLAlchemy
    memoises both on the statement object)."""
    return select(table).where(
        table.c.domain_id == bindparam("domain_id"),
        *(table.c[name] == bindparam(name) for name in columns),
    )


@functools.cache
def _insert(table: Table) -> Any:
    return insert(table)


def _fast_insert(tx: FastTx, table: Table, values: dict[str, Any]) -> None:
    tx.run(_insert(table), values, keys=tuple(values))


def _mark_once(
    table: Table, key: str, mark: str, *where: Any, unexpired: bool = False, **values: Any
) -> Any:
    """`UPDATE table SET mark = :now, … WHERE domain_id = :w_domain AND key = :w_<key> AND mark
    IS NULL [AND expires_at > :now] [AND where…]`: a use-once write, prebuilt; its row count (or
    the row it returns) names the one winner."""
    conditions = [
        table.c.domain_id == bindparam("w_domain"),
        table.c[key] == bindparam(f"w_{key}"),
        table.c[mark].is_(None),
    ]
    if unexpired:
        conditions.append(table.c.expires_at > bindparam("now"))
    return update(table).where(*conditions, *where).values({mark: bindparam("now"), **values})


class _Part:
    def __init__(
        self, engine: Engine, domain_id: str, listeners: list[Callable[[str], None]] | None = None
    ) -> None:
        self._engine = engine
        self._domain = domain_id
        self._listeners = listeners if listeners is not None else []

    def _revoked(self) -> None:
        """Tell listeners (revocation-feed wake-ups) that a revocation was committed."""
        for listener in self._listeners:
            listener(self._domain)

    def _where(self, table: Table) -> Any:
        return table.c.domain_id == self._domain

    def _find(self, table: Table, **keys: str) -> Mapping[str, Any] | None:
        """The row of `table` with these key values (the hot path's one-row lookup)."""
        with fast_statement(self._engine) as tx:
            return tx.first(_lookup(table, *keys), {"domain_id": self._domain, **keys})

    def _add(self, table: Table, values: dict[str, Any]) -> None:
        with fast_statement(self._engine) as tx:
            _fast_insert(tx, table, {"domain_id": self._domain, **values})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _amr_text(amr: tuple[str, ...]) -> str:
    """The `amr` column: RFC 8176 method names never hold a space."""
    return " ".join(amr)


def _column(row: _Row, name: str) -> Any:
    return (row._mapping if isinstance(row, Row) else row)[name]


def _amr(row: _Row) -> tuple[str, ...]:
    return tuple(str(_column(row, "amr")).split())


# --- users -------------------------------------------------------------------------------------


def _user(row: _Row) -> User:
    return _from_row(User, row)


def _user_values(user: User) -> dict[str, Any]:
    return _to_row(user, username_lower=user.username.lower())


class _Users(_Part):
    def add(self, user: User) -> None:
        with write(self._engine) as conn:
            conn.execute(insert(t.users).values(domain_id=self._domain, **_user_values(user)))

    def get(self, user_id: str) -> User | None:
        row = self._find(t.users, id=user_id)
        return _user(row) if row else None

    def get_by_username(self, username: str) -> User | None:
        row = self._find(t.users, username_lower=username.lower())
        return _user(row) if row else None

    def find_by_email(self, email: str) -> list[User]:
        users = t.users
        with read(self._engine) as conn:
            rows = conn.execute(
                select(users)
                .where(self._where(users), func.lower(users.c.email) == email.strip().lower())
                .order_by(users.c.username_lower)
            ).all()
        return [_user(r) for r in rows]

    def list(self) -> list[User]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(t.users).where(self._where(t.users)).order_by(t.users.c.username_lower)
            ).all()
        return [_user(r) for r in rows]

    def update(self, user: User, *, expected_version: int | None = None) -> None:
        users = t.users
        where = [self._where(users), users.c.id == user.id]
        if expected_version is not None:
            where.append(users.c.version == expected_version)
        with write(self._engine) as conn:
            values = {**_user_values(user), "version": users.c.version + 1}
            result = conn.execute(update(users).where(*where).values(**values))
            if result.rowcount != 1:
                if conn.execute(select(users.c.id).where(*where[:2])).first() is None:
                    raise NotFound(f"no user {user.id}")
                raise StaleVersion(f"user {user.id} changed")

    def delete(self, user_id: str) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                delete(t.users).where(self._where(t.users), t.users.c.id == user_id)
            )
            if result.rowcount != 1:
                raise NotFound(f"no user {user_id}")
            _remove_factors(conn, self._domain, user_id)
            drop_principal(conn, self._domain, PrincipalKind.USER, user_id)
            fi = t.federated_identities
            conn.execute(delete(fi).where(self._where(fi), fi.c.user_id == user_id))


# --- clients -----------------------------------------------------------------------------------


def _sealed_text(sealed: bytes | None) -> str | None:
    """`SecretHash.sealed` in the `secret_hashes` JSON: base64url."""
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii") if sealed else None


def _sealed(text: str | None) -> bytes | None:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) if text else None


def _secret_hash(value: Mapping[str, Any], created_at: datetime) -> SecretHash:
    return SecretHash(
        value["hash"],
        _dt(value["created_at"]) or created_at,
        _dt(value["expires_at"]),
        _sealed(value.get("sealed")),
    )


def _secret_hash_value(secret: SecretHash) -> dict[str, Any]:
    value = {
        "hash": secret.hash,
        "created_at": _iso(secret.created_at),
        "expires_at": _iso(secret.expires_at),
    }
    if secret.sealed is not None:  # only `client_secret_jwt` apps keep one
        value["sealed"] = _sealed_text(secret.sealed)
    return value


def _client(row: Row[Any]) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        kind=ClientKind(row.kind),
        redirect_uris=tuple(row.redirect_uris),
        grant_types=tuple(row.grant_types),
        allowed_scopes=tuple(row.allowed_scopes),
        created_at=row.created_at,
        secret_hashes=tuple(_secret_hash(s, row.created_at) for s in row.secret_hashes),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
        access_ttl=row.access_ttl,
        refresh_ttl=row.refresh_ttl,
        first_party=row.first_party,
        version=row.version,
        resource_server_for=tuple(row.resource_server_for),
        mfa_policy=row.mfa_policy,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        token_endpoint_auth_signing_alg=row.token_endpoint_auth_signing_alg,
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        require_pushed_authorization_requests=row.require_pushed_authorization_requests,
        dpop_bound_access_tokens=row.dpop_bound_access_tokens,
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        profile=row.profile,
        registration_token_hash=row.registration_token_hash,
        details=row.details,
        token_exchange_audiences=tuple(row.token_exchange_audiences or ()),
        token_exchange_impersonation=row.token_exchange_impersonation,
    )


def _client_values(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "kind": client.kind.value,
        "secret_hashes": [_secret_hash_value(s) for s in client.secret_hashes],
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "allowed_scopes": list(client.allowed_scopes),
        "access_ttl": client.access_ttl,
        "refresh_ttl": client.refresh_ttl,
        "first_party": client.first_party,
        "created_at": client.created_at,
        "version": client.version,
        "resource_server_for": list(client.resource_server_for),
        "mfa_policy": client.mfa_policy,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "token_endpoint_auth_signing_alg": client.token_endpoint_auth_signing_alg,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "profile": client.profile,
        "registration_token_hash": client.registration_token_hash,
        "details": client.details,
        "token_exchange_audiences": list(client.token_exchange_audiences),
        "token_exchange_impersonation": client.token_exchange_impersonation,
    }


class _Clients(_Part):
    def add(self, client: Client) -> None:
        with write(self._engine) as conn:
            conn.execute(insert(t.clients).values(domain_id=self._domain, **_client_values(client)))

    def get(self, client_id: str) -> Client | None:
        with read(self._engine) as conn:
            row = conn.execute(
                select(t.clients).where(self._where(t.clients), t.clients.c.client_id == client_id)
            ).first()
        return _client(row) if row else None

    def list(self) -> list[Client]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(t.clients).where(self._where(t.clients)).order_by(t.clients.c.name)
            ).all()
        return [_client(r) for r in rows]

    def update(self, client: Client) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                update(t.clients)
                .where(self._where(t.clients), t.clients.c.client_id == client.client_id)
                .values(**_client_values(client))
            )
            if result.rowcount != 1:
                raise NotFound(f"no app {client.client_id}")

    def swap_registration_token(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        c = t.clients.c
        with write(self._engine) as conn:
            result = conn.execute(
                update(t.clients)
                .where(
                    self._where(t.clients),
                    c.client_id == client_id,
                    c.registration_token_hash == old_hash,
                )
                .values(registration_token_hash=new_hash, version=c.version + 1)
            )
        return bool(result.rowcount == 1)

    def delete(self, client_id: str) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                delete(t.clients).where(self._where(t.clients), t.clients.c.client_id == client_id)
            )
            if result.rowcount != 1:
                raise NotFound(f"no app {client_id}")
            drop_principal(conn, self._domain, PrincipalKind.APP, client_id)


# --- resources ---------------------------------------------------------------------------------


def _resource(row: Row[Any]) -> Resource:
    roles = tuple(ResourceRole(r["name"], r.get("description", "")) for r in row.roles or ())
    return _from_row(Resource, row, roles=roles)


def _resource_values(resource: Resource) -> dict[str, Any]:
    roles = [{"name": r.name, "description": r.description} for r in resource.roles]
    return _to_row(resource, roles=roles)


class _Resources(_Part):
    def add(self, resource: Resource) -> None:
        with write(self._engine) as conn:
            values = _resource_values(resource)
            conn.execute(insert(t.resources).values(domain_id=self._domain, **values))

    def _one(self, where: Any) -> Resource | None:
        with read(self._engine) as conn:
            row = conn.execute(select(t.resources).where(self._where(t.resources), where)).first()
        return _resource(row) if row else None

    def get(self, resource_id: str) -> Resource | None:
        return self._one(t.resources.c.id == resource_id)

    def get_by_audience(self, audience: str) -> Resource | None:
        return self._one(t.resources.c.audience == audience)

    def list(self) -> list[Resource]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(t.resources).where(self._where(t.resources)).order_by(t.resources.c.name)
            ).all()
        return [_resource(r) for r in rows]

    def update(self, resource: Resource) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                update(t.resources)
                .where(self._where(t.resources), t.resources.c.id == resource.id)
                .values(**_resource_values(resource))
            )
            if result.rowcount != 1:
                raise NotFound(f"no resource {resource.id}")

    def delete(self, resource_id: str) -> None:
        with write(self._engine) as conn:
            result = conn.execute(
                delete(t.resources).where(self._where(t.resources), t.resources.c.id == resource_id)
            )
            if result.rowcount != 1:
                raise NotFound(f"no resource {resource_id}")
            drop_resource_grants(conn, self._domain, resource_id)


# --- signing keys ------------------------------------------------------------------------------


def _key(row: Row[Any]) -> SigningKey:
    return _from_row(
        SigningKey,
        row,
        private_key_enc=bytes(row.private_key_enc),
        public_jwk=dict(row.public_jwk),
        state=KeyState(row.state),
    )


class _Keys(_Part):
    def add(self, key: SigningKey) -> None:
        with write(self._engine) as conn:
            conn.execute(insert(t.signing_keys).values(domain_id=self._domain, **_to_row(key)))

    def list(self) -> list[SigningKey]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(t.signing_keys)
                .where(self._where(t.signing_keys))
                .order_by(t.signing_keys.c.created_at, t.signing_keys.c.kid)
            ).all()
        return [_key(r) for r in rows]

    def replace_states(self, keys: Sequence[SigningKey]) -> None:
        with write(self._engine) as conn:
            for key in keys:
                result = conn.execute(
                    update(t.signing_keys)
                    .where(self._where(t.signing_keys), t.signing_keys.c.kid == key.kid)
                    .values(
                        state=key.state.value,
                        activated_at=key.activated_at,
                        retire_after=key.retire_after,
                    )
                )
                if result.rowcount != 1:
                    raise NotFound(f"no signing key {key.kid}")

    def delete(self, kid: str) -> None:
        with write(self._engine) as conn:
            conn.execute(
                delete(t.signing_keys).where(
                    self._where(t.signing_keys), t.signing_keys.c.kid == kid
                )
            )


# --- browser sessions --------------------------------------------------------------------------


def _session(row: _Row) -> BrowserSession:
    return _from_row(BrowserSession, row, amr=_amr(row))


_END_SESSION = _mark_once(t.browser_sessions, "id_hash", "ended_at")


class _Sessions(_Part):
    def add(self, session: BrowserSession) -> None:
        self._add(t.browser_sessions, _to_row(session, amr=_amr_text(session.amr)))

    def get(self, id_hash: str) -> BrowserSession | None:
        row = self._find(t.browser_sessions, id_hash=id_hash)
        return _session(row) if row else None

    def end(self, id_hash: str, now: datetime) -> None:
        with fast_statement(self._engine) as tx:
            tx.run(_END_SESSION, {"w_domain": self._domain, "w_id_hash": id_hash, "now": now})

    def end_all_for_user(self, user_id: str, now: datetime) -> int:
        s = t.browser_sessions
        with write(self._engine) as conn:
            result = conn.execute(
                update(s)
                .where(self._where(s), s.c.user_id == user_id, s.c.ended_at.is_(None))
                .values(ended_at=now)
            )
            return result.rowcount

    def list_for_user(self, user_id: str, now: datetime) -> list[BrowserSession]:
        s = t.browser_sessions
        with read(self._engine) as conn:
            rows = conn.execute(
                select(s)
                .where(
                    self._where(s),
                    s.c.user_id == user_id,
                    s.c.ended_at.is_(None),
                    s.c.expires_at > now,
                )
                .order_by(s.c.auth_time.desc())
            ).all()
        return [_session(r) for r in rows]

    def purge(self, now: datetime) -> int:
        s = t.browser_sessions
        with write(self._engine) as conn:
            return conn.execute(delete(s).where(self._where(s), expired_sessions(now))).rowcount

    def authenticated(
        self, id_hash: str, amr: tuple[str, ...], auth_time: datetime, now: datetime
    ) -> bool:
        s = t.browser_sessions
        with write(self._engine) as conn:
            result = conn.execute(
                update(s)
                .where(
                    self._where(s),
                    s.c.id_hash == id_hash,
                    s.c.ended_at.is_(None),
                    s.c.expires_at > now,
                )
                .values(amr=_amr_text(amr), auth_time=auth_time)
            )
            return result.rowcount == 1


# --- consents ----------------------------------------------------------------------------------


def _consent(row: _Row) -> Consent:
    return _from_row(Consent, row)


class _Consents(_Part):
    def get(self, user_id: str, client_id: str) -> Consent | None:
        row = self._find(t.consents, user_id=user_id, client_id=client_id)
        return _consent(row) if row else None

    def put(self, consent: Consent) -> None:
        c = t.consents
        with write(self._engine) as conn:
            conn.execute(
                delete(c).where(
                    self._where(c),
                    c.c.user_id == consent.user_id,
                    c.c.client_id == consent.client_id,
                )
            )
            conn.execute(insert(c).values(domain_id=self._domain, **_to_row(consent)))

    def revoke(self, user_id: str, client_id: str, now: datetime) -> bool:
        c = t.consents
        with write(self._engine) as conn:
            result = conn.execute(
                update(c)
                .where(
                    self._where(c),
                    c.c.user_id == user_id,
                    c.c.client_id == client_id,
                    c.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            return result.rowcount == 1

    def list_for_user(self, user_id: str) -> list[Consent]:
        c = t.consents
        with read(self._engine) as conn:
            rows = conn.execute(
                select(c)
                .where(self._where(c), c.c.user_id == user_id, c.c.revoked_at.is_(None))
                .order_by(c.c.granted_at.desc())
            ).all()
        return [_consent(r) for r in rows]


# --- codes -------------------------------------------------------------------------------------

_C = t.authorization_codes
_CONSUME_CODE = _mark_once(_C, "code_hash", "consumed_at", unexpired=True).returning(*_C.c)


def _code(row: _Row) -> AuthorizationCode:
    return _from_row(AuthorizationCode, row, amr=_amr(row))


def _consume_code(
    tx: FastTx, domain: str, code_hash: str, now: datetime
) -> tuple[AuthorizationCode | None, bool]:
    """The atomic use-once write: one conditional UPDATE names the one winner (and returns
    the code it burned); a loser reads the code as it is, to tell a replay."""
    row = tx.first(_CONSUME_CODE, {"w_domain": domain, "w_code_hash": code_hash, "now": now})
    if row is not None:
        return _code(row), True
    row = tx.first(_lookup(_C, "code_hash"), {"domain_id": domain, "code_hash": code_hash})
    return (_code(row) if row else None), False


class _Codes(_Part):
    def add(self, code: AuthorizationCode) -> None:
        self._add(_C, _to_row(code, amr=_amr_text(code.amr)))

    def consume(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        with fast_transaction(self._engine) as tx:
            return _consume_code(tx, self._domain, code_hash, now)

    def burn_for_user(self, user_id: str, now: datetime) -> int:
        with write(self._engine) as conn:
            return conn.execute(
                update(_C)
                .where(self._where(_C), _C.c.user_id == user_id, _C.c.consumed_at.is_(None))
                .values(consumed_at=now)
            ).rowcount

    def purge(self, now: datetime) -> int:
        with write(self._engine) as conn:
            return conn.execute(delete(_C).where(self._where(_C), expired_codes(now))).rowcount


# --- grants and refresh tokens -----------------------------------------------------------------

_G, _R, _EV = t.grants, t.refresh_tokens, t.revocation_events
_REVOKE_GRANT = _mark_once(_G, "grant_id", "revoked_at")
_APPEND_EVENT = insert(_EV).returning(_EV.c.seq)
_EVENT_KEYS = ("domain_id", "kind", "key", "not_before", "expires_at", "created_at")
# A new grant, revoked already if a replayed code revoked it before it was written.
_INSERT_GRANT = insert(_G).values(
    revoked_at=func.coalesce(
        bindparam("given_revoked_at", type_=_G.c.revoked_at.type),
        select(func.min(_EV.c.created_at))
        .where(
            _EV.c.domain_id == bindparam("ev_domain"),
            _EV.c.kind == RevocationKind.GRANT.value,
            _EV.c.key == bindparam("ev_key"),
        )
        .scalar_subquery(),
    )
)
_GRANT_KEYS = tuple(c.key for c in _G.c if c.key != "revoked_at")
# A refresh token with its grant: one read for the rotation's checks.
_TOKEN_AND_GRANT = (
    select(
        _R,
        *(c.label(f"g_{c.key}") for c in _G.c if c.key != "domain_id"),
    )
    .join_from(_R, _G, (_G.c.domain_id == _R.c.domain_id) & (_G.c.grant_id == _R.c.grant_id))
    .where(_R.c.domain_id == bindparam("domain_id"), _R.c.token_hash == bindparam("token_hash"))
)
_USE_TOKEN = _mark_once(
    _R, "token_hash", "used_at", unexpired=True, successor_hash=bindparam("successor")
)


# The usual rotation in one statement: burn the token if it is unused and unexpired and its
# grant is this client's, live and unexpired; the token row comes back.
_ROTATE_FOR_CLIENT = _mark_once(
    _R,
    "token_hash",
    "used_at",
    _R.c.grant_id.in_(
        select(_G.c.grant_id).where(
            _G.c.domain_id == bindparam("w_domain"),
            _G.c.client_id == bindparam("w_client"),
            _G.c.revoked_at.is_(None),
            _G.c.absolute_expiry > bindparam("now"),
        )
    ),
    unexpired=True,
    successor_hash=bindparam("successor"),
).returning(*_R.c)


def _grant(row: _Row) -> Grant:
    return _from_row(Grant, row, amr=_amr(row))


def _refresh(row: _Row) -> RefreshToken:
    return _from_row(RefreshToken, row)


def _refresh_values(token: RefreshToken) -> dict[str, Any]:
    return _to_row(token)


def _lock_revocations(tx: FastTx) -> None:
    """Serialise revocation writes on PostgreSQL (SQLite writers are serial already).

    Sequence numbers then become visible in order (a follower reading `seq > n` never sees n+2
    before n+1), and a grant revoked while its code redemption is still writing it is seen.
    """
    if tx.dialect_name == "postgresql":
        tx.sql("SELECT pg_advisory_xact_lock(7462119)")


def _append_event(
    tx: FastTx,
    domain: str,
    kind: RevocationKind,
    key: str,
    not_before: datetime,
    expires_at: datetime,
    now: datetime,
) -> int:
    _lock_revocations(tx)
    values = {
        "domain_id": domain,
        "kind": kind.value,
        "key": key,
        "not_before": not_before,
        "expires_at": expires_at,
        "created_at": now,
    }
    row = tx.first(_APPEND_EVENT, values, _EVENT_KEYS)
    assert row is not None
    return int(row["seq"])


def _revoke_grant(
    tx: FastTx, domain: str, grant_id: str, now: datetime, event_expires_at: datetime
) -> bool:
    _lock_revocations(tx)  # serialise with GrantStore.start: the grant may be in flight
    revoked = tx.run(_REVOKE_GRANT, {"w_domain": domain, "w_grant_id": grant_id, "now": now}) == 1
    _append_event(tx, domain, RevocationKind.GRANT, grant_id, now, event_expires_at, now)
    return revoked


_SUBJECT_CUT_OFF = (
    select(_EV.c.seq)
    .where(
        _EV.c.domain_id == bindparam("domain_id"),
        _EV.c.kind == RevocationKind.SUBJECT.value,
        _EV.c.key == bindparam("key"),
        _EV.c.not_before > bindparam("issued_at", type_=_EV.c.not_before.type),
    )
    .limit(1)
)


def _cut_off_after(tx: FastTx, domain: str, subject: str, issued_at: datetime) -> bool:
    """A SUBJECT revocation of `subject` came after `issued_at`."""
    values = {"domain_id": domain, "key": subject, "issued_at": issued_at}
    return tx.first(_SUBJECT_CUT_OFF, values) is not None


def _start_grant(tx: FastTx, domain: str, grant: Grant, refresh_token: RefreshToken | None) -> None:
    _lock_revocations(tx)
    # A replayed code may have revoked this grant before we could write it (the insert reads
    # the revocation events after the lock is taken).
    values = {
        "domain_id": domain,
        **_to_row(grant, amr=_amr_text(grant.amr)),
        "given_revoked_at": grant.revoked_at,
        "ev_domain": domain,
        "ev_key": grant.grant_id,
    }
    tx.run(_INSERT_GRANT, values, keys=_GRANT_KEYS)
    if refresh_token is not None:
        _fast_insert(tx, _R, {"domain_id": domain, **_refresh_values(refresh_token)})


class _Grants(_Part):
    def start(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        with fast_transaction(self._engine) as tx:
            _start_grant(tx, self._domain, grant, refresh_token)

    def get(self, grant_id: str) -> Grant | None:
        row = self._find(_G, grant_id=grant_id)
        return _grant(row) if row else None

    def revoke(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        with fast_transaction(self._engine) as tx:
            revoked = _revoke_grant(tx, self._domain, grant_id, now, event_expires_at)
        self._revoked()
        return revoked

    def list_active(
        self, now: datetime, *, user_id: str | None = None, client_id: str | None = None
    ) -> list[Grant]:
        g = t.grants
        query = select(g).where(self._where(g), g.c.revoked_at.is_(None), g.c.absolute_expiry > now)
        if user_id is not None:
            query = query.where(g.c.user_id == user_id)
        if client_id is not None:
            query = query.where(g.c.client_id == client_id)
        with read(self._engine) as conn:
            rows = conn.execute(query.order_by(g.c.created_at.desc())).all()
        return [_grant(r) for r in rows]


def _grant_of(row: Mapping[str, Any]) -> Grant:
    """The grant columns of a `_TOKEN_AND_GRANT` row."""
    return _grant({k[2:]: v for k, v in row.items() if k.startswith("g_")})


_SUCCESSOR_FOR_RETRY = {
    False: _lookup(_R, "token_hash"),
    True: _lookup(_R, "token_hash").with_for_update(),
}


class _RefreshTokens(_Part):
    def get(self, token_hash: str) -> RefreshToken | None:
        row = self._find(_R, token_hash=token_hash)
        return _refresh(row) if row else None

    def purge(self, now: datetime) -> int:
        r, g = t.refresh_tokens, t.grants
        dead = select(g.c.grant_id).where(self._where(g), dead_grants(now))
        with write(self._engine) as conn:
            count = conn.execute(
                delete(r).where(self._where(r), expired_refresh_tokens(now, dead))
            ).rowcount
            conn.execute(delete(g).where(self._where(g), g.c.absolute_expiry <= now))
            return count


# --- the unit of work --------------------------------------------------------------------------


class _Bound:
    """A small store bound to one `FastTx` (see `SqlStore.transaction`)."""

    __slots__ = ("_domain", "_tx", "_work")

    def __init__(self, work: _SqlUnitOfWork) -> None:
        self._work = work
        self._tx = work.tx
        self._domain = work.domain


class _TxUsers(_Bound):
    __slots__ = ()

    def get(self, user_id: str) -> User | None:
        row = self._tx.first(_lookup(t.users, "id"), {"domain_id": self._domain, "id": user_id})
        return _user(row) if row else None


class _TxCodes(_Bound):
    __slots__ = ()

    def consume(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        return _consume_code(self._tx, self._domain, code_hash, now)


class _TxGrants(_Bound):
    __slots__ = ()

    def start(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        _start_grant(self._tx, self._domain, grant, refresh_token)

    def get(self, grant_id: str) -> Grant | None:
        values = {"domain_id": self._domain, "grant_id": grant_id}
        row = self._tx.first(_lookup(_G, "grant_id"), values)
        return _grant(row) if row else None

    def revoke(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        self._work.revoked = True
        return _revoke_grant(self._tx, self._domain, grant_id, now, event_expires_at)


class _TxRefreshTokens(_Bound):
    __slots__ = ()

    def get(self, token_hash: str) -> RefreshToken | None:
        values = {"domain_id": self._domain, "token_hash": token_hash}
        row = self._tx.first(_lookup(_R, "token_hash"), values)
        return _refresh(row) if row else None

    def use_for_client(
        self, token_hash: str, successor_hash: str, client_id: str, now: datetime
    ) -> tuple[RefreshToken, Grant] | None:
        values = {
            "w_domain": self._domain,
            "w_token_hash": token_hash,
            "w_client": client_id,
            "now": now,
            "successor": successor_hash,
        }
        used = self._tx.first(_ROTATE_FOR_CLIENT, values)
        return None if used is None else (_refresh(used), self._live_grant(used["grant_id"]))

    def _live_grant(self, grant_id: str) -> Grant:
        """The grant the rotation's statement found live a moment ago. Grants never change but
        for their revocation (always read from the database), so they are kept by id."""
        cache = self._work.grant_cache
        grant = cache.get(grant_id)
        if grant is None:
            values = {"domain_id": self._domain, "grant_id": grant_id}
            row = self._tx.first(_lookup(_G, "grant_id"), values)
            assert row is not None
            grant = replace(_grant(row), revoked_at=None)
            if len(cache) >= 10000:
                cache.clear()
            cache[grant_id] = grant
        return grant

    def use(self, token_hash: str, successor_hash: str, now: datetime) -> bool:
        values = {
            "w_domain": self._domain,
            "w_token_hash": token_hash,
            "now": now,
            "successor": successor_hash,
        }
        return self._tx.run(_USE_TOKEN, values) == 1

    def with_grant(self, token_hash: str) -> tuple[RefreshToken | None, Grant | None]:
        key = {"domain_id": self._domain, "token_hash": token_hash}
        row = self._tx.first(_TOKEN_AND_GRANT, key)
        if row is None:  # unknown, or (never in practice) a token whose grant row is gone
            return self.get(token_hash), None
        return _refresh(row), _grant_of(row)

    def unused(self, token_hash: str) -> bool:
        # Read on PostgreSQL under a row lock, so its use waits for the caller's answer.
        row = self._tx.first(
            _SUCCESSOR_FOR_RETRY[self._tx.dialect_name == "postgresql"],
            {"domain_id": self._domain, "token_hash": token_hash},
        )
        return row is not None and row["used_at"] is None

    def add(self, token: RefreshToken) -> None:
        _fast_insert(self._tx, _R, {"domain_id": self._domain, **_refresh_values(token)})


class _TxRevocations(_Bound):
    __slots__ = ()

    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        self._work.revoked = True
        return _append_event(self._tx, self._domain, kind, key, not_before, expires_at, now)

    def cut_off_after(self, subject: str, issued_at: datetime) -> bool:
        # After the lock: a revocation is either seen here or waits for this unit of work and
        # then sees what it wrote (it lists the user's grants after appending its event).
        _lock_revocations(self._tx)
        return _cut_off_after(self._tx, self._domain, subject, issued_at)


class _SqlUnitOfWork:
    """`UnitOfWork` on one `fast_transaction`: the hot path's statements, one BEGIN/COMMIT."""

    def __init__(self, tx: FastTx, domain: str, grant_cache: dict[str, Grant]) -> None:
        self.tx = tx
        self.domain = domain
        self.grant_cache = grant_cache
        self.revoked = False  # a revocation was written: wake the feed after the commit
        self.users: TxUsers = _TxUsers(self)
        self.codes: TxCodes = _TxCodes(self)
        self.grants: TxGrants = _TxGrants(self)
        self.refresh_tokens: TxRefreshTokens = _TxRefreshTokens(self)
        self.revocations: TxRevocations = _TxRevocations(self)
        self.device_authorizations: TxDeviceAuthorizations = _TxDeviceAuthorizations(self)


# --- revocation events -------------------------------------------------------------------------


def _event(row: Row[Any]) -> RevocationEvent:
    return _from_row(RevocationEvent, row, kind=RevocationKind(row.kind))


class _LastSeq:
    """The newest revocation sequence number of a domain, asked on every introspection: one
    plain query on a connection kept for it (one per node, shared by every domain), without the
    pool checkout and transaction bookkeeping of the Core path."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._hot: Any = None
        self._hot_lock = threading.Lock()
        self._async_hot: psycopg.AsyncConnection[Any] | None = None
        self._async_cursor: Any = None
        self._async_lock: asyncio.Lock | None = None
        self._async_started = 0  # queries started on the asynchronous connection
        # Per domain: (the query's number, its answer) of the last to finish.
        self._async_done: dict[str, tuple[int, int]] = {}
        self._last_seq_sql = (
            "SELECT max(seq) FROM revocation_events WHERE domain_id = ?"
            if engine.dialect.paramstyle == "qmark"
            else "SELECT max(seq) FROM revocation_events WHERE domain_id = %s"
        )

    def last_seq(self, domain: str) -> int:
        with self._hot_lock:
            try:
                if self._hot is None:
                    hot = self._engine.raw_connection()
                    driver: Any = hot.driver_connection
                    hot.detach()  # ours alone, never returned to the pool
                    if self._engine.dialect.name == "postgresql":
                        driver.rollback()
                        driver.autocommit = True
                    else:
                        # A WAL reader never waits for writers; should it ever wait, it waits
                        # briefly (`last_seq_async` runs it on the event loop).
                        driver.execute("PRAGMA busy_timeout=200")
                    self._hot = hot
                cursor = self._hot.cursor()
                try:
                    cursor.execute(self._last_seq_sql, (domain,))
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except Exception as exc:
                if self._hot is not None:
                    with contextlib.suppress(Exception):
                        self._hot.invalidate()
                self._hot = None
                raise StoreUnavailable(f"revocation events: {type(exc).__name__}") from exc
        return int(row[0] or 0) if row else 0

    async def last_seq_async(self, domain: str) -> int:
        """`last_seq` without blocking the event loop: SQLite's is a local read of a few
        microseconds, run in place; PostgreSQL's goes over an asynchronous connection."""
        if self._engine.dialect.name != "postgresql":
            return self.last_seq(domain)
        import psycopg  # only on PostgreSQL

        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        arrived_after = self._async_started
        async with self._async_lock:  # one query at a time on the connection
            done = self._async_done.get(domain)
            if done is not None and done[0] > arrived_after:
                # A query for this domain that started after this call arrived has just
                # answered: its answer is as fresh as one of our own (concurrent
                # introspections share it).
                return done[1]
            self._async_started += 1
            generation = self._async_started
            try:
                async with asyncio.timeout(5):
                    if self._async_hot is None or self._async_hot.closed:
                        url = self._engine.url.set(drivername="postgresql")
                        self._async_hot = await psycopg.AsyncConnection.connect(
                            url.render_as_string(hide_password=False),
                            autocommit=True,
                            connect_timeout=5,
                        )
                        self._async_cursor = self._async_hot.cursor()
                    cursor = self._async_cursor
                    await cursor.execute(self._last_seq_sql, (domain,))
                    row = await cursor.fetchone()
            except (psycopg.Error, TimeoutError) as exc:
                if self._async_hot is not None:
                    with contextlib.suppress(Exception):
                        await self._async_hot.close()
                self._async_hot = None
                raise StoreUnavailable(f"revocation events: {type(exc).__name__}") from exc
            answer = int(row[0] or 0) if row else 0
            if len(self._async_done) > 4096:  # bounded, whatever the number of domains
                self._async_done.clear()
            self._async_done[domain] = (generation, answer)
            return answer

    def close(self) -> None:
        """Close the connections kept for `last_seq` (the asynchronous one with its loop)."""
        with self._hot_lock:
            if self._hot is not None:
                with contextlib.suppress(Exception):
                    self._hot.close()
                self._hot = None


class _Revocations(_Part):
    def __init__(
        self,
        engine: Engine,
        domain_id: str,
        listeners: list[Callable[[str], None]] | None,
        reader: _LastSeq,
    ) -> None:
        super().__init__(engine, domain_id, listeners)
        self._reader = reader

    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        with fast_transaction(self._engine) as tx:
            seq = _append_event(tx, self._domain, kind, key, not_before, expires_at, now)
        self._revoked()
        return seq

    def since(self, seq: int, limit: int = 1000) -> list[RevocationEvent]:
        e = t.revocation_events
        with read(self._engine) as conn:
            rows = conn.execute(
                select(e).where(self._where(e), e.c.seq > seq).order_by(e.c.seq).limit(limit)
            ).all()
        return [_event(r) for r in rows]

    def last_seq(self) -> int:
        return self._reader.last_seq(self._domain)

    async def last_seq_async(self) -> int:
        return await self._reader.last_seq_async(self._domain)

    def purge(self, now: datetime) -> int:
        e = t.revocation_events
        with write(self._engine) as conn:
            return conn.execute(delete(e).where(self._where(e), expired_events(now))).rowcount


# --- login throttle ----------------------------------------------------------------------------


_F = t.login_failures
_CLEAR_FAILURES = delete(_F).where(
    _F.c.domain_id == bindparam("domain_id"), _F.c.key == bindparam("key")
)


@functools.cache
def _recent_failures(keys: int) -> Any:
    """Failures per key since a time and the latest, for `keys` keys (bound as k0, k1, …)."""
    return (
        select(_F.c.key, func.count().label("failures"), func.max(_F.c.at).label("last"))
        .where(
            _F.c.domain_id == bindparam("domain_id"),
            _F.c.key.in_([bindparam(f"k{i}") for i in range(keys)]),
            _F.c.at >= bindparam("since"),
        )
        .group_by(_F.c.key)
    )


class _LoginThrottle(_Part):
    def failures(self, key: str, since: datetime) -> int:
        f = t.login_failures
        with read(self._engine) as conn:
            value = conn.execute(
                select(func.count())
                .select_from(f)
                .where(self._where(f), f.c.key == key, f.c.at >= since)
            ).scalar()
        return int(value or 0)

    def recent(self, keys: Sequence[str], since: datetime) -> dict[str, Failures]:
        out = dict.fromkeys(keys, Failures(0, None))
        values = {f"k{i}": key for i, key in enumerate(keys)}
        with fast_statement(self._engine) as tx:
            rows = tx.all(
                _recent_failures(len(keys)), {"domain_id": self._domain, "since": since, **values}
            )
        out.update({row["key"]: Failures(int(row["failures"]), row["last"]) for row in rows})
        return out

    def record_failure(self, key: str, now: datetime) -> None:
        self._add(t.login_failures, {"key": key, "at": now})

    def clear(self, key: str) -> None:
        with fast_statement(self._engine) as tx:
            tx.run(_CLEAR_FAILURES, {"domain_id": self._domain, "key": key})

    def purge(self, before: datetime) -> int:
        f = t.login_failures
        with write(self._engine) as conn:
            return conn.execute(delete(f).where(self._where(f), expired_failures(before))).rowcount


# --- audit -------------------------------------------------------------------------------------


def _audit(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        type=row.type,
        at=row.at,
        actor=row.actor,
        user_id=row.user_id,
        client_id=row.client_id,
        ip=row.ip,
        details=dict(row.details),
    )


class _Audit(_Part):
    def append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        rows = [
            {
                "domain_id": self._domain,
                "type": e.type,
                "at": e.at,
                "actor": e.actor,
                "user_id": e.user_id,
                "client_id": e.client_id,
                "ip": e.ip,
                "details": e.details,
            }
            for e in events
        ]
        with fast_transaction(self._engine) as tx:
            tx.run_many(_insert(t.audit_events), rows, keys=tuple(rows[0]))

    def query(
        self,
        *,
        type: str | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        a = t.audit_events
        query = select(a).where(self._where(a))
        if type is not None:
            query = query.where(a.c.type == type)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        if client_id is not None:
            query = query.where(a.c.client_id == client_id)
        if since is not None:
            query = query.where(a.c.at >= since)
        if until is not None:
            query = query.where(a.c.at < until)
        if before_id is not None:
            query = query.where(a.c.id < before_id)
        with read(self._engine) as conn:
            rows = conn.execute(query.order_by(a.c.id.desc()).limit(limit)).all()
        return [_audit(r) for r in rows]


# --- second factors and use-once values --------------------------------------------------------

_PK, _TOTP, _RC, _N = t.passkeys, t.totp_factors, t.recovery_codes, t.used_nonces


def _passkey(row: _Row) -> Passkey:
    return _from_row(Passkey, row, public_key=bytes(_column(row, "public_key")))


def _totp(row: _Row) -> TotpFactor:
    return _from_row(TotpFactor, row, secret_sealed=bytes(_column(row, "secret_sealed")))


def _dialect_insert(dialect: str, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT (both dialects spell it alike). Each dialect's module
    is imported on first use: loading PostgreSQL's (and its asyncpg driver module) costs a SQLite
    command-line run a twentieth of its start-up."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


@functools.cache
def _put_totp(dialect: str) -> Any:
    """Insert a factor, or replace the user's if it is unconfirmed: one statement, whose row
    count is 0 over a confirmed factor."""
    statement = _dialect_insert(dialect, _TOTP)
    return statement.on_conflict_do_update(
        index_elements=[_TOTP.c.domain_id, _TOTP.c.user_id],
        set_={c.key: statement.excluded[c.key] for c in _TOTP.c if not c.primary_key},
        where=_TOTP.c.confirmed_at.is_(None),
    )


@functools.cache
def _use_nonce(dialect: str) -> Any:
    """Record a value, or take over its row if it has expired: one statement, whose row count
    is 0 while the value is recorded and unexpired (of two concurrent uses, one wins)."""
    statement = _dialect_insert(dialect, _N)
    return statement.on_conflict_do_update(
        index_elements=[_N.c.domain_id, _N.c.key],
        set_={"expires_at": statement.excluded.expires_at},
        where=_N.c.expires_at <= bindparam("now"),
    )


_NONCE_KEYS = ("domain_id", "key", "expires_at")


def _remove_factors(conn: Connection, domain: str, user_id: str) -> int:
    """Delete every factor of the user (in the caller's transaction); how many rows."""
    return sum(
        int(
            conn.execute(
                delete(table).where(table.c.domain_id == domain, table.c.user_id == user_id)
            ).rowcount
        )
        for table in (_PK, _TOTP, _RC)
    )


class _Factors(_Part):
    """`FactorStore`: every "use once" step is one conditional UPDATE; its row count names the
    one winner (PostgreSQL re-checks the condition on the row a concurrent writer committed)."""

    def _changed(self, table: Table, values: dict[str, Any], *where: Any) -> bool:
        with write(self._engine) as conn:
            result = conn.execute(update(table).where(self._where(table), *where).values(values))
            return result.rowcount == 1

    def _deleted(self, table: Table, *where: Any) -> bool:
        with write(self._engine) as conn:
            return conn.execute(delete(table).where(self._where(table), *where)).rowcount == 1

    def _all(self, table: Table, user_id: str, *order: Any) -> list[Row[Any]]:
        with read(self._engine) as conn:
            query = select(table).where(self._where(table), table.c.user_id == user_id)
            return list(conn.execute(query.order_by(*order)).all())

    def add_passkey(self, passkey: Passkey) -> None:
        self._add(_PK, _to_row(passkey))

    def passkey(self, credential_id: str) -> Passkey | None:
        row = self._find(_PK, credential_id=credential_id)
        return _passkey(row) if row else None

    def passkeys_for(self, user_id: str) -> list[Passkey]:
        rows = self._all(_PK, user_id, _PK.c.created_at, _PK.c.credential_id)
        return [_passkey(r) for r in rows]

    def use_passkey(
        self, credential_id: str, seen_count: int, new_count: int, now: datetime
    ) -> bool:
        return self._changed(
            _PK,
            {"sign_count": new_count, "last_used_at": now},
            _PK.c.credential_id == credential_id,
            _PK.c.sign_count == seen_count,
        )

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        return self._changed(
            _PK, {"name": name}, _PK.c.user_id == user_id, _PK.c.credential_id == credential_id
        )

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        return self._deleted(_PK, _PK.c.user_id == user_id, _PK.c.credential_id == credential_id)

    def totp(self, user_id: str) -> TotpFactor | None:
        row = self._find(_TOTP, user_id=user_id)
        return _totp(row) if row else None

    def put_totp(self, factor: TotpFactor) -> None:
        values = {"domain_id": self._domain, **_to_row(factor)}
        with fast_statement(self._engine) as tx:
            if tx.run(_put_totp(tx.dialect_name), values, keys=tuple(values)) != 1:
                raise Conflict(f"user {factor.user_id} has a confirmed authenticator app")

    def use_totp_step(self, user_id: str, step: int) -> bool:
        # RFC 6238 §5.2: a code is accepted once; a later step moves the mark forward.
        return self._changed(
            _TOTP,
            {"last_step": step},
            _TOTP.c.user_id == user_id,
            _TOTP.c.confirmed_at.is_not(None),
            _TOTP.c.last_step < step,
        )

    def remove_totp(self, user_id: str) -> bool:
        return self._deleted(_TOTP, _TOTP.c.user_id == user_id)

    def replace_recovery_codes(self, user_id: str, hashes: Sequence[str], now: datetime) -> None:
        rows = [
            {"domain_id": self._domain, "user_id": user_id, "code_hash": h, "created_at": now}
            for h in hashes
        ]
        with write(self._engine) as conn:
            conn.execute(delete(_RC).where(self._where(_RC), _RC.c.user_id == user_id))
            if rows:
                conn.execute(insert(_RC), rows)

    def use_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        return self._changed(
            _RC,
            {"used_at": now},
            _RC.c.user_id == user_id,
            _RC.c.code_hash == code_hash,
            _RC.c.used_at.is_(None),
        )

    def recovery_codes(self, user_id: str) -> list[RecoveryCode]:
        rows = self._all(_RC, user_id, _RC.c.created_at, _RC.c.code_hash)
        return [_from_row(RecoveryCode, r) for r in rows]

    def remove_all(self, user_id: str) -> int:
        with write(self._engine) as conn:
            return _remove_factors(conn, self._domain, user_id)


class _Nonces(_Part):
    def use_once(self, key: str, expires_at: datetime, now: datetime) -> bool:
        if len(key) > t.NONCE_KEY_LENGTH:
            raise ValueError(f"a use-once key is at most {t.NONCE_KEY_LENGTH} characters")
        values = {"domain_id": self._domain, "key": key, "expires_at": expires_at, "now": now}
        with fast_statement(self._engine) as tx:
            return tx.run(_use_nonce(tx.dialect_name), values, keys=_NONCE_KEYS) == 1

    def purge(self, now: datetime) -> int:
        with write(self._engine) as conn:
            return conn.execute(delete(_N).where(self._where(_N), expired_nonces(now))).rowcount


# --- pushed requests and registration tokens ---------------------------------------------------

_PR, _RT = t.pushed_requests, t.registration_tokens
# RFC 9126 §4: once, only by the client that pushed it, before it expires: one conditional
# UPDATE whose returned row names the one winner; another client's attempt changes nothing.
_TAKE_PUSHED = _mark_once(
    _PR, "uri_hash", "used_at", _PR.c.client_id == bindparam("w_client"), unexpired=True
).returning(*_PR.c)
# RFC 7591 §3: one use, counted only while the token is usable (`RegistrationToken.usable`);
# concurrent uses re-check the condition on the row a concurrent writer committed (PostgreSQL)
# or wait for its transaction (SQLite), so they never count past `max_uses`.
_USE_REGISTRATION_TOKEN = (
    update(_RT)
    .where(
        _RT.c.domain_id == bindparam("w_domain"),
        _RT.c.token_hash == bindparam("w_hash"),
        _RT.c.revoked_at.is_(None),
        _RT.c.expires_at.is_(None) | (_RT.c.expires_at > bindparam("now")),
        _RT.c.max_uses.is_(None) | (_RT.c.uses < _RT.c.max_uses),
    )
    .values(uses=_RT.c.uses + 1)
    .returning(*_RT.c)
)


def _pushed_request(row: _Row) -> PushedRequest:
    params = tuple((str(name), str(value)) for name, value in _column(row, "params"))
    return _from_row(PushedRequest, row, params=params)


def _registration_token(row: _Row) -> RegistrationToken:
    return _from_row(RegistrationToken, row)


class _PushedRequests(_Part):
    def add(self, request: PushedRequest) -> None:
        self._add(_PR, _to_row(request, params=[list(p) for p in request.params]))

    def take(self, uri_hash: str, client_id: str, now: datetime) -> PushedRequest | None:
        values = {"w_domain": self._domain, "w_uri_hash": uri_hash, "w_client": client_id}
        with fast_transaction(self._engine) as tx:
            row = tx.first(_TAKE_PUSHED, {**values, "now": now})
        return _pushed_request(row) if row else None

    def purge(self, now: datetime) -> int:
        with write(self._engine) as conn:
            where = expired_pushed_requests(now)
            return conn.execute(delete(_PR).where(self._where(_PR), where)).rowcount


class _RegistrationTokens(_Part):
    def add(self, token: RegistrationToken) -> None:
        with write(self._engine) as conn:
            conn.execute(insert(_RT).values(domain_id=self._domain, **_to_row(token)))

    def get(self, token_id: str) -> RegistrationToken | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_RT).where(self._where(_RT), _RT.c.id == token_id)).first()
        return _registration_token(row) if row else None

    def find(self, token_hash: str) -> RegistrationToken | None:
        # uq_registration_tokens_hash (domain_id, token_hash) is the index.
        with read(self._engine) as conn:
            row = conn.execute(
                select(_RT).where(self._where(_RT), _RT.c.token_hash == token_hash)
            ).first()
        return _registration_token(row) if row else None

    def list(self) -> list[RegistrationToken]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_RT)
                .where(self._where(_RT))
                .order_by(_RT.c.created_at.desc(), _RT.c.id.desc())
            ).all()
        return [_registration_token(r) for r in rows]

    def use(self, token_hash: str, now: datetime) -> RegistrationToken | None:
        values = {"w_domain": self._domain, "w_hash": token_hash, "now": now}
        with fast_transaction(self._engine) as tx:
            row = tx.first(_USE_REGISTRATION_TOKEN, values)
        return _registration_token(row) if row else None

    def revoke(self, token_id: str, now: datetime) -> None:
        where = (self._where(_RT), _RT.c.id == token_id)
        with write(self._engine) as conn:
            # Revoking twice keeps the first time.
            first = update(_RT).where(*where, _RT.c.revoked_at.is_(None)).values(revoked_at=now)
            if conn.execute(first).rowcount == 1:
                return
            if conn.execute(select(_RT.c.id).where(*where)).first() is None:
                raise NotFound(f"no registration token {token_id}")

    def purge(self, now: datetime) -> int:
        with write(self._engine) as conn:
            where = expired_registration_tokens(now)
            return conn.execute(delete(_RT).where(self._where(_RT), where)).rowcount


# --- trusted assertion issuers (RFC 7523 §2.1) ---------------------------------------------------

_TI = t.trusted_issuers


class _TrustedIssuers(_Part):
    def add(self, issuer: TrustedIssuer) -> None:
        with write(self._engine) as conn:  # uq_trusted_issuers_issuer: Conflict
            conn.execute(insert(_TI).values(domain_id=self._domain, **_to_row(issuer)))

    def get(self, issuer_id: str) -> TrustedIssuer | None:
        row = self._find(_TI, id=issuer_id)
        return _from_row(TrustedIssuer, row) if row else None

    def find(self, issuer: str) -> TrustedIssuer | None:
        row = self._find(_TI, issuer=issuer)  # uq_trusted_issuers_issuer is the index
        return _from_row(TrustedIssuer, row) if row else None

    def list(self) -> list[TrustedIssuer]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_TI).where(self._where(_TI)).order_by(_TI.c.issuer, _TI.c.id)
            ).all()
        return [_from_row(TrustedIssuer, r) for r in rows]

    def update(self, issuer: TrustedIssuer) -> None:
        values = _to_row(issuer)
        del values["id"]
        with write(self._engine) as conn:
            where = (self._where(_TI), _TI.c.id == issuer.id)
            if conn.execute(update(_TI).where(*where).values(**values)).rowcount != 1:
                raise NotFound(f"no trusted issuer {issuer.id}")

    def delete(self, issuer_id: str) -> None:
        with write(self._engine) as conn:
            where = (self._where(_TI), _TI.c.id == issuer_id)
            if conn.execute(delete(_TI).where(*where)).rowcount != 1:
                raise NotFound(f"no trusted issuer {issuer_id}")


# --- federation: upstream providers and linked identities (docs/federation.md) ----------------

_UP, _FI = t.upstream_providers, t.federated_identities


def _provider(row: _Row) -> UpstreamProvider:
    secret, key = _column(row, "secret_sealed"), _column(row, "private_key_sealed")
    return _from_row(
        UpstreamProvider,
        row,
        secret_sealed=None if secret is None else bytes(secret),
        private_key_sealed=None if key is None else bytes(key),
    )


def _provider_values(provider: UpstreamProvider) -> dict[str, Any]:
    # Case-insensitive uniqueness as for groups: `uq_upstream_providers_name` on `name_lower`.
    return _to_row(provider, name_lower=provider.name.casefold())


def hold_providers(conn: Connection, domain_id: str) -> None:
    """Serialise the writes of a domain's providers on PostgreSQL until the commit (SQLite
    writers are serial already), so two providers written at once cannot both take one e-mail
    domain: that rule spans rows, which no index of the JSON column can hold."""
    if conn.dialect.name == "postgresql":  # the two-key lock: 7462120, then the domain's
        conn.execute(_HOLD_PROVIDERS, {"domain": domain_id})


_HOLD_PROVIDERS = text("SELECT pg_advisory_xact_lock(7462120, hashtext(:domain))")


class _UpstreamProviders(_Part):
    def _check_email_domains(self, conn: Connection, provider: UpstreamProvider) -> None:
        if provider.email_domains:
            rows = conn.execute(select(_UP).where(self._where(_UP))).all()
            EmailDomainTaken.check(provider, (_provider(r) for r in rows))

    def add(self, provider: UpstreamProvider) -> None:
        with write(self._engine) as conn:  # the primary key, uq_upstream_providers_name: Conflict
            hold_providers(conn, self._domain)
            self._check_email_domains(conn, provider)
            conn.execute(insert(_UP).values(domain_id=self._domain, **_provider_values(provider)))

    def get(self, provider_id: str) -> UpstreamProvider | None:
        row = self._find(_UP, id=provider_id)
        return _provider(row) if row else None

    def get_by_name(self, name: str) -> UpstreamProvider | None:
        row = self._find(_UP, name_lower=name.casefold())  # uq_upstream_providers_name's index
        return _provider(row) if row else None

    def list(self) -> list[UpstreamProvider]:
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_UP).where(self._where(_UP)).order_by(_UP.c.name_lower, _UP.c.id)
            ).all()
        return [_provider(r) for r in rows]

    def update(self, provider: UpstreamProvider) -> None:
        values = {**_provider_values(provider), "version": _UP.c.version + 1}
        del values["id"]
        with write(self._engine) as conn:
            hold_providers(conn, self._domain)
            self._check_email_domains(conn, provider)
            where = (self._where(_UP), _UP.c.id == provider.id)
            if conn.execute(update(_UP).where(*where).values(**values)).rowcount != 1:
                raise NotFound(f"no provider {provider.id}")

    def delete(self, provider_id: str) -> None:
        with write(self._engine) as conn:
            where = (self._where(_UP), _UP.c.id == provider_id)
            if conn.execute(delete(_UP).where(*where)).rowcount != 1:
                raise NotFound(f"no provider {provider_id}")
            conn.execute(delete(_FI).where(self._where(_FI), _FI.c.provider_id == provider_id))
            # The memberships its sign-ins made become ordinary ones.
            made = t.group_members
            conn.execute(
                update(made)
                .where(made.c.domain_id == self._domain, made.c.provider_id == provider_id)
                .values(provider_id=None)
            )


class _FederatedIdentities(_Part):
    def get(self, provider_id: str, subject: str) -> FederatedIdentity | None:
        row = self._find(_FI, provider_id=provider_id, subject=subject)
        return _from_row(FederatedIdentity, row) if row else None

    def list_for_user(self, user_id: str) -> list[FederatedIdentity]:
        order = (_FI.c.created_at, _FI.c.provider_id, _FI.c.subject)
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_FI).where(self._where(_FI), _FI.c.user_id == user_id).order_by(*order)
            ).all()
        return [_from_row(FederatedIdentity, r) for r in rows]

    def count_for_provider(self, provider_id: str) -> int:
        with read(self._engine) as conn:
            query = (
                select(func.count())
                .select_from(_FI)
                .where(self._where(_FI), _FI.c.provider_id == provider_id)
            )
            return int(conn.execute(query).scalar_one())

    def link(self, identity: FederatedIdentity) -> None:
        with write(self._engine) as conn:
            hold_rows(conn, self._domain, t.users, [identity.user_id], "user")
            hold_rows(conn, self._domain, _UP, [identity.provider_id], "provider")
            # The primary key: Conflict when the upstream account is linked already.
            conn.execute(insert(_FI).values(domain_id=self._domain, **_to_row(identity)))

    def create_user(
        self, user: User, identity: FederatedIdentity, group_ids: Sequence[str] = ()
    ) -> None:
        if identity.user_id != user.id:
            raise ValueError("the identity must name the new user")
        # One transaction: any refusal (Conflict, NotFound) rolls back what came before it.
        with write(self._engine) as conn:
            hold_rows(conn, self._domain, _UP, [identity.provider_id], "provider")
            hold_rows(conn, self._domain, t.groups, group_ids, "group")
            # The primary key and uq_users_username: Conflict.
            conn.execute(insert(t.users).values(domain_id=self._domain, **_user_values(user)))
            conn.execute(insert(_FI).values(domain_id=self._domain, **_to_row(identity)))
            insert_provider_memberships(
                conn, self._domain, user.id, group_ids, identity.provider_id, user.created_at
            )

    def touch(self, provider_id: str, subject: str, email: str | None, now: datetime) -> None:
        where = (self._where(_FI), _FI.c.provider_id == provider_id, _FI.c.subject == subject)
        with write(self._engine) as conn:  # unlinked meanwhile: no row, nothing to record
            conn.execute(update(_FI).where(*where).values(email=email, last_used_at=now))

    def unlink(self, provider_id: str, subject: str) -> None:
        where = (self._where(_FI), _FI.c.provider_id == provider_id, _FI.c.subject == subject)
        with write(self._engine) as conn:
            if conn.execute(delete(_FI).where(*where)).rowcount != 1:
                raise NotFound("no such linked identity")


# --- device authorization (RFC 8628) -----------------------------------------------------------

_DA = t.device_authorizations
# §3.5: an approved request yields tokens once, to its app, before it expires: one conditional
# UPDATE whose returned row names the one winner.
_REDEEM_DEVICE = _mark_once(
    _DA,
    "device_code_hash",
    "redeemed_at",
    _DA.c.client_id == bindparam("w_client"),
    _DA.c.status == "approved",
    unexpired=True,
).returning(*_DA.c)
# §3.5 `slow_down`: a poll is recorded only over the poll it read (compare-and-set on `polls`).
_POLL_DEVICE = (
    update(_DA)
    .where(
        _DA.c.domain_id == bindparam("w_domain"),
        _DA.c.device_code_hash == bindparam("w_hash"),
        _DA.c.polls == bindparam("w_polls"),
        _DA.c.status == "pending",
    )
    .values(
        polls=_DA.c.polls + 1,
        interval=bindparam("interval"),
        last_polled_at=bindparam("now"),
    )
)
# §3.3: the user decides once, while the request is pending and live.
_DECIDE_DEVICE = (
    update(_DA)
    .where(
        _DA.c.domain_id == bindparam("w_domain"),
        _DA.c.user_code_hash == bindparam("w_user_code"),
        _DA.c.status == "pending",
        _DA.c.expires_at > bindparam("now"),
    )
    .values(
        status=bindparam("status"),
        user_id=bindparam("user_id"),
        auth_time=bindparam("auth_time"),
        amr=bindparam("amr"),
        session_id=bindparam("session_id"),
        decided_at=bindparam("now"),
    )
)


def _device_authorization(row: _Row) -> DeviceAuthorization:
    return _from_row(DeviceAuthorization, row, amr=_amr(row))


class _DeviceAuthorizations(_Part):
    def add(self, authorization: DeviceAuthorization) -> None:
        self._add(_DA, _to_row(authorization, amr=_amr_text(authorization.amr)))

    def get(self, device_code_hash: str) -> DeviceAuthorization | None:
        row = self._find(_DA, device_code_hash=device_code_hash)
        return _device_authorization(row) if row else None

    def find(self, user_code_hash: str) -> DeviceAuthorization | None:
        row = self._find(_DA, user_code_hash=user_code_hash)
        return _device_authorization(row) if row else None

    def poll(self, device_code_hash: str, seen_polls: int, interval: int, now: datetime) -> bool:
        values = {
            "w_domain": self._domain,
            "w_hash": device_code_hash,
            "w_polls": seen_polls,
            "interval": interval,
            "now": now,
        }
        with fast_statement(self._engine) as tx:
            return tx.run(_POLL_DEVICE, values) == 1

    def decide(self, user_code_hash: str, decided: DeviceAuthorization, now: datetime) -> bool:
        values = {
            "w_domain": self._domain,
            "w_user_code": user_code_hash,
            "now": now,
            "status": decided.status,
            "user_id": decided.user_id,
            "auth_time": decided.auth_time,
            "amr": _amr_text(decided.amr),
            "session_id": decided.session_id,
        }
        with fast_statement(self._engine) as tx:
            return tx.run(_DECIDE_DEVICE, values) == 1

    def purge(self, now: datetime) -> int:
        with write(self._engine) as conn:
            where = expired_device_authorizations(now)
            return conn.execute(delete(_DA).where(self._where(_DA), where)).rowcount


class _TxDeviceAuthorizations(_Bound):
    __slots__ = ()

    def redeem(
        self, device_code_hash: str, client_id: str, now: datetime
    ) -> DeviceAuthorization | None:
        values = {
            "w_domain": self._domain,
            "w_device_code_hash": device_code_hash,
            "w_client": client_id,
            "now": now,
        }
        row = self._tx.first(_REDEEM_DEVICE, values)
        return _device_authorization(row) if row else None


def content_rows(
    domain_id: str, content: DomainContent
) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The rows a new domain starts with (`DomainStore.create`), in insertion order."""
    mine = {"domain_id": domain_id}
    return [
        (t.signing_keys, [{**mine, **_to_row(k)} for k in content.keys]),
        (t.resources, [{**mine, **_to_row(r)} for r in content.resources]),
        (t.clients, [{**mine, **_client_values(c)} for c in content.clients]),
        (t.users, [{**mine, **_user_values(u)} for u in content.users]),
    ]


class _Shared:
    """What every domain's store on one database shares: the engine's listeners, the Redis
    throttle factory, the connection that reads revocation sequence numbers and the domains
    (`for_domain` does no I/O: it binds small objects to the domain's id)."""

    def __init__(self, engine: Engine) -> None:
        self.domains = SqlDomains(engine)
        # Called with the domain's id after a revocation event is committed (set by the web
        # layer and the context: wake-ups).
        self.listeners: list[Callable[[str], None]] = []
        self.last_seq = _LastSeq(engine)
        # Builds a domain's login throttle when it is not the database's (Redis).
        self.throttle_for: Callable[[str], LoginThrottleStore] | None = None


class SqlStore:
    """The `Store` on a SQL database, bound to one domain; `for_domain` binds another."""

    def __init__(
        self, engine: Engine, domain_id: str = _DEFAULT_DOMAIN, shared: _Shared | None = None
    ) -> None:
        self.engine = engine
        self.domain_id = domain_id
        self._shared = shared = shared or _Shared(engine)
        self.revocation_listeners = shared.listeners
        hooks = shared.listeners
        self.users: UserStore = _Users(engine, domain_id)
        self.clients: ClientStore = _Clients(engine, domain_id)
        self.resources: ResourceStore = _Resources(engine, domain_id)
        self.keys: KeyStore = _Keys(engine, domain_id)
        self.sessions: SessionStore = _Sessions(engine, domain_id)
        self.consents: ConsentStore = _Consents(engine, domain_id)
        self.codes: CodeStore = _Codes(engine, domain_id)
        self.grants: GrantStore = _Grants(engine, domain_id, hooks)
        self.refresh_tokens: RefreshTokenStore = _RefreshTokens(engine, domain_id, hooks)
        self._grant_cache: dict[str, Grant] = {}  # see `_TxRefreshTokens._live_grant`
        self.revocations: RevocationStore = _Revocations(engine, domain_id, hooks, shared.last_seq)
        self.login_throttle: LoginThrottleStore = (
            shared.throttle_for(domain_id)
            if shared.throttle_for is not None
            else _LoginThrottle(engine, domain_id)
        )
        self.audit: AuditStore = _Audit(engine, domain_id)
        self.factors: FactorStore = _Factors(engine, domain_id)
        self.nonces: NonceStore = _Nonces(engine, domain_id)
        self.pushed_requests: PushedRequestStore = _PushedRequests(engine, domain_id)
        self.registration_tokens: RegistrationTokenStore = _RegistrationTokens(engine, domain_id)
        self.trusted_issuers: TrustedIssuerStore = _TrustedIssuers(engine, domain_id)
        self.device_authorizations: DeviceAuthorizationStore = _DeviceAuthorizations(
            engine, domain_id
        )
        self.groups: GroupStore = SqlGroups(engine, domain_id)
        self.roles: RoleStore = SqlRoles(engine, domain_id)
        self.upstream_providers: UpstreamProviderStore = _UpstreamProviders(engine, domain_id)
        self.federated_identities: FederatedIdentityStore = _FederatedIdentities(engine, domain_id)
        self.domains: DomainStore = shared.domains

    def for_domain(self, domain_id: str) -> SqlStore:
        return SqlStore(self.engine, domain_id, self._shared)

    def use_login_throttle(self, factory: Callable[[str], LoginThrottleStore]) -> None:
        """Keep login failures elsewhere (Redis) for this domain and every one bound later."""
        self._shared.throttle_for = factory
        self.login_throttle = factory(self.domain_id)

    @classmethod
    def open(
        cls,
        url: str,
        domain_id: str = _DEFAULT_DOMAIN,
        *,
        check_schema: bool = True,
        pool_size: int = 10,
    ) -> SqlStore:
        """Connect; with `check_schema`, refuse a database that is not migrated to head."""
        engine = make_engine(url, pool_size=pool_size)
        if check_schema:
            try:
                ensure_current(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine, domain_id)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        with fast_transaction(self.engine) as tx:
            work = _SqlUnitOfWork(tx, self.domain_id, self._grant_cache)
            yield work
        if work.revoked:  # committed: tell the feed's followers
            for listener in self.revocation_listeners:
                listener(self.domain_id)

    def ensure_domain(self, name: str, now: datetime) -> None:
        d = t.domains
        with write(self.engine) as conn:
            if conn.execute(select(d.c.id).where(d.c.id == self.domain_id)).first() is None:
                conn.execute(
                    insert(d).values(
                        id=self.domain_id,
                        name=self.domain_id,
                        display_name=name,
                        created_at=now,
                        settings={},
                        version=1,
                    )
                )

    def ping(self) -> None:
        with read(self.engine) as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self._shared.last_seq.close()
        fast.dispose(self.engine)
        self.engine.dispose()
