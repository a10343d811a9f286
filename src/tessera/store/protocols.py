"""Storage protocols, one per artifact, composed into `Store` (docs/architecture.md, "The parts").

Every store instance is bound to one identity domain. Times are timezone-aware UTC datetimes
passed in by the caller (the store never reads the clock), so tests control time. Every "use
once" operation is a single atomic conditional write, never read-then-write.

Errors: `Conflict` for a uniqueness violation, `NotFound` for an update of a missing row,
`StoreUnavailable` when the database cannot be reached (callers answer 503).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tessera.domain.emails import shared_email_domain
from tessera.domain.identity_domains import IdentityDomain
from tessera.domain.model import (
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

__all__ = [
    "AuditStore",
    "ClientStore",
    "CodeStore",
    "Conflict",
    "ConsentStore",
    "DeviceAuthorizationStore",
    "DomainContent",
    "DomainStore",
    "EmailDomainTaken",
    "ExpiredRows",
    "FactorStore",
    "Failures",
    "FederatedIdentityStore",
    "GrantStore",
    "GroupStore",
    "KeyStore",
    "LoginThrottleStore",
    "NonceStore",
    "NotFound",
    "PushedRequestStore",
    "RefreshTokenStore",
    "RegistrationTokenStore",
    "ResourceStore",
    "RevocationStore",
    "RoleStore",
    "SessionStore",
    "StaleVersion",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TrustedIssuerStore",
    "TxCodes",
    "TxDeviceAuthorizations",
    "TxGrants",
    "TxRefreshTokens",
    "TxRevocations",
    "TxUsers",
    "UnitOfWork",
    "UpstreamProviderStore",
    "UserStore",
]


class StoreError(Exception):
    """Base of the store's errors."""


class Conflict(StoreError):
    """A uniqueness rule was violated (duplicate username, client id, audience…)."""


class EmailDomainTaken(Conflict):
    """An e-mail domain of the provider already sends users to another of the domain's
    providers: home-realm discovery sends each e-mail domain to one provider."""

    def __init__(self, email_domain: str, provider_name: str) -> None:
        super().__init__(
            f"the e-mail domain {email_domain} already sends users to the provider "
            f"{provider_name!r}"
        )

    @classmethod
    def check(cls, provider: UpstreamProvider, others: Iterable[UpstreamProvider]) -> None:
        """Raised when `provider` has an e-mail domain of another of `others`."""
        shared = shared_email_domain(provider, others)
        if shared is not None:
            raise cls(shared[0], shared[1].name)


class NotFound(StoreError):
    """The row to update or delete does not exist."""


class StoreUnavailable(StoreError):
    """The database cannot be reached; nothing was written."""


class StaleVersion(StoreError):
    """The row changed since the caller read it (its `version` is not the expected one: a
    SCIM `If-Match` precondition, RFC 7644 §3.14); nothing was written."""


class TxUsers(Protocol):
    """What a unit of work reads of users."""

    def get(self, user_id: str) -> User | None: ...


class UserStore(TxUsers, Protocol):
    def add(self, user: User) -> None:
        """Insert; `Conflict` if the id or the username (case-insensitively) is taken."""

    def find_by_email(self, email: str) -> list[User]:
        """The users with this e-mail address (compared case-insensitively), by username; not
        unique, and not indexed: for rare lookups such as a password-reset request."""

    def get_by_username(self, username: str) -> User | None:
        """Case-insensitive lookup."""

    def list(self) -> list[User]:
        """All users, ordered by username."""

    def update(self, user: User, *, expected_version: int | None = None) -> None:
        """Replace the row with the same id, adding one to the stored `version` (whatever
        `user.version` says); `NotFound` if missing, `Conflict` if the new username is taken,
        `StaleVersion` when `expected_version` is given and the stored row's `version` is
        another (the check and the write are one statement)."""

    def delete(self, user_id: str) -> None:
        """Delete the user's row, factors, group memberships, role grants and linked upstream
        identities (`FederatedIdentityStore`); `NotFound` if missing."""


class GroupStore(Protocol):
    """Groups and their members (users of the domain; groups do not nest)."""

    def add(self, group: Group, members: Sequence[str] = ()) -> None:
        """Insert with its members; `Conflict` if the id or the name (case-insensitively) is
        taken, `NotFound` if a member is not a user of the domain (nothing written)."""

    def get(self, group_id: str) -> Group | None: ...

    def get_by_name(self, name: str) -> Group | None:
        """Case-insensitive lookup."""

    def list(self) -> builtins.list[Group]:
        """All groups, ordered by name."""

    def members(self, group_id: str) -> builtins.list[str]:
        """The member user ids of a group, sorted."""

    def memberships(self) -> builtins.list[tuple[str, str]]:
        """Every (group id, user id) pair of the domain (listing users with their groups)."""

    def groups_of(self, user_id: str) -> builtins.list[Group]:
        """The groups a user is a member of, ordered by name."""

    def update(
        self,
        group: Group,
        members: Sequence[str] | None = None,
        *,
        expected_version: int | None = None,
    ) -> None:
        """Replace the group's row (the caller sets `updated_at`; the stored `version` goes
        up by one) and, when `members` is given, its members (a membership that stays keeps
        who made it), in one transaction. `NotFound` if the group or a member is missing,
        `Conflict` if the name is taken, `StaleVersion` as for users."""

    def change_members(
        self, group_id: str, add: Sequence[str], remove: Sequence[str], now: datetime
    ) -> Group:
        """Add and remove members (removing a non-member does nothing; adding a member again
        makes the membership the administrator's: no provider's sign-in ends it), bump the
        version and `updated_at`, in one transaction; the group as stored. `NotFound` if the
        group or a user to add is missing."""

    def delete(self, group_id: str, *, expected_version: int | None = None) -> None:
        """Delete with its memberships and the roles granted to it; `NotFound`,
        `StaleVersion`."""

    def made_by_provider(self, user_id: str, provider_id: str) -> builtins.list[str]:
        """The ids of the groups whose membership of `user_id` a sign-in through the upstream
        provider made (and no administrator has added since), sorted."""

    def provider_memberships(
        self,
        user_id: str,
        provider_id: str,
        join: Sequence[str],
        leave: Sequence[str],
        now: datetime,
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """A sign-in through the upstream provider: the user joins the groups of `join` it is
        not in (memberships the provider made) and leaves those of `leave` whose membership
        the provider made (one an administrator added stays); each changed group's version
        goes up; one transaction. The groups joined and left, sorted; a group deleted
        meanwhile is skipped. `NotFound` if the user is missing."""


class RoleStore(Protocol):
    """Application roles granted to users, groups and apps (a resource declares its roles)."""

    def grant(self, grant: RoleGrant) -> bool:
        """Record the grant; False when the principal already has the role."""

    def revoke(self, resource_id: str, role: str, kind: PrincipalKind, principal_id: str) -> bool:
        """False when there was no such grant."""

    def list(
        self,
        resource_id: str | None = None,
        principal: tuple[PrincipalKind, str] | None = None,
    ) -> builtins.list[RoleGrant]:
        """Grants, optionally of one resource and/or one principal, ordered by resource,
        role, principal kind and id."""

    def roles_of_user(self, user_id: str, resource_id: str) -> tuple[str, ...]:
        """The user's roles on the resource, granted to them or to a group they are in;
        sorted, each once. One indexed query: it runs for every token of a resource with
        roles."""

    def roles_of_app(self, client_id: str, resource_id: str) -> tuple[str, ...]:
        """The roles granted to the app itself, sorted."""


class ClientStore(Protocol):
    def add(self, client: Client) -> None:
        """Insert; `Conflict` if the client id or the name is taken."""

    def get(self, client_id: str) -> Client | None: ...

    def list(self) -> list[Client]:
        """All clients, ordered by name."""

    def update(self, client: Client) -> None:
        """Replace the row with the same client id; `NotFound` if missing. The caller bumps
        `version`."""

    def delete(self, client_id: str) -> None:
        """`NotFound` if missing; the roles granted to the app go with it."""

    def swap_registration_token(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace the app's registration access token hash `old_hash` with `new_hash` and bump
        `version`, in one conditional write that touches nothing else (RFC 7592 §3: a token
        rotated on a read); False when the app is gone or its hash is no longer `old_hash`."""


class ResourceStore(Protocol):
    def add(self, resource: Resource) -> None:
        """Insert; `Conflict` if the id, the name or the audience is taken."""

    def get(self, resource_id: str) -> Resource | None: ...

    def get_by_audience(self, audience: str) -> Resource | None:
        """Exact lookup of the registered audience string."""

    def list(self) -> list[Resource]:
        """All resources, ordered by name."""

    def update(self, resource: Resource) -> None:
        """Replace the row with the same id; `NotFound` if missing, `Conflict` if the name or
        the audience is another resource's."""

    def delete(self, resource_id: str) -> None:
        """`NotFound` if missing; the grants of its roles go with it."""


class KeyStore(Protocol):
    def add(self, key: SigningKey) -> None:
        """Insert; `Conflict` if the kid is taken."""

    def list(self) -> list[SigningKey]:
        """All keys, oldest first."""

    def replace_states(self, keys: Sequence[SigningKey]) -> None:
        """Update state, activated_at and retire_after of the given keys in one transaction."""

    def delete(self, kid: str) -> None:
        """Remove a key (a retired key past `retire_after`). Missing: no error."""


class SessionStore(Protocol):
    def add(self, session: BrowserSession) -> None: ...

    def get(self, id_hash: str) -> BrowserSession | None:
        """The session, also when ended or expired: the caller checks."""

    def end(self, id_hash: str, now: datetime) -> None:
        """Set `ended_at` if not yet set."""

    def end_all_for_user(self, user_id: str, now: datetime) -> int:
        """End every open session of the user; return how many."""

    def list_for_user(self, user_id: str, now: datetime) -> list[BrowserSession]:
        """Open, unexpired sessions of the user, newest first."""

    def purge(self, now: datetime) -> int:
        """Delete sessions that ended or expired by `now`; return how many."""

    def authenticated(
        self, id_hash: str, amr: tuple[str, ...], auth_time: datetime, now: datetime
    ) -> bool:
        """Record a further authentication of an open session (a second factor, a step-up):
        set its `amr` and `auth_time`; False when the session ended or expired by `now`."""


class FactorStore(Protocol):
    """A user's second factors: passkeys, an authenticator app (TOTP), recovery codes.

    The "use once" steps (`use_passkey`, `use_totp_step`, `use_recovery_code`) are single
    conditional writes: of two concurrent uses of one code or one assertion, one wins.
    Deleting a user deletes the user's factors."""

    def add_passkey(self, passkey: Passkey) -> None:
        """`Conflict` when the credential id is registered in the domain already."""

    def passkey(self, credential_id: str) -> Passkey | None: ...

    def passkeys_for(self, user_id: str) -> list[Passkey]:
        """Oldest first."""

    def use_passkey(
        self, credential_id: str, seen_count: int, new_count: int, now: datetime
    ) -> bool:
        """Store `new_count` and `last_used_at` if the stored count is still `seen_count`
        (W3C WebAuthn §6.1.1: a counter that does not move forward is left to the caller)."""

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool: ...

    def remove_passkey(self, user_id: str, credential_id: str) -> bool: ...

    def totp(self, user_id: str) -> TotpFactor | None: ...

    def put_totp(self, factor: TotpFactor) -> None:
        """Store the user's factor (set up with its first code: `confirmed_at` and `last_step`
        set), in one write; `Conflict` over a confirmed one."""

    def use_totp_step(self, user_id: str, step: int) -> bool:
        """Accept a code of time step `step` once: set `last_step` if it is below `step`."""

    def remove_totp(self, user_id: str) -> bool: ...

    def replace_recovery_codes(self, user_id: str, hashes: Sequence[str], now: datetime) -> None:
        """Drop the user's codes and store new ones, in one transaction (a repeated hash is
        `Conflict` and nothing changes)."""

    def use_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        """Mark an unused code used; False when unknown or used."""

    def recovery_codes(self, user_id: str) -> list[RecoveryCode]:
        """Ordered by `created_at`, then `code_hash`."""

    def remove_all(self, user_id: str) -> int:
        """Remove every factor of the user (an administrator's reset); return how many rows."""


class NonceStore(Protocol):
    """Values accepted once within their lifetime, shared by every node: WebAuthn challenges,
    password-reset links, and assertion `jti`s."""

    def use_once(self, key: str, expires_at: datetime, now: datetime) -> bool:
        """Record `key` until `expires_at`; False when it is recorded and not yet expired.
        `key` is at most 200 characters (`ValueError`): callers hash longer values."""

    def purge(self, now: datetime) -> int: ...


class PushedRequestStore(Protocol):
    """RFC 9126 pushed authorization requests, shared by every node."""

    def add(self, request: PushedRequest) -> None: ...

    def take(self, uri_hash: str, client_id: str, now: datetime) -> PushedRequest | None:
        """Mark the request used and return it, in one atomic write (RFC 9126 §4: once, only
        by the client that pushed it, before it expires). None when it is unknown, used,
        expired or another client's; another client's attempt does not use it up."""

    def purge(self, now: datetime) -> int:
        """Delete the expired requests; return how many."""


class DeviceAuthorizationStore(Protocol):
    """RFC 8628 device authorization requests, shared by every node (`oauth/device.py`)."""

    def add(self, authorization: DeviceAuthorization) -> None:
        """`Conflict` when its user code hash is taken (the caller draws another code)."""

    def get(self, device_code_hash: str) -> DeviceAuthorization | None: ...

    def find(self, user_code_hash: str) -> DeviceAuthorization | None:
        """The request with this user code (live or not, until housekeeping deletes it)."""

    def poll(self, device_code_hash: str, seen_polls: int, interval: int, now: datetime) -> bool:
        """Record a poll of a pending request: `last_polled_at = now`, the interval, `polls`
        + 1, only while `polls` is still `seen_polls` (compare-and-set): False when another
        poll or the user's decision came first."""

    def decide(
        self,
        user_code_hash: str,
        decided: DeviceAuthorization,
        now: datetime,
    ) -> bool:
        """Set the status and the deciding user, session, `auth_time` and `amr` of `decided`,
        in one conditional write: only a pending request before it expires; False otherwise."""

    def purge(self, now: datetime) -> int:
        """Delete the expired requests; return how many."""


class RegistrationTokenStore(Protocol):
    """RFC 7591 §3 initial access tokens."""

    def add(self, token: RegistrationToken) -> None: ...

    def get(self, token_id: str) -> RegistrationToken | None: ...

    def find(self, token_hash: str) -> RegistrationToken | None:
        """The token with this hash (usable or not), by one indexed lookup."""

    def list(self) -> list[RegistrationToken]:
        """All tokens, newest first."""

    def use(self, token_hash: str, now: datetime) -> RegistrationToken | None:
        """Count one use of the token with this hash and return it as it is after the use, in
        one atomic write; None when no such token is usable (`RegistrationToken.usable`):
        concurrent registrations never exceed `max_uses`."""

    def revoke(self, token_id: str, now: datetime) -> None:
        """`NotFound` if there is no such token; revoking twice keeps the first time."""

    def purge(self, now: datetime) -> int:
        """Delete the tokens expired or revoked before `now`; return how many."""


class TrustedIssuerStore(Protocol):
    """RFC 7523 §2.1 assertion issuers trusted by the domain; `issuer` is unique (`Conflict`)."""

    def add(self, issuer: TrustedIssuer) -> None: ...

    def get(self, issuer_id: str) -> TrustedIssuer | None: ...

    def find(self, issuer: str) -> TrustedIssuer | None:
        """The trusted issuer whose `issuer` is exactly this string (one indexed lookup)."""

    def list(self) -> list[TrustedIssuer]:
        """All, by issuer."""

    def update(self, issuer: TrustedIssuer) -> None:
        """Replace the row of `issuer.id`: `NotFound` if there is none, `Conflict` if another
        row has its `issuer`."""

    def delete(self, issuer_id: str) -> None:
        """`NotFound` if there is no such row."""


class UpstreamProviderStore(Protocol):
    """The domain's upstream OpenID Connect providers (docs/federation.md); `name` is unique
    (case-insensitively, `Conflict`), and so is each of their `email_domains` across the
    domain's providers (`EmailDomainTaken`, checked in the write's transaction)."""

    def add(self, provider: UpstreamProvider) -> None: ...

    def get(self, provider_id: str) -> UpstreamProvider | None: ...

    def get_by_name(self, name: str) -> UpstreamProvider | None:
        """Case-insensitive lookup (one indexed query)."""

    def list(self) -> builtins.list[UpstreamProvider]:
        """All, by name."""

    def update(self, provider: UpstreamProvider) -> None:
        """Replace the row of `provider.id`, adding one to the stored `version`: `NotFound` if
        there is none, `Conflict` if another row has its name or one of its e-mail domains."""

    def delete(self, provider_id: str) -> None:
        """Delete the provider and every identity linked through it (the users stay, and
        the memberships its sign-ins made become ordinary ones); `NotFound` if there is no
        such row."""


class FederatedIdentityStore(Protocol):
    """Links between upstream accounts and local users; (`provider_id`, `subject`) is unique."""

    def get(self, provider_id: str, subject: str) -> FederatedIdentity | None:
        """One indexed lookup (the primary key)."""

    def list_for_user(self, user_id: str) -> builtins.list[FederatedIdentity]:
        """The user's linked identities, oldest first."""

    def count_for_provider(self, provider_id: str) -> int: ...

    def link(self, identity: FederatedIdentity) -> None:
        """Insert; `Conflict` if the upstream account is linked already, `NotFound` if the
        user or the provider is gone."""

    def create_user(
        self, user: User, identity: FederatedIdentity, group_ids: Sequence[str] = ()
    ) -> None:
        """A just-in-time account: the user, the link and the user's memberships of
        `group_ids` (made by the identity's provider) in ONE transaction; `Conflict` (nothing
        written) when the username is taken or the upstream account is linked already."""

    def touch(self, provider_id: str, subject: str, email: str | None, now: datetime) -> None:
        """Record a sign-in through the link (`last_used_at`, the upstream e-mail)."""

    def unlink(self, provider_id: str, subject: str) -> None:
        """`NotFound` if there is no such link."""


class ConsentStore(Protocol):
    def get(self, user_id: str, client_id: str) -> Consent | None:
        """The consent, also when revoked: the caller checks."""

    def put(self, consent: Consent) -> None:
        """Insert or replace the consent of (user_id, client_id)."""

    def revoke(self, user_id: str, client_id: str, now: datetime) -> bool:
        """Set `revoked_at` on an unrevoked consent; True if one was revoked."""

    def list_for_user(self, user_id: str) -> list[Consent]:
        """Unrevoked consents of the user."""


class TxCodes(Protocol):
    def consume(self, code_hash: str, now: datetime) -> tuple[AuthorizationCode | None, bool]:
        """Atomically mark the code consumed if it is unconsumed and unexpired: one conditional
        `UPDATE … RETURNING` (docs/architecture.md, "Data model").

        Returns `(code, True)` to the one winner, `(code, False)` when the code exists but was
        already consumed or has expired (the caller detects replay from `consumed_at`), and
        `(None, False)` for an unknown code.
        """


class CodeStore(TxCodes, Protocol):
    def add(self, code: AuthorizationCode) -> None: ...

    def burn_for_user(self, user_id: str, now: datetime) -> int:
        """Mark every unconsumed code of the user consumed (a revocation of the user); return
        how many."""

    def purge(self, now: datetime) -> int:
        """Delete expired codes; return how many."""


class TxDeviceAuthorizations(Protocol):
    def redeem(
        self, device_code_hash: str, client_id: str, now: datetime
    ) -> DeviceAuthorization | None:
        """Mark an approved, unexpired, unredeemed request of `client_id` redeemed, in one
        conditional write; the one winner gets the request, everyone else None."""


class TxGrants(Protocol):
    def start(self, grant: Grant, refresh_token: RefreshToken | None) -> None:
        """Insert a grant and its first refresh token (in one transaction).

        If a GRANT revocation event for this grant id already exists (a replayed code revoked
        it before it was written), the grant is inserted revoked at that event's time.
        """

    def get(self, grant_id: str) -> Grant | None: ...

    def revoke(self, grant_id: str, now: datetime, event_expires_at: datetime) -> bool:
        """In one transaction: set `revoked_at` if unset and append a GRANT revocation event.

        True if this call revoked it; False if it was already revoked or is unknown (an event is
        still appended for an unknown id, so tokens with that `sid` are refused)."""


class GrantStore(TxGrants, Protocol):
    def list_active(
        self, now: datetime, *, user_id: str | None = None, client_id: str | None = None
    ) -> list[Grant]:
        """Unrevoked grants not past their absolute expiry, newest first."""


class TxRefreshTokens(Protocol):
    """The primitives of a rotation (RFC 9700 §4.14.2); the rule that picks among them is
    `tessera.oauth.grants.refresh_token`."""

    def get(self, token_hash: str) -> RefreshToken | None: ...

    def use_for_client(
        self, token_hash: str, successor_hash: str, client_id: str, now: datetime
    ) -> tuple[RefreshToken, Grant] | None:
        """The common rotation in one conditional write: mark the token used (recording its
        successor's hash) if it is unused and unexpired and its grant is `client_id`'s,
        unrevoked and not past its absolute expiry. The one winner gets the token as marked and
        its grant; anyone else None (nothing written)."""

    def use(self, token_hash: str, successor_hash: str, now: datetime) -> bool:
        """Mark the token used (recording its successor) if it is unused and unexpired; True
        for the one winner. The caller checked its grant in this unit of work."""

    def with_grant(self, token_hash: str) -> tuple[RefreshToken | None, Grant | None]:
        """The token as it is now and its grant (None, None for an unknown token)."""

    def unused(self, token_hash: str) -> bool:
        """The token exists and is unused. On PostgreSQL the row is locked until the unit of
        work ends, so its use waits for the caller's answer."""

    def add(self, token: RefreshToken) -> None:
        """Insert a token (a successor); `Conflict` if the hash is taken."""


class RefreshTokenStore(Protocol):
    def get(self, token_hash: str) -> RefreshToken | None: ...

    def purge(self, now: datetime) -> int:
        """Delete refresh tokens that expired (inactivity) or whose grant ended (revoked or
        past its absolute expiry) by `now`."""


class TxRevocations(Protocol):
    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        """Append an event; return its sequence number (strictly increasing)."""

    def cut_off_after(self, subject: str, issued_at: datetime) -> bool:
        """A SUBJECT revocation of `subject` came after `issued_at` (a password change or an
        administrator's revocation). Serialised with revocation writes: a revocation committed
        later waits for this unit of work, and then sees what it wrote (docs/security.md rule
        31)."""


class RevocationStore(Protocol):
    def append(
        self,
        kind: RevocationKind,
        key: str,
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        """Append an event; return its sequence number (strictly increasing)."""

    def since(self, seq: int, limit: int = 1000) -> list[RevocationEvent]:
        """Events with a sequence number above `seq`, ascending."""

    def last_seq(self) -> int:
        """The highest sequence number, 0 when there is none."""

    async def last_seq_async(self) -> int:
        """`last_seq` for the event loop: never blocks it on network I/O."""

    def purge(self, now: datetime) -> int:
        """Delete events whose `expires_at` has passed."""


@dataclass(frozen=True, slots=True)
class Failures:
    """The failed sign-ins of one throttle key within a window, and the latest one's time."""

    count: int
    last: datetime | None


class LoginThrottleStore(Protocol):
    def failures(self, key: str, since: datetime) -> int:
        """Failed attempts recorded for `key` at or after `since`."""

    def recent(self, keys: Sequence[str], since: datetime) -> dict[str, Failures]:
        """The failures of several keys at or after `since`, with the latest time of each, at
        once (one round trip); every key is in the answer (`Failures(0, None)` if none)."""

    def record_failure(self, key: str, now: datetime) -> None: ...

    def clear(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""

    def purge(self, before: datetime) -> int: ...


class AuditStore(Protocol):
    def append(self, events: Sequence[AuditEvent]) -> None: ...

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
        """Newest first; `before_id` pages backwards."""


class UnitOfWork(Protocol):
    """The stores a unit of work may use, bound to its one transaction. Nothing else (another
    store method, the clock, a cache that reads the database) is called inside it."""

    @property
    def users(self) -> TxUsers: ...

    @property
    def codes(self) -> TxCodes: ...

    @property
    def grants(self) -> TxGrants: ...

    @property
    def refresh_tokens(self) -> TxRefreshTokens: ...

    @property
    def revocations(self) -> TxRevocations: ...

    @property
    def device_authorizations(self) -> TxDeviceAuthorizations: ...


@dataclass(frozen=True, slots=True)
class DomainContent:
    """What a new domain starts with, written with its row in one transaction."""

    keys: Sequence[SigningKey] = ()
    resources: Sequence[Resource] = ()
    clients: Sequence[Client] = ()
    users: Sequence[User] = ()


@dataclass(frozen=True, slots=True)
class ExpiredRows:
    """How many expired rows housekeeping deleted, across every domain."""

    codes: int = 0
    refresh_tokens: int = 0
    revocation_events: int = 0
    sessions: int = 0
    login_failures: int = 0
    signing_keys: int = 0
    nonces: int = 0
    pushed_requests: int = 0
    registration_tokens: int = 0
    device_authorizations: int = 0


class DomainStore(Protocol):
    """The deployment's identity domains. Not bound to one domain: operators' tools and the
    node's routing use it. Names and hosts are unique (`Conflict`)."""

    def get(self, domain_id: str) -> IdentityDomain | None: ...

    def get_by_name(self, name: str) -> IdentityDomain | None: ...

    def get_by_host(self, host: str) -> IdentityDomain | None: ...

    def list(self, *, after: str | None = None, limit: int = 100) -> list[IdentityDomain]:
        """Domains in name order, after the name `after` (keyset pagination)."""

    def count(self) -> int: ...

    def create(self, domain: IdentityDomain, content: DomainContent) -> None:
        """The domain's row and its first objects, in one transaction."""

    def update(self, domain: IdentityDomain) -> None:
        """Store `domain`, whose `version` is one more than the stored one; `NotFound` when
        the domain is gone or was changed meanwhile."""

    def purge_data(self, domain_id: str, batch: int) -> int:
        """Delete up to `batch` rows of the domain's data, table after table, children first;
        return how many (0 when nothing is left). Each call is its own short transaction."""

    def delete(self, domain_id: str) -> bool:
        """Delete the domain's row (after `purge_data` has emptied it)."""

    def purge_expired(self, now: datetime, login_before: datetime, batch: int) -> ExpiredRows:
        """Housekeeping for every domain at once: delete expired codes, refresh tokens,
        revocation events, sessions, login failures before `login_before`, retired keys past
        their time, use-once values past their `expires_at`, expired pushed requests,
        expired or revoked registration tokens and expired device authorizations, in
        statements of at most `batch` rows (flat in the number of domains: each delete
        selects by an index on an expiry column, not a walk over the domains)."""


class Store(Protocol):
    """Everything an identity domain persists."""

    # Read-only properties, so implementations may hold their own concrete classes.
    @property
    def domain_id(self) -> str: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def clients(self) -> ClientStore: ...

    @property
    def resources(self) -> ResourceStore: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def consents(self) -> ConsentStore: ...

    @property
    def codes(self) -> CodeStore: ...

    @property
    def grants(self) -> GrantStore: ...

    @property
    def refresh_tokens(self) -> RefreshTokenStore: ...

    @property
    def revocations(self) -> RevocationStore: ...

    @property
    def login_throttle(self) -> LoginThrottleStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def factors(self) -> FactorStore: ...

    @property
    def nonces(self) -> NonceStore: ...

    @property
    def pushed_requests(self) -> PushedRequestStore: ...

    @property
    def registration_tokens(self) -> RegistrationTokenStore: ...

    @property
    def trusted_issuers(self) -> TrustedIssuerStore: ...

    @property
    def device_authorizations(self) -> DeviceAuthorizationStore: ...

    @property
    def groups(self) -> GroupStore: ...

    @property
    def roles(self) -> RoleStore: ...

    @property
    def upstream_providers(self) -> UpstreamProviderStore: ...

    @property
    def federated_identities(self) -> FederatedIdentityStore: ...

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """One unit of work: the small stores it yields act in ONE transaction, committed when
        the block ends normally and rolled back when it raises (docs/architecture.md,
        "Requests, from the wire to the database")."""

    @property
    def domains(self) -> DomainStore: ...

    def for_domain(self, domain_id: str) -> Store:
        """The same database bound to another domain (sharing connections and listeners)."""

    def ensure_domain(self, name: str, now: datetime) -> None:
        """Create this store's domain row if missing."""

    def ping(self) -> None:
        """Raise `StoreUnavailable` when the database cannot be reached."""

    def close(self) -> None: ...
