"""Revocation as an administrator or a password change triggers it (docs/security.md rules 18, 25).

Revoking a user ends the user's browser sessions, burns the user's outstanding authorization
codes, revokes every grant (refresh family) and appends a subject cut-off event, so that access
tokens already issued, which resource servers validate locally, are refused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tessera.domain.model import Grant, RevocationKind
from tessera.manage.audit import Actor
from tessera.manage.errors import NotFoundError
from tessera.oauth.retention import kept_until
from tessera.store.protocols import Store

__all__ = [
    "RevokedSummary",
    "revoke_client",
    "revoke_for_resources",
    "revoke_grant",
    "revoke_grants",
    "revoke_subject",
]


@dataclass(frozen=True, slots=True)
class RevokedSummary:
    sessions: int
    grants: int
    event_seq: int


def revoke_subject(store: Store, subject: str, now: datetime) -> RevokedSummary:
    """Revoke every token of a user (or of a client's own client-credentials tokens)."""
    expires = kept_until(RevocationKind.SUBJECT, now)
    seq = store.revocations.append(RevocationKind.SUBJECT, subject, now, expires, now)
    # Outstanding codes die now; one written a moment later is refused at redemption, which
    # compares its issue time with the event above.
    store.codes.burn_for_user(subject, now)
    sessions = store.sessions.end_all_for_user(subject, now)
    # After the event: a redemption that did not see it has written its grant by now.
    grants = store.grants.list_active(now, user_id=subject)
    # Each event kept for the latest of the user's families: longer than needed, never shorter.
    kept = kept_until(RevocationKind.GRANT, now, max([g.absolute_expiry for g in grants] or [now]))
    for grant in grants:
        store.grants.revoke(grant.grant_id, now, kept)
    return RevokedSummary(sessions=sessions, grants=len(grants), event_seq=seq)


def revoke_client(store: Store, client_id: str, now: datetime) -> RevokedSummary:
    """Revoke every grant issued to an app and its client-credentials tokens."""
    expires = kept_until(RevocationKind.SUBJECT, now)
    seq = store.revocations.append(RevocationKind.SUBJECT, client_id, now, expires, now)
    grants = store.grants.list_active(now, client_id=client_id)
    revoke_grants(store, grants, now)
    return RevokedSummary(sessions=0, grants=len(grants), event_seq=seq)


def revoke_for_resources(
    store: Store, user_ids: Iterable[str], resource_ids: Iterable[str], now: datetime
) -> int:
    """Revoke the users' grants whose tokens are for one of the resources (their refresh
    families and, through GRANT events, their access tokens at every resource server): what
    follows a role taken away (docs/groups-and-roles.md). The number of grants revoked."""
    audiences = {r.audience for r in map(store.resources.get, resource_ids) if r is not None}
    if not audiences:
        return 0
    grants = [
        grant
        for user_id in dict.fromkeys(user_ids)
        for grant in store.grants.list_active(now, user_id=user_id)
        if grant.audience in audiences
    ]
    revoke_grants(store, grants, now)
    return len(grants)


def revoke_grants(store: Store, grants: Sequence[Grant], now: datetime) -> None:
    """Revoke each grant (its refresh family, and its access tokens through a GRANT event kept
    until the family would have expired)."""
    for grant in grants:
        kept = kept_until(RevocationKind.GRANT, now, grant.absolute_expiry)
        store.grants.revoke(grant.grant_id, now, kept)


def revoke_grant(store: Store, grant_id: str, now: datetime, actor: Actor) -> None:
    """Revoke one grant: its refresh family and the access tokens issued from it."""
    grant = store.grants.get(grant_id)
    if grant is None:
        raise NotFoundError(f"no grant {grant_id}")
    store.grants.revoke(grant_id, now, kept_until(RevocationKind.GRANT, now, grant.absolute_expiry))
    actor.audit(
        "admin.grant_revoked", user_id=grant.user_id, client_id=grant.client_id, grant_id=grant_id
    )
