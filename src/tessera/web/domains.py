"""Which identity domain a request is for, and that domain's services (docs/domains.md).

A request for a host name a domain claims goes to that domain; a path under `/domains/<name>/`
to the domain of that name; anything else to the default domain, whose URLs are those of a
single-domain deployment. The router keeps the full path (ASGI's convention) and sets
`root_path` to the domain's prefix, so the routes match as for the default domain, and puts the
domain's `Services` on the scope (`tessera.web.services.services`).

Nothing here costs anything per idle domain: domain rows are looked up on demand and cached a
couple of seconds (a change made on any node is seen everywhere within that time), and each
domain's services are built on first use into a bounded LRU cache; they hold no thread, timer
or connection of their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.caching import NotCached, TTLCache
from tessera.domain.identity_domains import (
    DOMAIN_PATH,
    IdentityDomain,
    InvalidDomain,
    check_domain_name,
    check_host,
)
from tessera.manage.system import ensure_system_objects
from tessera.store.protocols import DomainStore
from tessera.web.services import SCOPE_KEY, Node, Services, build_services

__all__ = ["DomainDirectory", "DomainRouter", "DomainServicesCache"]

# How long a domain row is trusted on a node: a disable, a host change, new settings reach
# every node within this time.
DOMAIN_TTL_SECONDS = 2.0


class DomainDirectory:
    """Domain rows by name and by host, cached briefly and bounded."""

    def __init__(self, store: DomainStore, ttl: float = DOMAIN_TTL_SECONDS) -> None:
        self._by_name: TTLCache[str, IdentityDomain | None] = TTLCache(
            store.get_by_name, ttl, max_entries=10000
        )
        self._by_host: TTLCache[str, IdentityDomain | None] = TTLCache(
            store.get_by_host, ttl, max_entries=10000
        )

    async def by_name(self, name: str) -> IdentityDomain | None:
        return await _cached_or_loaded(self._by_name, name)

    async def by_host(self, host: str) -> IdentityDomain | None:
        return await _cached_or_loaded(self._by_host, host)

    def forget(self) -> None:
        """Drop every cached row (after this node changed a domain)."""
        self._by_name.clear()
        self._by_host.clear()


async def _cached_or_loaded(
    cache: TTLCache[str, IdentityDomain | None], key: str
) -> IdentityDomain | None:
    try:
        return cache.cached(key)
    except NotCached:
        return await run_in_threadpool(cache.get, key)


class DomainServicesCache:
    """Each domain's `Services`, built on first use; at most `capacity` are kept (least
    recently used go first). The default domain's are always kept."""

    def __init__(self, node: Node, default: Services, capacity: int = 256) -> None:
        self._node = node
        self.default = default
        self._capacity = capacity
        self._built: OrderedDict[str, Services] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, domain: IdentityDomain) -> Services | None:
        """The domain's services when built for this version of its row (no I/O)."""
        if domain.is_default:
            if self.default.domain.version != domain.version:
                self.default.domain = domain  # its display name, for pages
            return self.default
        with self._lock:
            found = self._built.get(domain.id)
            if found is not None and found.domain.version == domain.version:
                self._built.move_to_end(domain.id)
                return found
        return None

    def get(self, domain: IdentityDomain) -> Services:
        """The domain's services, built when missing (with a few reads: call it off the event
        loop)."""
        found = self.peek(domain)
        if found is not None:
            return found
        # A new domain, or one whose row changed (issuer, settings): build it afresh, and bring
        # its admin API and console app up to date with the issuer this node serves it at.
        built = build_services(self._node, domain)
        ensure_system_objects(built.ctx.store, built.ctx.settings.issuer, built.ctx.clock())
        with self._lock:
            self._built[domain.id] = built
            self._built.move_to_end(domain.id)
            while len(self._built) > self._capacity:
                self._built.popitem(last=False)
        return built

    def forget(self, domain_id: str) -> None:
        """Drop a domain's services (after this node changed or deleted the domain)."""
        with self._lock:
            self._built.pop(domain_id, None)

    def loaded(self) -> list[Services]:
        with self._lock:
            return [self.default, *self._built.values()]

    def __len__(self) -> int:
        return len(self._built)


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    error: str
    description: str


class DomainRouter:
    """ASGI middleware: route the request to its domain (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        directory: DomainDirectory,
        cache: DomainServicesCache,
        base_issuer: str,
        render: Callable[[Scope, _Refusal], tuple[str, bytes]] | None = None,
    ) -> None:
        self.app = app
        self._directory = directory
        self._cache = cache
        base = urlsplit(base_issuer)
        self._base_host = (base.hostname or "").lower()
        self._base_path = base.path.rstrip("/")
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        domain: IdentityDomain | None = None
        prefix = ""
        host = _host(scope)
        if host and host != self._base_host and _valid(check_host, host):
            domain = await self._directory.by_host(host)
        path: str = scope["path"]
        marker = self._base_path + DOMAIN_PATH
        if domain is None and path.startswith(marker):
            name = path[len(marker) :].partition("/")[0]
            # Only a well-formed name is looked up: no NUL or other junk reaches the database.
            domain = (
                await self._directory.by_name(name) if _valid(check_domain_name, name) else None
            )
            if domain is None or domain.is_default:
                await self._refuse(
                    scope,
                    send,
                    _Refusal(
                        404, "unknown_domain", (f"there is no identity domain named {name!r} here")
                    ),
                )
                return
            if domain.host:
                await self._refuse(
                    scope,
                    send,
                    _Refusal(
                        404,
                        "unknown_domain",
                        (f"the identity domain {name!r} is served at https://{domain.host}"),
                    ),
                )
                return
            prefix = DOMAIN_PATH + name
        if domain is None:
            await self.app(scope, receive, send)  # the default domain
            return
        if not domain.enabled:
            await self._refuse(
                scope,
                send,
                _Refusal(
                    403,
                    "domain_disabled",
                    (f"the identity domain {domain.display_name!r} is disabled; ask its operator"),
                ),
            )
            return
        # In place, so that the access log and metrics around us see the domain and its prefix.
        scope["root_path"] = scope.get("root_path", "") + prefix
        scope["tessera.prefix"] = prefix
        scope["tessera.domain"] = domain.name
        svc = self._cache.peek(domain)
        if svc is None:
            svc = await run_in_threadpool(self._cache.get, domain)
        scope[SCOPE_KEY] = svc
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, refusal: _Refusal) -> None:
        if self._render is not None and _wants_html(scope):
            content_type, body = self._render(scope, refusal)
        else:
            content_type = "application/json"
            body = orjson.dumps({"error": refusal.error, "error_description": refusal.description})
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _valid(check: Callable[[str], str], value: str) -> bool:
    """Whether `value` is already in the canonical form `check` gives."""
    try:
        return check(value) == value
    except InvalidDomain:
        return False


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _host(scope: Scope) -> str:
    """The request's host name, lower case, without the port."""
    raw = _header(scope, b"host").strip().lower()
    if raw.startswith("["):  # an IPv6 literal: never a domain's host
        return ""
    return raw.partition(":")[0].rstrip(".")


def _wants_html(scope: Scope) -> bool:
    return "text/html" in _header(scope, b"accept") and scope.get("method") == "GET"


def refusal_fields(refusal: Any) -> tuple[int, str, str]:
    """(status, error, description) of a refusal, for a page renderer."""
    return refusal.status, refusal.error, refusal.description
