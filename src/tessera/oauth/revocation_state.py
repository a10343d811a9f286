"""The revocation state of an identity-domain node: the shared `RevocationIndex`, kept current
from the store. `sync()` reads the events after the last sequence number seen, so a revocation
made on any node is visible after one query.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tessera.domain.model import RevocationEvent
from tessera.shared.revocation_index import RevocationIndex
from tessera.store.protocols import RevocationStore

__all__ = ["RevocationState"]


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
        if self._store.last_seq() == self._index.seq:
            return  # one cheap query when nothing changed, the usual case
        self._catch_up()

    async def sync_async(self) -> None:
        """`sync` on the event loop: the usual one query asynchronously, a catch-up (reading
        the new events) in a worker thread."""
        if await self._store.last_seq_async() == self._index.seq:
            return
        await asyncio.to_thread(self._catch_up)

    def _catch_up(self) -> None:
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
