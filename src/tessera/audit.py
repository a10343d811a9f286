"""The audit sink: events go through a bounded in-process queue, flushed to the store at least
every 100 ms and at shutdown, so request paths never wait on an audit write (docs/architecture.md,
"Hot-path budget"). Details must never hold a secret or a token value.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tessera.domain.model import DEFAULT_DOMAIN, AuditEvent
from tessera.store.protocols import AuditStore, Conflict, StoreError

__all__ = ["AuditSink", "DomainAudit", "audit_event"]

_FORBIDDEN_KEYS = frozenset(
    {
        "password",
        "token",
        "access_token",
        "refresh_token",
        "code",
        "client_secret",
        "id_token",
        "code_verifier",
    }
)


def audit_event(
    clock: Callable[[], datetime],
    type: str,
    actor: str | None,
    user_id: str | None,
    client_id: str | None,
    ip: str | None,
    details: dict[str, Any],
) -> AuditEvent:
    """An event, refused when its details name a secret (they are kept forever)."""
    leaked = _FORBIDDEN_KEYS & details.keys()
    if leaked:
        raise ValueError(f"audit details must not hold secrets: {sorted(leaked)}")
    return AuditEvent(type, clock(), actor, user_id, client_id, ip, details)


class AuditSink:
    """The node's one audit queue and flusher thread, whatever the number of domains: each
    event carries its domain, and `for_domain` gives a domain's recorder."""

    def __init__(
        self,
        store: AuditStore,
        clock: Callable[[], datetime],
        *,
        interval: float = 0.1,
        capacity: int = 10000,
        on_error: Callable[[], None] | None = None,
        store_for: Callable[[str], AuditStore] | None = None,
        domain_id: str = DEFAULT_DOMAIN,
    ) -> None:
        self._store = store
        self._store_for = store_for
        self._domain_id = domain_id
        self._clock = clock
        # A deque, not a queue.Queue: appends are atomic and wake nobody; the flusher polls.
        self._queue: deque[tuple[str, AuditEvent]] = deque()
        self._capacity = capacity
        self._interval = interval
        self._stop = threading.Event()
        self._flushing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tessera-audit", daemon=True)
        self._thread.start()
        self.dropped = 0
        self._on_error = on_error

    def enqueue(self, domain_id: str, event: AuditEvent) -> None:
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append((domain_id, event))

    def for_domain(self, domain_id: str) -> DomainAudit:
        return DomainAudit(self, domain_id, self._clock)

    def flush(self) -> None:
        """Write what is queued. A barrier: when it returns, every event queued before the call
        is written (or put back after a failure), also those another thread was writing."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        batch: list[tuple[str, AuditEvent]] = []
        while True:
            try:
                batch.append(self._queue.popleft())
            except IndexError:
                break
        by_domain: dict[str, list[AuditEvent]] = {}
        for domain_id, event in batch:
            by_domain.setdefault(domain_id, []).append(event)
        failed: list[tuple[str, AuditEvent]] = []
        for domain_id, events in by_domain.items():
            try:
                self._target(domain_id).append(events)
            except Conflict:  # the domain was deleted meanwhile: they can never be written
                self.dropped += len(events)
            except StoreError:
                failed.extend((domain_id, e) for e in events)
        if failed:
            if self._on_error is not None:
                self._on_error()
            # Put them back for the next flush, as far as there is room.
            room = max(self._capacity - len(self._queue), 0)
            self._queue.extendleft(reversed(failed[:room]))
            self.dropped += len(failed) - min(room, len(failed))

    def _target(self, domain_id: str) -> AuditStore:
        if domain_id == self._domain_id or self._store_for is None:
            return self._store
        return self._store_for(domain_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


class DomainAudit:
    """One domain's recorder on the node's sink (no thread or queue of its own)."""

    def __init__(self, sink: AuditSink, domain_id: str, clock: Callable[[], datetime]) -> None:
        self._sink = sink
        self.domain_id = domain_id
        self._clock = clock

    def record(
        self,
        type: str,
        *,
        actor: str | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        ip: str | None = None,
        **details: Any,
    ) -> None:
        event = audit_event(self._clock, type, actor, user_id, client_id, ip, details)
        self._sink.enqueue(self.domain_id, event)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def dropped(self) -> int:
        return self._sink.dropped
