"""The revocation state every validation consults (ARCHITECTURE.md, "Revocation that reaches
resource servers").

An in-memory index of the append-only revocation events: revoked `jti`s, revoked grants (`sid`),
and subject cut-offs ("every token of U issued before T"). `sync()` reads the events after the
last sequence number seen, so a revocation on any node is visible after one query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tessera.domain.model import RevocationEvent, RevocationKind
from tessera.store.protocols import RevocationStore

__all__ = ["RevocationIndex", "RevocationState"]


class RevocationIndex:
    """Pure: apply events, answer whether claims are revoked. Shared with `tessera.resource`."""

    def __init__(self) -> None:
        self.seq = 0
        self._jti: dict[str, float] = {}
        self._grants: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}  # sub -> (not_before, expires)

    def apply(self, kind: str, key: str, not_before: float, expires_at: float, seq: int) -> None:
        if kind == RevocationKind.JTI:
            self._jti[key] = expires_at
        elif kind == RevocationKind.GRANT:
            self._grants[key] = expires_at
        elif kind == RevocationKind.SUBJECT:
            previous = self._subjects.get(key)
            if previous is None or previous[0] < not_before:
                self._subjects[key] = (not_before, expires_at)
        self.seq = max(self.seq, seq)

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        jti, sid, sub = claims.get("jti"), claims.get("sid"), claims.get("sub")
        if isinstance(jti, str) and jti in self._jti:
            return True
        if isinstance(sid, str) and sid in self._grants:
            return True
        if isinstance(sub, str) and sub in self._subjects:
            issued = claims.get("iat")
            # A token issued in the same second as the cut-off is revoked too (iat has 1 s
            # resolution): a re-login after a revocation gets a token from the next second on.
            if not isinstance(issued, int | float) or issued <= self._subjects[sub][0]:
                return True
        return False

    def prune(self, now: float) -> None:
        for table in (self._jti, self._grants):
            for key in [k for k, exp in table.items() if exp <= now]:
                del table[key]
        for key in [k for k, (_, exp) in self._subjects.items() if exp <= now]:
            del self._subjects[key]


class RevocationState:
    """A `RevocationIndex` kept current from the store."""

    def __init__(self, store: RevocationStore) -> None:
        self._store = store
        self._index = RevocationIndex()
        self._lock = threading.Lock()

    @property
    def seq(self) -> int:
        return self._index.seq

    def apply_events(self, events: Iterable[RevocationEvent]) -> None:
        with self._lock:
            for e in events:
                self._index.apply(
                    e.kind.value, e.key, e.not_before.timestamp(), e.expires_at.timestamp(), e.seq
                )

    def sync(self) -> None:
        """Read new events; raises `StoreUnavailable` when the database is down."""
        while True:
            events = self._store.since(self._index.seq, 1000)
            self.apply_events(events)
            if len(events) < 1000:
                return

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        return self._index.revoked(claims)

    def prune(self, now: datetime) -> None:
        with self._lock:
            self._index.prune(now.timestamp())
