"""Housekeeping: delete what has expired so that tables do not grow without bound.

Run by `tessera admin purge` and periodically inside every node (safe to run on many nodes at
once: each step is an idempotent DELETE of expired rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.store.protocols import Store

__all__ = ["PurgeReport", "purge_expired"]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    codes: int
    refresh_tokens: int
    revocation_events: int
    sessions: int
    login_failures: int


def purge_expired(store: Store, now: datetime, login_window_seconds: int) -> PurgeReport:
    return PurgeReport(
        codes=store.codes.purge(now),
        refresh_tokens=store.refresh_tokens.purge(now),
        revocation_events=store.revocations.purge(now),
        sessions=store.sessions.purge(now),
        login_failures=store.login_throttle.purge(now - timedelta(seconds=login_window_seconds)),
    )
