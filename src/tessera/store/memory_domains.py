"""The deployment's identity domains in memory (`DomainStore` for `MemoryStore`)."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tessera.domain.identity_domains import IdentityDomain
from tessera.domain.model import KeyState
from tessera.store.protocols import Conflict, DomainContent, ExpiredRows, NotFound

if TYPE_CHECKING:
    from tessera.store.memory import MemoryStore

__all__ = ["MemoryDomains"]


class MemoryDomains:
    """Domain rows, and each domain's `MemoryStore` (what `MemoryStore.for_domain` returns)."""

    def __init__(self, make_store: Callable[[str], MemoryStore]) -> None:
        self._make_store = make_store
        # Re-entrant: a new `MemoryStore` registers itself (`store(id, existing=self)`) while
        # `store` is building it under the lock.
        self._lock = threading.RLock()
        self._rows: dict[str, IdentityDomain] = {}
        self._stores: dict[str, MemoryStore] = {}

    def store(self, domain_id: str, existing: MemoryStore | None = None) -> MemoryStore:
        with self._lock:
            if existing is not None:
                self._stores.setdefault(domain_id, existing)
            found = self._stores.get(domain_id)
            if found is None:
                found = self._stores[domain_id] = self._make_store(domain_id)
            return found

    def ensure(self, domain: IdentityDomain) -> None:
        with self._lock:
            self._rows.setdefault(domain.id, domain)

    def get(self, domain_id: str) -> IdentityDomain | None:
        return self._rows.get(domain_id)

    def get_by_name(self, name: str) -> IdentityDomain | None:
        return next((d for d in self._rows.values() if d.name == name), None)

    def get_by_host(self, host: str) -> IdentityDomain | None:
        return next((d for d in self._rows.values() if d.host == host), None)

    def list(self, *, after: str | None = None, limit: int = 100) -> builtins.list[IdentityDomain]:
        rows = sorted(self._rows.values(), key=lambda d: d.name)
        return [d for d in rows if after is None or d.name > after][:limit]

    def count(self) -> int:
        return len(self._rows)

    def _check_unique(self, domain: IdentityDomain) -> None:
        for other in self._rows.values():
            if other.id != domain.id and (
                other.name == domain.name or (domain.host and other.host == domain.host)
            ):
                raise Conflict(f"the name or host of {domain.name} is taken")

    def create(self, domain: IdentityDomain, content: DomainContent) -> None:
        with self._lock:
            if domain.id in self._rows:
                raise Conflict(f"domain {domain.id} exists")
            self._check_unique(domain)
            self._rows[domain.id] = domain
            store = self.store(domain.id)
            try:
                for key in content.keys:
                    store.keys.add(key)
                for resource in content.resources:
                    store.resources.add(resource)
                for client in content.clients:
                    store.clients.add(client)
                for user in content.users:
                    store.users.add(user)
            except BaseException:  # one transaction, as on SQL: nothing of it stays
                del self._rows[domain.id]
                self._stores.pop(domain.id, None)
                store.wipe()
                raise

    def update(self, domain: IdentityDomain) -> None:
        with self._lock:
            stored = self._rows.get(domain.id)
            if stored is None or stored.version != domain.version - 1:
                raise NotFound(f"the domain {domain.name} is gone or was changed meanwhile")
            self._check_unique(domain)
            self._rows[domain.id] = domain

    def purge_data(self, domain_id: str, batch: int) -> int:
        with self._lock:
            store = self._stores.pop(domain_id, None)
        return store.wipe() if store is not None else 0

    def delete(self, domain_id: str) -> bool:
        with self._lock:
            return self._rows.pop(domain_id, None) is not None

    def purge_expired(self, now: datetime, login_before: datetime, batch: int) -> ExpiredRows:
        with self._lock:
            stores = list(self._stores.values())
        counts: dict[str, Any] = {}
        for store in stores:
            for name, count in (
                ("codes", store.codes.purge(now)),
                ("refresh_tokens", store.refresh_tokens.purge(now)),
                ("revocation_events", store.revocations.purge(now)),
                ("sessions", store.sessions.purge(now)),
                ("login_failures", store.login_throttle.purge(login_before)),
                ("signing_keys", _purge_retired_keys(store, now)),
                ("nonces", store.nonces.purge(now)),
                ("pushed_requests", store.pushed_requests.purge(now)),
                ("registration_tokens", store.registration_tokens.purge(now)),
                ("device_authorizations", store.device_authorizations.purge(now)),
            ):
                counts[name] = counts.get(name, 0) + count
        return ExpiredRows(**counts)


def _purge_retired_keys(store: MemoryStore, now: datetime) -> int:
    """Delete retired keys past `retire_after` (the SQL store's `expired_keys`)."""
    gone = [
        key.kid
        for key in store.keys.list()
        if key.state == KeyState.RETIRED
        and key.retire_after is not None
        and key.retire_after <= now
    ]
    for kid in gone:
        store.keys.delete(kid)
    return len(gone)
