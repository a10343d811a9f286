"""A tiny time-bounded cache for hot lookups (apps, resources) on the request path.

Entries live a couple of seconds: a change made by an administrator on any node (a rotated
secret, a deleted app) is seen everywhere within that time without a query per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["NotCached", "TTLCache"]


class NotCached(LookupError):
    """`TTLCache.cached` found no fresh entry: the caller must do the I/O elsewhere."""


K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, load: Callable[[K], V], ttl: float = 2.0, max_entries: int = 10000) -> None:
        self._load = load
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = self._load(key)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, value)
        return value

    def cached(self, key: K) -> V:
        """The fresh cached value, never loading it; raise `NotCached` instead."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            raise NotCached(key)
        return entry[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
