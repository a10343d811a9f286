"""`MemoryStore`: the in-memory reference implementation of the `Store` protocol.

Used by the fast unit tests and as the executable reading of the docstrings in
`tessera.store.protocols`; `tessera.store.sql` must behave the same (the shared conformance
suite is `tests/unit/store/test_store_contract.py`).

One `threading.Lock` guards every sub-store, so each "use once" operation (`codes.consume`,
`grants.revoke`) is atomic under threads, like the single conditional write of the SQL store;
`transaction()` holds it for a whole unit of work. Rows are frozen dataclasses; the mutable
fields (`SigningKey.public_jwk`, `AuditEvent.details`) are copied in and out, so a caller cannot
change a stored row behind the store's back. Nothing here reads the clock: every time comes from
the caller.
"""

from __future__ import annotations

import builtins
import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from tessera.domain.identity_domains import IdentityDomain
from tessera.domain.model import (
    DEFAULT_DOMAIN,
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    Client,
    Consent,
    DeviceAuthorization,
    FederatedIdentity,
    Grant,
    Group,
    Passkey,
    PrincipalKind,
    PushedRequest,
    RecoveryCode,
    RefreshToken,
    RegistrationToken,
    Resource,
    RevocationEvent,
    RevocationKind,
    RoleGrant,
    SigningKey,
    TotpFactor,
    TrustedIssuer,
    UpstreamProvider,
    User,
)
from tessera.store.memory_domains import MemoryDomains
from tessera.store.protocols import (
    AuditStore,
    ClientStore,
    CodeStore,
    Conflict,
    ConsentStore,
    DeviceAuthorizationStore,
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

if TYPE_CHECKING:
    from tessera.store.protocols import Store

__all__ = ["MemoryStore"]


# The longest `NonceStore` key: the SQL store's column (`schema.NONCE_KEY_LENGTH`).
_NONCE_KEY_LENGTH = 200


def _username_key(username: str) -> str:
    """The case-insensitive form of a username (the SQL store's `username_lower`)."""
    return username.lower()


def _copy_key(key: SigningKey) -> SigningKey:
    return replace(key, public_jwk=copy.deepcopy(key.public_jwk))


def _copy_event(event: AuditEvent) -> AuditEvent:
    return replace(event, details=copy.deepcopy(event.details))


class _Snapshot(NamedTuple):
    users: dict[str, User]
    codes: dict[str, AuthorizationCode]
    grants: dict[str, Grant]
    refresh_tokens: dict[str, RefreshToken]
    revocations: dict[int, RevocationEvent]
    last_revocation_seq: int
    device_authorizations: dict[str, DeviceAuthorization]


# The row collections of `_State` (`MemoryStore.wipe`; login failures count one row per time).
_ROWS = (
    "users",
    "clients",
    "resources",
    "keys",
    "sessions",
    "consents",
    "codes",
    "grants",
    "refresh_tokens",
    "revocations",
    "audit",
    "passkeys",
    "totp",
    "recovery_codes",
    "nonces",
    "pushed_requests",
    "registration_tokens",
    "trusted_issuers",
    "device_authorizations",
    "groups",
    "group_members",
    "role_grants",
    "upstream_providers",
    "federated_identities",
)


@dataclass(eq=False)
class _State:
    """All rows of one domain, and the one lock that guards them."""

    domain_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    users: dict[str, User] = field(default_factory=dict)
    user_ids_by_username: dict[str, str] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    sessions: dict[str, BrowserSession] = field(default_factory=dict)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    revocations: dict[int, RevocationEvent] = field(default_factory=dict)  # ascending seq
    last_revocation_seq: int = 0  # never reused, also after a purge
    login_failures: dict[str, list[datetime]] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)  # ascending id
    last_audit_id: int = 0
    passkeys: dict[str, Passkey] = field(default_factory=dict)  # by credential id
    totp: dict[str, TotpFactor] = field(default_factory=dict)  # by user id
    recovery_codes: dict[tuple[str, str], RecoveryCode] = field(default_factory=dict)
    nonces: dict[str, datetime] = field(default_factory=dict)  # key: expires_at
    pushed_requests: dict[str, PushedRequest] = field(default_factory=dict)  # by uri_hash
    registration_tokens: dict[str, RegistrationToken] = field(default_factory=dict)  # by id
    trusted_issuers: dict[str, TrustedIssuer] = field(default_factory=dict)  # by id
    # By device code hash (RFC 8628); user code hashes are unique among them.
    device_authorizations: dict[str, DeviceAuthorization] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)  # by id
    # By (group id, user id): the provider whose sign-in made the membership, None when an
    # administrator or SCIM did (the SQL row's `provider_id`).
    group_members: dict[tuple[str, str], str | None] = field(default_factory=dict)
    role_grants: dict[tuple[str, str, str, str], RoleGrant] = field(default_factory=dict)
    upstream_providers: dict[str, UpstreamProvider] = field(default_factory=dict)  # by id
    # By (provider id, upstream subject).
    federated_identities: dict[tuple[str, str], FederatedIdentity] = field(default_factory=dict)

    # The helpers below expect the caller to hold `lock`.

    def append_revocation(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        self.last_revocation_seq += 1
        seq = self.last_revocation_seq
        self.revocations[seq] = RevocationEvent(
            seq=seq,
            kind=kind,
            key=key,
            not_before=not_before,
            expires_at=expires_at,
            created_at=now,
        )
        return seq

    def consume_code(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        code = self.codes.get(code_hash)
        if code is None:
            return None, False
        # RFC 6749 §4.1.2 / RFC 9700 §4.2.4: a code is used once, and only before it expires.
        if code.consumed_at is not None or code.expires_at <= now:
            return code, False
        consumed = replace(code, consumed_at=now)
        self.codes[code_hash] = consumed
        return consumed, True

    def snapshot(self) -> _Snapshot:
        """What a unit of work may change, to put back on a rollback (rows are frozen)."""
        return _Snapshot(
            dict(self.users),
            dict(self.codes),
            dict(self.grants),
            dict(self.refresh_tokens),
            dict(self.revocations),
            self.last_revocation_seq,
            dict(self.device_authorizations),
        )

    def restore(self, snapshot: _Snapshot) -> None:
        self.users = snapshot.users
        self.codes = snapshot.codes
        self.grants = snapshot.grants
        self.refresh_tokens = snapshot.refresh_tokens
        self.revocations = snapshot.revocations
        self.last_revocation_seq = snapshot.last_revocation_seq
        self.device_authorizations = snapshot.device_authorizations

    def cut_off_after(self, subject: str, issued_at: datetime) -> bool:
        """A SUBJECT revocation of `subject` came after `issued_at`."""
        return any(
            e.kind is RevocationKind.SUBJECT and e.key == subject and e.not_before > issued_at
            for e in self.revocations.values()
        )

    def start_grant(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        """Insert a grant and its first refresh token; the caller holds the lock."""
        if grant.grant_id in self.grants:
            raise Conflict(f"grant id {grant.grant_id!r} is taken")
        if refresh_token is not None and refresh_token.token_hash in self.refresh_tokens:
            raise Conflict("refresh token is taken")
        revoked = next(
            (
                e.created_at
                for e in self.revocations.values()
                if e.kind is RevocationKind.GRANT and e.key == grant.grant_id
            ),
            None,
        )
        if revoked is not None and grant.revoked_at is None:
            grant = replace(grant, revoked_at=revoked)
        self.grants[grant.grant_id] = grant
        if refresh_token is not None:
            self.refresh_tokens[refresh_token.token_hash] = refresh_token

    def remove_factors(self, user_id: str) -> int:
        """Delete every factor of the user; how many (the SQL store's rows)."""
        passkeys = [k for k, p in self.passkeys.items() if p.user_id == user_id]
        codes = [k for k in self.recovery_codes if k[0] == user_id]
        for credential_id in passkeys:
            del self.passkeys[credential_id]
        for key in codes:
            del self.recovery_codes[key]
        totp = self.totp.pop(user_id, None)
        return len(passkeys) + len(codes) + (totp is not None)

    def drop_links(self, *, user_id: str | None = None, provider_id: str | None = None) -> None:
        """Forget the federated identities of a deleted user or provider."""
        gone = [
            k
            for k, f in self.federated_identities.items()
            if f.user_id == user_id or f.provider_id == provider_id
        ]
        for key in gone:
            del self.federated_identities[key]

    def bump_group(self, group_id: str, now: datetime) -> Group:
        """A member more or less is a change of the group (its version is SCIM's ETag)."""
        group = self.groups[group_id]
        self.groups[group_id] = changed = replace(group, version=group.version + 1, updated_at=now)
        return changed

    def drop_principal(self, kind: PrincipalKind, principal_id: str) -> None:
        """Forget a deleted user's or group's memberships and role grants, or an app's roles."""
        if kind is PrincipalKind.USER:
            self.group_members = {
                m: p for m, p in self.group_members.items() if m[1] != principal_id
            }
        elif kind is PrincipalKind.GROUP:
            self.group_members = {
                m: p for m, p in self.group_members.items() if m[0] != principal_id
            }
        gone = [
            k
            for k, g in self.role_grants.items()
            if (g.principal_kind, g.principal_id) == (kind, principal_id)
        ]
        for key in gone:
            del self.role_grants[key]

    def revoke_grant(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        grant = self.grants.get(grant_id)
        revoked = grant is not None and grant.revoked_at is None
        if grant is not None and revoked:
            self.grants[grant_id] = replace(grant, revoked_at=now)
        # Appended in every case, also for an unknown id, so tokens with that `sid` are refused.
        self.append_revocation(RevocationKind.GRANT, grant_id, now, event_expires_at, now)
        return revoked


class _Users:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, user: User) -> None:
        s = self._s
        with s.lock:
            name_key = _username_key(user.username)
            if user.id in s.users:
                raise Conflict(f"user id {user.id!r} is taken")
            if name_key in s.user_ids_by_username:
                raise Conflict(f"username {user.username!r} is taken")
            s.users[user.id] = user
            s.user_ids_by_username[name_key] = user.id

    def get(self, user_id: str) -> User | None:
        with self._s.lock:
            return self._s.users.get(user_id)

    def get_by_username(self, username: str) -> User | None:
        s = self._s
        with s.lock:
            user_id = s.user_ids_by_username.get(_username_key(username))
            return None if user_id is None else s.users[user_id]

    def update(self, user: User, *, expected_version: int | None = None) -> None:
        s = self._s
        with s.lock:
            old = s.users.get(user.id)
            if old is None:
                raise NotFound(f"no user {user.id!r}")
            if expected_version is not None and old.version != expected_version:
                raise StaleVersion(f"user {user.id!r} changed")
            name_key = _username_key(user.username)
            holder = s.user_ids_by_username.get(name_key)
            if holder is not None and holder != user.id:
                raise Conflict(f"username {user.username!r} is taken")
            del s.user_ids_by_username[_username_key(old.username)]
            s.user_ids_by_username[name_key] = user.id
            s.users[user.id] = replace(user, version=old.version + 1)

    def delete(self, user_id: str) -> None:
        s = self._s
        with s.lock:
            old = s.users.pop(user_id, None)
            if old is None:
                raise NotFound(f"no user {user_id!r}")
            del s.user_ids_by_username[_username_key(old.username)]
            s.remove_factors(user_id)
            s.drop_principal(PrincipalKind.USER, user_id)
            s.drop_links(user_id=user_id)

    def list(self) -> builtins.list[User]:
        with self._s.lock:
            return sorted(
                self._s.users.values(), key=lambda u: (_username_key(u.username), u.username)
            )

    def find_by_email(self, email: str) -> builtins.list[User]:
        wanted = email.strip().lower()
        return [u for u in self.list() if u.email is not None and u.email.lower() == wanted]


class _Clients:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _name_taken(self, name: str, client_id: str) -> bool:
        return any(c.name == name and c.client_id != client_id for c in self._s.clients.values())

    def add(self, client: Client) -> None:
        s = self._s
        with s.lock:
            if client.client_id in s.clients:
                raise Conflict(f"client id {client.client_id!r} is taken")
            if self._name_taken(client.name, client.client_id):
                raise Conflict(f"client name {client.name!r} is taken")
            s.clients[client.client_id] = client

    def get(self, client_id: str) -> Client | None:
        with self._s.lock:
            return self._s.clients.get(client_id)

    def update(self, client: Client) -> None:
        s = self._s
        with s.lock:
            if client.client_id not in s.clients:
                raise NotFound(f"no client {client.client_id!r}")
            if self._name_taken(client.name, client.client_id):
                raise Conflict(f"client name {client.name!r} is taken")
            s.clients[client.client_id] = client

    def delete(self, client_id: str) -> None:
        s = self._s
        with s.lock:
            if s.clients.pop(client_id, None) is None:
                raise NotFound(f"no client {client_id!r}")
            s.drop_principal(PrincipalKind.APP, client_id)

    def swap_registration_token(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        s = self._s
        with s.lock:
            client = s.clients.get(client_id)
            if client is None or client.registration_token_hash != old_hash:
                return False
            s.clients[client_id] = replace(
                client, registration_token_hash=new_hash, version=client.version + 1
            )
            return True

    def list(self) -> builtins.list[Client]:
        with self._s.lock:
            return sorted(self._s.clients.values(), key=lambda c: (c.name, c.client_id))


class _Resources:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, resource: Resource) -> None:
        s = self._s
        with s.lock:
            if resource.id in s.resources:
                raise Conflict(f"resource id {resource.id!r} is taken")
            for other in s.resources.values():
                if other.name == resource.name:
                    raise Conflict(f"resource name {resource.name!r} is taken")
                if other.audience == resource.audience:
                    raise Conflict(f"audience {resource.audience!r} is taken")
            s.resources[resource.id] = resource

    def get(self, resource_id: str) -> Resource | None:
        with self._s.lock:
            return self._s.resources.get(resource_id)

    def get_by_audience(self, audience: str) -> Resource | None:
        with self._s.lock:
            return next((r for r in self._s.resources.values() if r.audience == audience), None)

    def update(self, resource: Resource) -> None:
        s = self._s
        with s.lock:
            if resource.id not in s.resources:
                raise NotFound(f"no resource {resource.id!r}")
            for other in s.resources.values():
                if other.id != resource.id and other.name == resource.name:
                    raise Conflict(f"resource name {resource.name!r} is taken")
                if other.id != resource.id and other.audience == resource.audience:
                    raise Conflict(f"audience {resource.audience!r} is taken")
            s.resources[resource.id] = resource

    def delete(self, resource_id: str) -> None:
        s = self._s
        with s.lock:
            if s.resources.pop(resource_id, None) is None:
                raise NotFound(f"no resource {resource_id!r}")
            for key in [k for k in s.role_grants if k[0] == resource_id]:
                del s.role_grants[key]

    def list(self) -> builtins.list[Resource]:
        with self._s.lock:
            return sorted(self._s.resources.values(), key=lambda r: (r.name, r.id))


class _Keys:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, key: SigningKey) -> None:
        s = self._s
        with s.lock:
            if key.kid in s.keys:
                raise Conflict(f"kid {key.kid!r} is taken")
            s.keys[key.kid] = _copy_key(key)

    def replace_states(self, keys: Sequence[SigningKey]) -> None:
        s = self._s
        with s.lock:
            # All or nothing: check every kid before changing any row.
            missing = [k.kid for k in keys if k.kid not in s.keys]
            if missing:
                raise NotFound(f"no signing key {missing[0]!r}")
            for key in keys:
                s.keys[key.kid] = replace(
                    s.keys[key.kid],
                    state=key.state,
                    activated_at=key.activated_at,
                    retire_after=key.retire_after,
                )

    def delete(self, kid: str) -> None:
        with self._s.lock:
            self._s.keys.pop(kid, None)

    def list(self) -> builtins.list[SigningKey]:
        with self._s.lock:
            keys = [_copy_key(k) for k in self._s.keys.values()]
        # Oldest first; a stable sort keeps insertion order among equal `created_at`.
        return sorted(keys, key=lambda k: k.created_at)


class _Sessions:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, session: BrowserSession) -> None:
        s = self._s
        with s.lock:
            if session.id_hash in s.sessions:
                raise Conflict("session id is taken")
            s.sessions[session.id_hash] = session

    def get(self, id_hash: str) -> BrowserSession | None:
        with self._s.lock:
            return self._s.sessions.get(id_hash)

    def end(self, id_hash: str, now: datetime) -> None:
        s = self._s
        with s.lock:
            session = s.sessions.get(id_hash)
            if session is not None and session.ended_at is None:
                s.sessions[id_hash] = replace(session, ended_at=now)

    def end_all_for_user(self, user_id: str, now: datetime) -> int:
        s = self._s
        with s.lock:
            # "Open" means not ended; an expired but never ended session is ended too.
            open_ = [x for x in s.sessions.values() if x.user_id == user_id and x.ended_at is None]
            for session in open_:
                s.sessions[session.id_hash] = replace(session, ended_at=now)
            return len(open_)

    def list_for_user(self, user_id: str, now: datetime) -> list[BrowserSession]:
        with self._s.lock:
            sessions = [
                x
                for x in self._s.sessions.values()
                if x.user_id == user_id and x.ended_at is None and x.expires_at > now
            ]
        return sorted(sessions, key=lambda x: (x.auth_time, x.id_hash), reverse=True)

    def purge(self, now: datetime) -> int:
        with self._s.lock:
            gone = [
                k
                for k, x in self._s.sessions.items()
                if (x.ended_at is not None and x.ended_at <= now) or x.expires_at <= now
            ]
            for key in gone:
                del self._s.sessions[key]
        return len(gone)

    def authenticated(
        self, id_hash: str, amr: tuple[str, ...], auth_time: datetime, now: datetime
    ) -> bool:
        s = self._s
        with s.lock:
            session = s.sessions.get(id_hash)
            if session is None or session.ended_at is not None or session.expires_at <= now:
                return False
            s.sessions[id_hash] = replace(session, amr=amr, auth_time=auth_time)
            return True


class _Consents:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, user_id: str, client_id: str) -> Consent | None:
        with self._s.lock:
            return self._s.consents.get((user_id, client_id))

    def put(self, consent: Consent) -> None:
        with self._s.lock:
            self._s.consents[(consent.user_id, consent.client_id)] = consent

    def revoke(self, user_id: str, client_id: str, now: datetime) -> bool:
        s = self._s
        with s.lock:
            consent = s.consents.get((user_id, client_id))
            if consent is None or consent.revoked_at is not None:
                return False
            s.consents[(user_id, client_id)] = replace(consent, revoked_at=now)
            return True

    def list_for_user(self, user_id: str) -> list[Consent]:
        with self._s.lock:
            consents = [
                c
                for c in self._s.consents.values()
                if c.user_id == user_id and c.revoked_at is None
            ]
        return sorted(consents, key=lambda c: c.client_id)


class _Codes:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, code: AuthorizationCode) -> None:
        s = self._s
        with s.lock:
            if code.code_hash in s.codes:
                raise Conflict("authorization code is taken")
            s.codes[code.code_hash] = code

    def consume(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        with self._s.lock:
            return self._s.consume_code(code_hash, now)

    def burn_for_user(self, user_id: str, now: datetime) -> int:
        s = self._s
        with s.lock:
            open_codes = [
                c for c in s.codes.values() if c.user_id == user_id and c.consumed_at is None
            ]
            for code in open_codes:
                s.codes[code.code_hash] = replace(code, consumed_at=now)
            return len(open_codes)

    def purge(self, now: datetime) -> int:
        s = self._s
        with s.lock:
            expired = [h for h, c in s.codes.items() if c.expires_at <= now]
            for code_hash in expired:
                del s.codes[code_hash]
            return len(expired)


class _Grants:
    def __init__(self, state: _State) -> None:
        self._s = state

    def start(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        with self._s.lock:
            self._s.start_grant(grant, refresh_token)

    def get(self, grant_id: str) -> Grant | None:
        with self._s.lock:
            return self._s.grants.get(grant_id)

    def revoke(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        s = self._s
        with s.lock:
            return s.revoke_grant(grant_id, now, event_expires_at)

    def list_active(
        self, now: datetime, *, user_id: str | None = None, client_id: str | None = None
    ) -> list[Grant]:
        with self._s.lock:
            grants = [
                g
                for g in self._s.grants.values()
                if g.revoked_at is None
                and g.absolute_expiry > now
                and (user_id is None or g.user_id == user_id)
                and (client_id is None or g.client_id == client_id)
            ]
        return sorted(grants, key=lambda g: (g.created_at, g.grant_id), reverse=True)


class _RefreshTokens:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, token_hash: str) -> RefreshToken | None:
        with self._s.lock:
            return self._s.refresh_tokens.get(token_hash)

    def purge(self, now: datetime) -> int:
        s = self._s
        with s.lock:

            def ended(token: RefreshToken) -> bool:
                if token.expires_at <= now:
                    return True
                grant = s.grants.get(token.grant_id)
                if grant is None or grant.absolute_expiry <= now:
                    return True
                return grant.revoked_at is not None and grant.revoked_at <= now

            doomed = [h for h, t in s.refresh_tokens.items() if ended(t)]
            for token_hash in doomed:
                del s.refresh_tokens[token_hash]
            # Grants past their absolute expiry go with their tokens, as on SQL.
            for grant_id in [g for g, x in s.grants.items() if x.absolute_expiry <= now]:
                del s.grants[grant_id]
            return len(doomed)


class _InTx:
    """A small store of a unit of work: the caller holds the lock (`transaction`)."""

    def __init__(self, state: _State) -> None:
        self._s = state


class _TxUsers(_InTx):
    def get(self, user_id: str) -> User | None:
        return self._s.users.get(user_id)


class _TxCodes(_InTx):
    def consume(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        return self._s.consume_code(code_hash, now)


class _TxGrants(_InTx):
    def start(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        self._s.start_grant(grant, refresh_token)

    def get(self, grant_id: str) -> Grant | None:
        return self._s.grants.get(grant_id)

    def revoke(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        return self._s.revoke_grant(grant_id, now, event_expires_at)


class _TxRefreshTokens(_InTx):
    def get(self, token_hash: str) -> RefreshToken | None:
        return self._s.refresh_tokens.get(token_hash)

    def use_for_client(
        self, token_hash: str, successor_hash: str, client_id: str, now: datetime
    ) -> tuple[RefreshToken, Grant] | None:
        token, grant = self.with_grant(token_hash)
        if (
            token is None
            or grant is None
            or grant.client_id != client_id
            or grant.revoked_at is not None
            or grant.absolute_expiry <= now
        ):
            return None
        if not self.use(token_hash, successor_hash, now):
            return None
        return self._s.refresh_tokens[token_hash], grant

    def use(self, token_hash: str, successor_hash: str, now: datetime) -> bool:
        token = self._s.refresh_tokens.get(token_hash)
        if token is None or token.used_at is not None or token.expires_at <= now:
            return False
        used = replace(token, used_at=now, successor_hash=successor_hash)
        self._s.refresh_tokens[token_hash] = used
        return True

    def with_grant(self, token_hash: str) -> tuple[RefreshToken | None, Grant | None]:
        token = self._s.refresh_tokens.get(token_hash)
        return token, (self._s.grants.get(token.grant_id) if token else None)

    def unused(self, token_hash: str) -> bool:
        token = self._s.refresh_tokens.get(token_hash)
        return token is not None and token.used_at is None

    def add(self, token: RefreshToken) -> None:
        if token.token_hash in self._s.refresh_tokens:
            raise Conflict("refresh token is taken")
        self._s.refresh_tokens[token.token_hash] = token


class _TxRevocations(_InTx):
    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        return self._s.append_revocation(kind, key, not_before, expires_at, now)

    def cut_off_after(self, subject: str, issued_at: datetime) -> bool:
        return self._s.cut_off_after(subject, issued_at)


class _TxDeviceAuthorizations(_InTx):
    def redeem(
        self, device_code_hash: str, client_id: str, now: datetime
    ) -> DeviceAuthorization | None:
        rows = self._s.device_authorizations
        found = rows.get(device_code_hash)
        if (
            found is None
            or found.client_id != client_id
            or found.status != "approved"
            or found.redeemed_at is not None
            or found.expires_at <= now
        ):
            return None
        redeemed = rows[device_code_hash] = replace(found, redeemed_at=now)
        return redeemed


class _UnitOfWork:
    def __init__(self, state: _State) -> None:
        self.device_authorizations: TxDeviceAuthorizations = _TxDeviceAuthorizations(state)
        self.users: TxUsers = _TxUsers(state)
        self.codes: TxCodes = _TxCodes(state)
        self.grants: TxGrants = _TxGrants(state)
        self.refresh_tokens: TxRefreshTokens = _TxRefreshTokens(state)
        self.revocations: TxRevocations = _TxRevocations(state)


class _Revocations:
    def __init__(self, state: _State) -> None:
        self._s = state

    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        with self._s.lock:
            return self._s.append_revocation(kind, key, not_before, expires_at, now)

    def since(self, seq: int, limit: int = 1000) -> list[RevocationEvent]:
        with self._s.lock:
            # `revocations` is kept in ascending seq order (insertion order of the dict).
            events = [e for e in self._s.revocations.values() if e.seq > seq]
        return events[: max(limit, 0)]

    def last_seq(self) -> int:
        with self._s.lock:
            return max(self._s.revocations, default=0)

    async def last_seq_async(self) -> int:
        return self.last_seq()

    def purge(self, now: datetime) -> int:
        s = self._s
        with s.lock:
            expired = [seq for seq, e in s.revocations.items() if e.expires_at <= now]
            for seq in expired:
                del s.revocations[seq]
            return len(expired)


class _LoginThrottle:
    def __init__(self, state: _State) -> None:
        self._s = state

    def failures(self, key: str, since: datetime) -> int:
        with self._s.lock:
            return sum(1 for at in self._s.login_failures.get(key, ()) if at >= since)

    def recent(self, keys: Sequence[str], since: datetime) -> dict[str, Failures]:
        out = {}
        with self._s.lock:
            for key in keys:
                times = [at for at in self._s.login_failures.get(key, ()) if at >= since]
                out[key] = Failures(len(times), max(times, default=None))
        return out

    def record_failure(self, key: str, now: datetime) -> None:
        with self._s.lock:
            self._s.login_failures.setdefault(key, []).append(now)

    def clear(self, key: str) -> None:
        with self._s.lock:
            self._s.login_failures.pop(key, None)

    def purge(self, before: datetime) -> int:
        s = self._s
        with s.lock:
            removed = 0
            for key in list(s.login_failures):
                kept = [at for at in s.login_failures[key] if at >= before]
                removed += len(s.login_failures[key]) - len(kept)
                if kept:
                    s.login_failures[key] = kept
                else:
                    del s.login_failures[key]
            return removed


class _Audit:
    def __init__(self, state: _State) -> None:
        self._s = state

    def append(self, events: Sequence[AuditEvent]) -> None:
        s = self._s
        with s.lock:
            for event in events:
                s.last_audit_id += 1
                s.audit.append(replace(_copy_event(event), id=s.last_audit_id))

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
        found: list[AuditEvent] = []
        with self._s.lock:
            # Newest first is descending id (append order), which `before_id` pages along.
            for event in reversed(self._s.audit):
                if len(found) >= limit:
                    break
                assert event.id is not None
                if (
                    (type is None or event.type == type)
                    and (user_id is None or event.user_id == user_id)
                    and (client_id is None or event.client_id == client_id)
                    and (since is None or event.at >= since)
                    and (until is None or event.at < until)
                    and (before_id is None or event.id < before_id)
                ):
                    found.append(_copy_event(event))
        return found


class _Factors:
    """`FactorStore`: each "use once" step checks and writes under the lock, as one step."""

    def __init__(self, state: _State) -> None:
        self._s = state

    def add_passkey(self, passkey: Passkey) -> None:
        with self._s.lock:
            if passkey.credential_id in self._s.passkeys:
                raise Conflict("the passkey is registered already")
            self._s.passkeys[passkey.credential_id] = passkey

    def passkey(self, credential_id: str) -> Passkey | None:
        with self._s.lock:
            return self._s.passkeys.get(credential_id)

    def passkeys_for(self, user_id: str) -> list[Passkey]:
        with self._s.lock:
            found = [p for p in self._s.passkeys.values() if p.user_id == user_id]
        return sorted(found, key=lambda p: (p.created_at, p.credential_id))

    def use_passkey(
        self, credential_id: str, seen_count: int, new_count: int, now: datetime
    ) -> bool:
        s = self._s
        with s.lock:
            passkey = s.passkeys.get(credential_id)
            if passkey is None or passkey.sign_count != seen_count:
                return False
            s.passkeys[credential_id] = replace(passkey, sign_count=new_count, last_used_at=now)
            return True

    def _users_passkey(self, user_id: str, credential_id: str) -> Passkey | None:
        passkey = self._s.passkeys.get(credential_id)
        return passkey if passkey is not None and passkey.user_id == user_id else None

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        with self._s.lock:
            passkey = self._users_passkey(user_id, credential_id)
            if passkey is not None:
                self._s.passkeys[credential_id] = replace(passkey, name=name)
            return passkey is not None

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        with self._s.lock:
            passkey = self._users_passkey(user_id, credential_id)
            if passkey is not None:
                del self._s.passkeys[credential_id]
            return passkey is not None

    def totp(self, user_id: str) -> TotpFactor | None:
        with self._s.lock:
            return self._s.totp.get(user_id)

    def put_totp(self, factor: TotpFactor) -> None:
        with self._s.lock:
            old = self._s.totp.get(factor.user_id)
            if old is not None and old.confirmed_at is not None:
                raise Conflict(f"user {factor.user_id} has a confirmed authenticator app")
            self._s.totp[factor.user_id] = factor

    def use_totp_step(self, user_id: str, step: int) -> bool:
        with self._s.lock:
            factor = self._s.totp.get(user_id)
            if factor is None or factor.confirmed_at is None or factor.last_step >= step:
                return False
            self._s.totp[user_id] = replace(factor, last_step=step)
            return True

    def remove_totp(self, user_id: str) -> bool:
        with self._s.lock:
            return self._s.totp.pop(user_id, None) is not None

    def replace_recovery_codes(self, user_id: str, hashes: Sequence[str], now: datetime) -> None:
        if len(set(hashes)) != len(hashes):  # the SQL store's primary key
            raise Conflict("recovery code hashes repeat")
        with self._s.lock:
            codes = self._s.recovery_codes
            for key in [k for k in codes if k[0] == user_id]:
                del codes[key]
            for code_hash in hashes:
                codes[(user_id, code_hash)] = RecoveryCode(user_id, code_hash, now)

    def use_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        with self._s.lock:
            code = self._s.recovery_codes.get((user_id, code_hash))
            if code is None or code.used_at is not None:
                return False
            self._s.recovery_codes[(user_id, code_hash)] = replace(code, used_at=now)
            return True

    def recovery_codes(self, user_id: str) -> list[RecoveryCode]:
        with self._s.lock:
            found = [c for c in self._s.recovery_codes.values() if c.user_id == user_id]
        return sorted(found, key=lambda c: (c.created_at, c.code_hash))

    def remove_all(self, user_id: str) -> int:
        with self._s.lock:
            return self._s.remove_factors(user_id)


class _Nonces:
    def __init__(self, state: _State) -> None:
        self._s = state

    def use_once(self, key: str, expires_at: datetime, now: datetime) -> bool:
        if len(key) > _NONCE_KEY_LENGTH:
            raise ValueError(f"a use-once key is at most {_NONCE_KEY_LENGTH} characters")
        with self._s.lock:
            recorded = self._s.nonces.get(key)
            if recorded is not None and recorded > now:
                return False
            self._s.nonces[key] = expires_at
            return True

    def purge(self, now: datetime) -> int:
        with self._s.lock:
            gone = [key for key, expires_at in self._s.nonces.items() if expires_at <= now]
            for key in gone:
                del self._s.nonces[key]
        return len(gone)


class _PushedRequests:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, request: PushedRequest) -> None:
        with self._s.lock:
            if request.uri_hash in self._s.pushed_requests:
                raise Conflict("the pushed request is taken")
            self._s.pushed_requests[request.uri_hash] = request

    def take(self, uri_hash: str, client_id: str, now: datetime) -> PushedRequest | None:
        with self._s.lock:
            found = self._s.pushed_requests.get(uri_hash)
            # RFC 9126 §4: once, by the client that pushed it, before it expires.
            if (
                found is None
                or found.used_at is not None
                or found.expires_at <= now
                or found.client_id != client_id
            ):
                return None
            used = self._s.pushed_requests[uri_hash] = replace(found, used_at=now)
            return used

    def purge(self, now: datetime) -> int:
        with self._s.lock:
            rows = self._s.pushed_requests
            gone = [k for k, r in rows.items() if r.expires_at <= now]
            for key in gone:
                del rows[key]
        return len(gone)


class _DeviceAuthorizations:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, authorization: DeviceAuthorization) -> None:
        with self._s.lock:
            rows = self._s.device_authorizations
            taken = {a.user_code_hash for a in rows.values()}
            if authorization.device_code_hash in rows or authorization.user_code_hash in taken:
                raise Conflict("the device or user code is taken")
            rows[authorization.device_code_hash] = authorization

    def get(self, device_code_hash: str) -> DeviceAuthorization | None:
        with self._s.lock:
            return self._s.device_authorizations.get(device_code_hash)

    def find(self, user_code_hash: str) -> DeviceAuthorization | None:
        with self._s.lock:
            rows = self._s.device_authorizations.values()
            return next((a for a in rows if a.user_code_hash == user_code_hash), None)

    def poll(self, device_code_hash: str, seen_polls: int, interval: int, now: datetime) -> bool:
        with self._s.lock:
            rows = self._s.device_authorizations
            found = rows.get(device_code_hash)
            if found is None or found.polls != seen_polls or found.status != "pending":
                return False
            rows[device_code_hash] = replace(
                found, polls=seen_polls + 1, interval=interval, last_polled_at=now
            )
            return True

    def decide(self, user_code_hash: str, decided: DeviceAuthorization, now: datetime) -> bool:
        with self._s.lock:
            rows = self._s.device_authorizations
            found = next((a for a in rows.values() if a.user_code_hash == user_code_hash), None)
            if found is None or found.status != "pending" or found.expires_at <= now:
                return False
            rows[found.device_code_hash] = replace(
                found,
                status=decided.status,
                user_id=decided.user_id,
                auth_time=decided.auth_time,
                amr=decided.amr,
                session_id=decided.session_id,
                decided_at=now,
            )
            return True

    def purge(self, now: datetime) -> int:
        with self._s.lock:
            rows = self._s.device_authorizations
            gone = [k for k, a in rows.items() if a.expires_at <= now]
            for key in gone:
                del rows[key]
        return len(gone)


class _RegistrationTokens:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, token: RegistrationToken) -> None:
        with self._s.lock:
            rows = self._s.registration_tokens
            if token.id in rows or any(t.token_hash == token.token_hash for t in rows.values()):
                raise Conflict("the registration token is taken")
            rows[token.id] = token

    def get(self, token_id: str) -> RegistrationToken | None:
        with self._s.lock:
            return self._s.registration_tokens.get(token_id)

    def find(self, token_hash: str) -> RegistrationToken | None:
        with self._s.lock:
            rows = self._s.registration_tokens.values()
            return next((t for t in rows if t.token_hash == token_hash), None)

    def list(self) -> builtins.list[RegistrationToken]:
        with self._s.lock:
            found = builtins.list(self._s.registration_tokens.values())
        return sorted(found, key=lambda t: (t.created_at, t.id), reverse=True)

    def use(self, token_hash: str, now: datetime) -> RegistrationToken | None:
        with self._s.lock:
            rows = self._s.registration_tokens
            found = next((t for t in rows.values() if t.token_hash == token_hash), None)
            if found is None or not found.usable(now):
                return None
            used = rows[found.id] = replace(found, uses=found.uses + 1)
            return used

    def revoke(self, token_id: str, now: datetime) -> None:
        with self._s.lock:
            found = self._s.registration_tokens.get(token_id)
            if found is None:
                raise NotFound(f"no registration token {token_id!r}")
            if found.revoked_at is None:
                self._s.registration_tokens[token_id] = replace(found, revoked_at=now)

    def purge(self, now: datetime) -> int:
        with self._s.lock:
            rows = self._s.registration_tokens
            gone = [
                k
                for k, t in rows.items()
                if (t.expires_at is not None and t.expires_at <= now)
                or (t.revoked_at is not None and t.revoked_at <= now)
            ]
            for key in gone:
                del rows[key]
        return len(gone)


class _TrustedIssuers:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _check_unique(self, issuer: TrustedIssuer) -> None:
        rows = self._s.trusted_issuers.values()
        if any(i.issuer == issuer.issuer and i.id != issuer.id for i in rows):
            raise Conflict(f"the issuer {issuer.issuer!r} is trusted already")

    def add(self, issuer: TrustedIssuer) -> None:
        with self._s.lock:
            if issuer.id in self._s.trusted_issuers:
                raise Conflict("the trusted issuer id is taken")
            self._check_unique(issuer)
            self._s.trusted_issuers[issuer.id] = issuer

    def get(self, issuer_id: str) -> TrustedIssuer | None:
        with self._s.lock:
            return self._s.trusted_issuers.get(issuer_id)

    def find(self, issuer: str) -> TrustedIssuer | None:
        with self._s.lock:
            rows = self._s.trusted_issuers.values()
            return next((i for i in rows if i.issuer == issuer), None)

    def list(self) -> builtins.list[TrustedIssuer]:
        with self._s.lock:
            found = builtins.list(self._s.trusted_issuers.values())
        return sorted(found, key=lambda i: (i.issuer, i.id))

    def update(self, issuer: TrustedIssuer) -> None:
        with self._s.lock:
            if issuer.id not in self._s.trusted_issuers:
                raise NotFound(f"no trusted issuer {issuer.id!r}")
            self._check_unique(issuer)
            self._s.trusted_issuers[issuer.id] = issuer

    def delete(self, issuer_id: str) -> None:
        with self._s.lock:
            if self._s.trusted_issuers.pop(issuer_id, None) is None:
                raise NotFound(f"no trusted issuer {issuer_id!r}")


def _name_key(name: str) -> str:
    return name.casefold()


class _Groups:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _check(self, group: Group, members: Sequence[str] | None) -> None:
        s = self._s
        key = _name_key(group.name)
        if any(g.id != group.id and _name_key(g.name) == key for g in s.groups.values()):
            raise Conflict(f"group name {group.name!r} is taken")
        missing = [m for m in members or () if m not in s.users]
        if missing:
            raise NotFound(f"no user {missing[0]!r}")

    def _current(self, group_id: str, expected_version: int | None) -> Group:
        group = self._s.groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id!r}")
        if expected_version is not None and group.version != expected_version:
            raise StaleVersion(f"group {group_id!r} changed")
        return group

    def add(self, group: Group, members: Sequence[str] = ()) -> None:
        s = self._s
        with s.lock:
            if group.id in s.groups:
                raise Conflict(f"group id {group.id!r} is taken")
            self._check(group, members)
            s.groups[group.id] = group
            s.group_members.update(dict.fromkeys(((group.id, m) for m in members), None))

    def get(self, group_id: str) -> Group | None:
        with self._s.lock:
            return self._s.groups.get(group_id)

    def get_by_name(self, name: str) -> Group | None:
        key = _name_key(name)
        with self._s.lock:
            return next((g for g in self._s.groups.values() if _name_key(g.name) == key), None)

    def list(self) -> builtins.list[Group]:
        with self._s.lock:
            found = builtins.list(self._s.groups.values())
        return sorted(found, key=lambda g: (_name_key(g.name), g.id))

    def members(self, group_id: str) -> builtins.list[str]:
        with self._s.lock:
            return sorted(u for g, u in self._s.group_members if g == group_id)

    def memberships(self) -> builtins.list[tuple[str, str]]:
        with self._s.lock:
            return sorted(self._s.group_members)

    def groups_of(self, user_id: str) -> builtins.list[Group]:
        with self._s.lock:
            s = self._s
            found = [s.groups[g] for g, u in s.group_members if u == user_id]
        return sorted(found, key=lambda g: (_name_key(g.name), g.id))

    def update(
        self,
        group: Group,
        members: Sequence[str] | None = None,
        *,
        expected_version: int | None = None,
    ) -> None:
        s = self._s
        with s.lock:
            old = self._current(group.id, expected_version)
            self._check(group, members)
            s.groups[group.id] = replace(group, version=old.version + 1)
            if members is not None:
                # A membership that stays keeps who made it.
                kept = {(group.id, m) for m in members}
                s.group_members = {
                    m: p for m, p in s.group_members.items() if m[0] != group.id or m in kept
                }
                for m in kept:
                    s.group_members.setdefault(m, None)

    def change_members(
        self, group_id: str, add: Sequence[str], remove: Sequence[str], now: datetime
    ) -> Group:
        s = self._s
        with s.lock:
            group = self._current(group_id, None)
            self._check(group, add)
            for m in remove:
                s.group_members.pop((group_id, m), None)
            for m in add:  # added again: an administrator's now
                s.group_members[(group_id, m)] = None
            return s.bump_group(group_id, now)

    def made_by_provider(self, user_id: str, provider_id: str) -> builtins.list[str]:
        with self._s.lock:
            made = self._s.group_members.items()
            return sorted(g for (g, u), p in made if u == user_id and p == provider_id)

    def provider_memberships(
        self,
        user_id: str,
        provider_id: str,
        join: Sequence[str],
        leave: Sequence[str],
        now: datetime,
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        s = self._s
        with s.lock:
            if user_id not in s.users:
                raise NotFound(f"no user {user_id!r}")
            joined = sorted(
                g for g in set(join) if g in s.groups and (g, user_id) not in s.group_members
            )
            left = sorted(g for g in set(leave) if s.group_members.get((g, user_id)) == provider_id)
            for g in joined:
                s.group_members[(g, user_id)] = provider_id
            for g in left:
                del s.group_members[(g, user_id)]
            for g in joined + left:
                s.bump_group(g, now)
            return joined, left

    def delete(self, group_id: str, *, expected_version: int | None = None) -> None:
        s = self._s
        with s.lock:
            self._current(group_id, expected_version)
            del s.groups[group_id]
            s.drop_principal(PrincipalKind.GROUP, group_id)


def _grant_key(grant: RoleGrant) -> tuple[str, str, str, str]:
    return (grant.resource_id, grant.role, grant.principal_kind.value, grant.principal_id)


class _Roles:
    def __init__(self, state: _State) -> None:
        self._s = state

    def grant(self, grant: RoleGrant) -> bool:
        with self._s.lock:
            key = _grant_key(grant)
            if key in self._s.role_grants:
                return False
            self._s.role_grants[key] = grant
            return True

    def revoke(self, resource_id: str, role: str, kind: PrincipalKind, principal_id: str) -> bool:
        with self._s.lock:
            key = (resource_id, role, kind.value, principal_id)
            return self._s.role_grants.pop(key, None) is not None

    def list(
        self,
        resource_id: str | None = None,
        principal: tuple[PrincipalKind, str] | None = None,
    ) -> builtins.list[RoleGrant]:
        with self._s.lock:
            rows = sorted(self._s.role_grants.items())
        return [
            g
            for _, g in rows
            if (resource_id is None or g.resource_id == resource_id)
            and (principal is None or (g.principal_kind, g.principal_id) == principal)
        ]

    def roles_of_user(self, user_id: str, resource_id: str) -> tuple[str, ...]:
        with self._s.lock:
            s = self._s
            groups = {g for g, u in s.group_members if u == user_id}
            return tuple(
                sorted(
                    {
                        g.role
                        for g in s.role_grants.values()
                        if g.resource_id == resource_id
                        and (
                            (g.principal_kind is PrincipalKind.USER and g.principal_id == user_id)
                            or (
                                g.principal_kind is PrincipalKind.GROUP and g.principal_id in groups
                            )
                        )
                    }
                )
            )

    def roles_of_app(self, client_id: str, resource_id: str) -> tuple[str, ...]:
        principal = (PrincipalKind.APP, client_id)
        return tuple(sorted({g.role for g in self.list(resource_id, principal)}))


class _UpstreamProviders:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _check_name(self, provider: UpstreamProvider) -> None:
        key = _name_key(provider.name)
        rows = self._s.upstream_providers.values()
        if any(p.id != provider.id and _name_key(p.name) == key for p in rows):
            raise Conflict(f"provider name {provider.name!r} is taken")

    def add(self, provider: UpstreamProvider) -> None:
        with self._s.lock:
            if provider.id in self._s.upstream_providers:
                raise Conflict(f"provider id {provider.id!r} is taken")
            self._check_name(provider)
            EmailDomainTaken.check(provider, self._s.upstream_providers.values())
            self._s.upstream_providers[provider.id] = provider

    def get(self, provider_id: str) -> UpstreamProvider | None:
        with self._s.lock:
            return self._s.upstream_providers.get(provider_id)

    def get_by_name(self, name: str) -> UpstreamProvider | None:
        key = _name_key(name)
        with self._s.lock:
            rows = self._s.upstream_providers.values()
            return next((p for p in rows if _name_key(p.name) == key), None)

    def list(self) -> builtins.list[UpstreamProvider]:
        with self._s.lock:
            found = builtins.list(self._s.upstream_providers.values())
        return sorted(found, key=lambda p: (_name_key(p.name), p.id))

    def update(self, provider: UpstreamProvider) -> None:
        s = self._s
        with s.lock:
            old = s.upstream_providers.get(provider.id)
            if old is None:
                raise NotFound(f"no provider {provider.id!r}")
            self._check_name(provider)
            EmailDomainTaken.check(provider, s.upstream_providers.values())
            s.upstream_providers[provider.id] = replace(provider, version=old.version + 1)

    def delete(self, provider_id: str) -> None:
        s = self._s
        with s.lock:
            if s.upstream_providers.pop(provider_id, None) is None:
                raise NotFound(f"no provider {provider_id!r}")
            s.drop_links(provider_id=provider_id)
            for m, made_by in s.group_members.items():  # now ordinary memberships
                if made_by == provider_id:
                    s.group_members[m] = None


class _FederatedIdentities:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, provider_id: str, subject: str) -> FederatedIdentity | None:
        with self._s.lock:
            return self._s.federated_identities.get((provider_id, subject))

    def list_for_user(self, user_id: str) -> builtins.list[FederatedIdentity]:
        with self._s.lock:
            found = [f for f in self._s.federated_identities.values() if f.user_id == user_id]
        return sorted(found, key=lambda f: (f.created_at, f.provider_id, f.subject))

    def count_for_provider(self, provider_id: str) -> int:
        with self._s.lock:
            rows = self._s.federated_identities.values()
            return sum(1 for f in rows if f.provider_id == provider_id)

    def _check_link(self, identity: FederatedIdentity) -> None:
        """The caller holds the lock and has checked that the user exists."""
        s = self._s
        if identity.provider_id not in s.upstream_providers:
            raise NotFound(f"no provider {identity.provider_id!r}")
        if (identity.provider_id, identity.subject) in s.federated_identities:
            raise Conflict("the upstream account is linked already")

    def link(self, identity: FederatedIdentity) -> None:
        s = self._s
        with s.lock:
            if identity.user_id not in s.users:
                raise NotFound(f"no user {identity.user_id!r}")
            self._check_link(identity)
            s.federated_identities[(identity.provider_id, identity.subject)] = identity

    def create_user(
        self, user: User, identity: FederatedIdentity, group_ids: Sequence[str] = ()
    ) -> None:
        if identity.user_id != user.id:
            raise ValueError("the identity must name the new user")
        s = self._s
        with s.lock:
            # Every check before the first write: nothing is written on a refusal.
            if user.id in s.users:
                raise Conflict(f"user id {user.id!r} is taken")
            name_key = _username_key(user.username)
            if name_key in s.user_ids_by_username:
                raise Conflict(f"username {user.username!r} is taken")
            self._check_link(identity)
            missing = [g for g in group_ids if g not in s.groups]
            if missing:
                raise NotFound(f"no group {missing[0]!r}")
            s.users[user.id] = user
            s.user_ids_by_username[name_key] = user.id
            s.federated_identities[(identity.provider_id, identity.subject)] = identity
            for g in set(group_ids):  # a member more is a change of the group (its SCIM ETag)
                s.group_members[(g, user.id)] = identity.provider_id
                s.bump_group(g, user.created_at)

    def touch(self, provider_id: str, subject: str, email: str | None, now: datetime) -> None:
        s = self._s
        with s.lock:
            found = s.federated_identities.get((provider_id, subject))
            if found is not None:  # unlinked meanwhile: nothing to record
                s.federated_identities[(provider_id, subject)] = replace(
                    found, email=email, last_used_at=now
                )

    def unlink(self, provider_id: str, subject: str) -> None:
        with self._s.lock:
            if self._s.federated_identities.pop((provider_id, subject), None) is None:
                raise NotFound("no such linked identity")


class MemoryStore:
    """Every sub-store of one identity domain, in process memory, behind one lock."""

    def __init__(
        self, domain_id: str = DEFAULT_DOMAIN, domains: MemoryDomains | None = None
    ) -> None:
        state = _State(domain_id)
        self.domains = domains or MemoryDomains(self._sibling)
        self.domains.store(domain_id, self)
        self._state = state
        self.domain_id: str = domain_id
        self.users: UserStore = _Users(state)
        self.clients: ClientStore = _Clients(state)
        self.resources: ResourceStore = _Resources(state)
        self.keys: KeyStore = _Keys(state)
        self.sessions: SessionStore = _Sessions(state)
        self.consents: ConsentStore = _Consents(state)
        self.codes: CodeStore = _Codes(state)
        self.grants: GrantStore = _Grants(state)
        self.refresh_tokens: RefreshTokenStore = _RefreshTokens(state)
        self.revocations: RevocationStore = _Revocations(state)
        self.login_throttle: LoginThrottleStore = _LoginThrottle(state)
        self.audit: AuditStore = _Audit(state)
        self.factors: FactorStore = _Factors(state)
        self.nonces: NonceStore = _Nonces(state)
        self.pushed_requests: PushedRequestStore = _PushedRequests(state)
        self.registration_tokens: RegistrationTokenStore = _RegistrationTokens(state)
        self.trusted_issuers: TrustedIssuerStore = _TrustedIssuers(state)
        self.device_authorizations: DeviceAuthorizationStore = _DeviceAuthorizations(state)
        self.groups: GroupStore = _Groups(state)
        self.roles: RoleStore = _Roles(state)
        self.upstream_providers: UpstreamProviderStore = _UpstreamProviders(state)
        self.federated_identities: FederatedIdentityStore = _FederatedIdentities(state)

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Under the store's one lock; a rollback puts the rows back as they were."""
        s = self._state
        with s.lock:
            before = s.snapshot()
            try:
                yield _UnitOfWork(s)
            except BaseException:
                s.restore(before)
                raise

    def _sibling(self, domain_id: str) -> MemoryStore:
        return MemoryStore(domain_id, self.domains)

    def for_domain(self, domain_id: str) -> MemoryStore:
        return self.domains.store(domain_id)

    def wipe(self) -> int:
        """Delete every row of this domain; return how many there were (the sequence counters
        stay: numbers are never reused)."""
        s = self._state
        with s.lock:
            tables = [getattr(s, name) for name in _ROWS]
            count = sum(len(rows) for rows in tables)
            count += sum(len(times) for times in s.login_failures.values())  # a row each on SQL
            for rows in (*tables, s.user_ids_by_username, s.login_failures):
                rows.clear()
        return count

    def ensure_domain(self, name: str, now: datetime) -> None:
        self.domains.ensure(
            IdentityDomain(
                id=self.domain_id, name=self.domain_id, display_name=name, created_at=now
            )
        )

    def ping(self) -> None:
        if self._state.closed:
            raise StoreUnavailable("the memory store is closed")

    def close(self) -> None:
        self._state.closed = True


if TYPE_CHECKING:

    def _conforms(store: MemoryStore) -> Store:  # mypy checks MemoryStore against `Store`
        return store
