"""Housekeeping: delete what has expired so that tables do not grow without bound.

Run by `tessera admin purge` and periodically inside every node (safe to run on many nodes at
once: each step is an idempotent DELETE of expired rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.store.protocols import ExpiredRows, Store

__all__ = ["LOGIN_FAILURES_KEPT", "PurgeReport", "purge_all_domains", "purge_expired"]

# Failed sign-ins are kept at least this long for every domain (a domain's throttle window is
# at most the larger of this and the node's window).
LOGIN_FAILURES_KEPT = timedelta(days=1)
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class PurgeReport:
    codes: int
    refresh_tokens: int
    revocation_events: int
    sessions: int
    login_failures: int
    pushed_requests: int
    registration_tokens: int
    device_authorizations: int = 0


def purge_expired(store: Store, now: datetime, login_window_seconds: int) -> PurgeReport:
    return PurgeReport(
        codes=store.codes.purge(now),
        refresh_tokens=store.refresh_tokens.purge(now),
        revocation_events=store.revocations.purge(now),
        sessions=store.sessions.purge(now),
        login_failures=store.login_throttle.purge(now - timedelta(seconds=login_window_seconds)),
        pushed_requests=store.pushed_requests.purge(now),
        registration_tokens=store.registration_tokens.purge(now),
        device_authorizations=store.device_authorizations.purge(now),
    )


def purge_all_domains(store: Store, now: datetime, login_window_seconds: int) -> ExpiredRows:
    """Housekeeping for every domain at once, in statements of at most `_BATCH` rows: flat in
    the number of domains (the deletes use the expiry indexes, not a walk over domains)."""
    window = max(LOGIN_FAILURES_KEPT, timedelta(seconds=login_window_seconds))
    return store.domains.purge_expired(now, now - window, _BATCH)
