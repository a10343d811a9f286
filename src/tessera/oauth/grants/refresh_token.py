"""The refresh token grant: RFC 6749 §6, with rotation and replay detection (RFC 9700 §4.14.2;
docs/security.md rules 16-18). The whole rule is in this module:

- every use rotates: the presented token is marked used and its successor is inserted, in the
  presented token's family (grant), never outliving the family's absolute expiry;
- the successor is derived from the presented token (HMAC), so a retry of a lost response asks
  for the same one, and gets it while inside the grace window AND while nobody has used it;
- any other reuse of a used token is a replay and revokes the family;
- a token of another app, an unknown or expired token, or one of a revoked or ended family is
  refused without a write; a narrower `scope` may be asked for, never a wider one (RFC 6749 §6);
- a family bound to a DPoP key (a public app's, RFC 9449 §5) is used only with a proof made
  with that key; any other request is refused without a write (its unit of work rolls back),
  so a thief without the key cannot burn the holder's token.

`refresh_outcome` decides over what was read; `rotate` reads and writes in one unit of work:
the common case is one conditional UPDATE (use the token if unused, for this client, its grant
live) and one INSERT; anything else reads the token, its grant and its successor, and decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import Client, Grant, RefreshToken, Resource, User
from tessera.domain.scopes import UnknownScope, parse_scope_param, resolve_scope
from tessera.oauth import errors
from tessera.oauth.grants.policy import TokenPolicy
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse
from tessera.store.protocols import Store, UnitOfWork

__all__ = [
    "RefreshState",
    "RefreshTokenGrant",
    "RotateOutcome",
    "RotateResult",
    "dpop_binding_holds",
    "first_refresh_token",
    "refresh_outcome",
    "rotate",
    "successor_of",
]

_UNUSABLE = "unknown, expired or revoked refresh token"


class RotateOutcome(StrEnum):
    ROTATED = "rotated"  # unused and live: rotate it (when written: the successor stands)
    RETRY = "retry"  # a retry inside the grace window: the same successor stands
    REPLAY = "replay"  # used before, not a retry: the family is revoked
    INVALID = "invalid"  # unknown, expired, or of a revoked or ended family
    FOREIGN = "foreign"  # issued to another app: nothing is written


@dataclass(frozen=True, slots=True)
class RefreshState:
    """What `rotate` read in its unit of work, and what the request asks for."""

    token: RefreshToken | None  # the presented token as it is now
    grant: Grant | None  # its family
    client_id: str  # the authenticated app
    now: datetime
    grace_seconds: float
    successor_hash: str  # the successor this request derives
    successor_unused: bool  # that successor exists and nobody has used it


def refresh_outcome(state: RefreshState) -> RotateOutcome:
    """RFC 9700 §4.14.2 over the state read: what to do with the presented token."""
    token, grant = state.token, state.grant
    if token is None or grant is None:
        return RotateOutcome.INVALID
    if grant.client_id != state.client_id:
        return RotateOutcome.FOREIGN  # RFC 6749 §6: bound to the app it was issued to
    if grant.revoked_at is not None or grant.absolute_expiry <= state.now:
        return RotateOutcome.INVALID
    if token.used_at is None:
        if token.expires_at <= state.now:  # inactivity expiry
            return RotateOutcome.INVALID
        return RotateOutcome.ROTATED
    in_grace = state.now - token.used_at < timedelta(seconds=state.grace_seconds)
    if in_grace and token.successor_hash == state.successor_hash and state.successor_unused:
        # A lost response: the same successor, only while nobody has used it.
        return RotateOutcome.RETRY
    # Used tokens are reuse first (also when expired since): someone else holds the family.
    return RotateOutcome.REPLAY


@dataclass(frozen=True, slots=True)
class RotateResult:
    outcome: RotateOutcome
    token: RefreshToken | None = None  # the presented token
    grant: Grant | None = None


def rotate(
    work: UnitOfWork,
    token_hash: str,
    successor: RefreshToken,
    client_id: str,
    now: datetime,
    grace_seconds: float,
    event_expires_at: datetime,
) -> RotateResult:
    """Rotate the presented token inside `work`; a REPLAY has revoked the family (its event
    kept until `event_expires_at`). The successor joins the presented token's grant."""
    tokens = work.refresh_tokens
    used = tokens.use_for_client(token_hash, successor.token_hash, client_id, now)
    if used is not None:  # the common case: one conditional UPDATE did it
        tokens.add(_in_family(successor, used[1]))
        return RotateResult(RotateOutcome.ROTATED, *used)
    for _ in range(2):  # a second round only after losing a race to use the token
        token, grant = tokens.with_grant(token_hash)
        # Read only for a used token (a retry), under a row lock on PostgreSQL, so the
        # successor's use waits for this answer.
        unused = (
            token is not None and token.used_at is not None and tokens.unused(successor.token_hash)
        )
        state = RefreshState(
            token, grant, client_id, now, grace_seconds, successor.token_hash, unused
        )
        outcome = refresh_outcome(state)
        if outcome is RotateOutcome.ROTATED:
            assert token is not None and grant is not None
            if tokens.use(token_hash, successor.token_hash, now):
                tokens.add(_in_family(successor, grant))
                marked = replace(token, used_at=now, successor_hash=successor.token_hash)
                return RotateResult(outcome, marked, grant)
            continue  # used by someone else since we read it: read again
        if outcome is RotateOutcome.REPLAY:
            assert grant is not None
            work.grants.revoke(grant.grant_id, now, event_expires_at)
        return RotateResult(outcome, token, grant)
    return RotateResult(RotateOutcome.INVALID)  # unreachable: a used token is not ROTATED


def _in_family(successor: RefreshToken, grant: Grant) -> RefreshToken:
    """The successor in the grant, capped by the grant's absolute expiry."""
    expires_at = min(successor.expires_at, grant.absolute_expiry)
    return replace(successor, grant_id=grant.grant_id, expires_at=expires_at)


def successor_of(presented: str, key: bytes) -> str:
    """Derived, not random: a retry of the same refresh gets the same successor."""
    digest = hmac.new(key, presented.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def first_refresh_token(
    value: str, grant: Grant, client: Client, now: datetime, policy: TokenPolicy
) -> RefreshToken:
    """The first token of a new family: the app's inactivity lifetime, within the family's."""
    return RefreshToken(
        token_hash=sha256_b64(value),
        grant_id=grant.grant_id,
        issued_at=now,
        expires_at=min(now + policy.refresh_inactivity(client), grant.absolute_expiry),
    )


class _OtherKey(Exception):
    """Raised inside the unit of work to roll back a rotation the request may not make."""


def dpop_binding_holds(grant: Grant, dpop_jkt: str | None) -> bool:
    """RFC 9449 §5: the binding of a public app's refresh token "MUST be validated": a bound
    family needs a proof with its key (the RFC names no error code; the refresh token is
    what does not hold, so the refusal is `invalid_grant`, as for a token of another app)."""
    return grant.dpop_jkt is None or grant.dpop_jkt == dpop_jkt


class RefreshTokenGrant:
    def __init__(
        self,
        store: Store,
        minter: TokenMinter,
        policy: TokenPolicy,
        refresh_key: bytes,
        lookup_user: Callable[[str], User | None],
        lookup_resource: Callable[[str], Resource | None],
    ) -> None:
        self._store = store
        self._minter = minter
        self._policy = policy
        self._key = refresh_key
        self._lookup_user = lookup_user
        self._lookup_resource = lookup_resource

    def handle(self, request: TokenRequest) -> TokenResponse:
        client, form, now = request.client, request.form, request.now
        presented = form.get("refresh_token")
        if not presented:
            raise errors.InvalidRequest("refresh_token is required")
        if len(presented) > 256:
            raise errors.InvalidGrant(_UNUSABLE)
        token_hash = sha256_b64(presented)
        requested = self._requested_scopes(token_hash, client, form.get("scope"))
        successor_value = successor_of(presented, self._key)
        successor = RefreshToken(
            token_hash=sha256_b64(successor_value),
            grant_id="",  # `rotate` puts it in the presented token's grant
            issued_at=now,
            expires_at=now + self._policy.refresh_inactivity(client),
            parent_hash=token_hash,
        )
        expires = self._policy.family_event_expiry(now)
        grace = self._policy.refresh_grace_seconds
        try:
            with self._store.transaction() as work:
                result = rotate(work, token_hash, successor, client.client_id, now, grace, expires)
                usable = result.outcome in (RotateOutcome.ROTATED, RotateOutcome.RETRY)
                if (
                    usable
                    and result.grant
                    and not dpop_binding_holds(result.grant, request.dpop_jkt)
                ):
                    raise _OtherKey
        except _OtherKey:
            raise errors.InvalidGrant(
                "the refresh token is bound to another DPoP key: send a proof made with it"
            ) from None
        grant = result.grant
        if result.outcome is RotateOutcome.FOREIGN:
            raise errors.InvalidGrant("the refresh token was issued to another app")
        if result.outcome is RotateOutcome.REPLAY:
            debug = "reuse of a rotated refresh token: its family is revoked"
            raise errors.InvalidGrant(_UNUSABLE, debug=debug)
        if result.outcome not in (RotateOutcome.ROTATED, RotateOutcome.RETRY) or grant is None:
            raise errors.InvalidGrant(_UNUSABLE)
        user = self._lookup_user(grant.user_id)
        if user is None or not user.active:
            raise errors.InvalidGrant("the user is no longer active")
        narrowed = replace(grant, scopes=requested or grant.scopes)
        return self._minter.for_user(request, narrowed, user, successor_value, None)

    def _requested_scopes(
        self, token_hash: str, client: Client, requested: str | None
    ) -> tuple[str, ...] | None:
        """RFC 6749 §6: the new scope MUST NOT include any scope not originally granted. Read
        before the rotation (the rare path), so that a bad scope burns nothing."""
        if requested is None:
            return None
        current = self._store.refresh_tokens.get(token_hash)
        grant = self._store.grants.get(current.grant_id) if current else None
        if grant is None or grant.client_id != client.client_id:
            raise errors.InvalidGrant(_UNUSABLE)
        resources = [r for r in [self._lookup_resource(grant.audience or "")] if r]
        try:
            canonical = tuple(
                resolve_scope(t, resources).canonical for t in parse_scope_param(requested)
            )
        except (ValueError, UnknownScope):
            raise errors.InvalidScope("scope exceeds what was granted") from None
        if not canonical or not set(canonical) <= set(grant.scopes):
            raise errors.InvalidScope("scope exceeds what was granted")
        return canonical
