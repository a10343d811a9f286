"""A user's grant, started in the unit of work that checks the user (docs/architecture.md,
"Requests, from the wire to the database"; docs/security.md rules 31, 55, 56, 58).

The grants that act for a user (a code's redemption, RFC 6749 §4.1.3; an approved device
request, RFC 8628 §3.5; a partner's assertion, RFC 7523 §3; a token exchange, RFC 8693 §2.1)
write the grant in the transaction that checks the user's cut-off and reads the user uncached:
a password change or an administrator's revocation is either seen here, or waits for this unit
of work and then revokes the grant it wrote (it lists the user's grants after appending its
event); a user disabled a moment ago gets nothing. Each grant answers a refusal with its own
error (`Refusal`), returned rather than raised, so what the unit of work already wrote (a burned
code, a redeemed device request) is committed.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TypeVar

from tessera.domain.model import Grant, RefreshToken, User
from tessera.store.protocols import UnitOfWork

__all__ = ["Refusal", "start_user_grant"]

F = TypeVar("F")


class Refusal(Enum):
    """Why the grant was not started."""

    CUT_OFF = "cut_off"  # a subject revocation of the user came after `cut_off_at`
    INACTIVE = "inactive"  # the user is gone or disabled


def start_user_grant(
    work: UnitOfWork,
    grant: Grant,
    refresh_token: RefreshToken | None,
    *,
    cut_off_at: datetime | None,
    failure: F | None = None,
) -> User | Refusal | F:
    """Start `grant` (and its first refresh token) for its user, and return the user as read
    now; or the refusal, and nothing is written.

    In order: the user's cut-off (a revocation after `cut_off_at`, the time the grant's consent
    stands for; None: none is checked), then `failure`, the grant's own check's failure (a
    code's, RFC 6749 §4.1.3: answered after the cut-off, before the user's state), then the user.
    """
    if cut_off_at is not None and work.revocations.cut_off_after(grant.user_id, cut_off_at):
        return Refusal.CUT_OFF
    if failure is not None:
        return failure
    user = work.users.get(grant.user_id)  # uncached: a user disabled a moment ago
    if user is None or not user.active:
        return Refusal.INACTIVE
    work.grants.start(grant, refresh_token)
    return user
