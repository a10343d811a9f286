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

__all__ = ["DomainDirectory", "DomainRouter", "DomainServicesCache", "Refusal", "RefusalPage"]

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
        return await _lookup(self._by_name, name, check_domain_name)

    async def by_host(self, host: str) -> IdentityDomain | None:
        return await _lookup(self._by_host, host, check_host)

    def forget(self) -> None:
        """Drop every cached row (after this node changed a domain)."""
        self._by_name.clear()
        self._by_host.clear()


async def _lookup(
    cache: TTLCache[str, IdentityDomain | None], key: str, check: Callable[[str], str]
) -> IdentityDomain | None:
    """The cached row of `key`, else loaded off the event loop; only a key already in the
    canonical form `check` gives is looked up (no NUL or other junk reaches the database)."""
    try:
        return cache.cached(key)
    except NotCached:
        pass
    if not _valid(check, key):
        return None
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
class Refusal:
    """The router's answer to a request for an unknown or disabled domain."""

    status: int
    error: str
    description: str


# A browser's page for a refusal: (content type, body).
RefusalPage = Callable[[Scope, Refusal], tuple[str, bytes]]


class DomainRouter:
    """ASGI middleware: route the request to its domain (see the module's docstring). A request
    for the default domain (the base host, a path not under `/domains/`) costs a header scan
    and a prefix test: no lookup."""

    def __init__(
        self,
        app: ASGIApp,
        directory: DomainDirectory,
        cache: DomainServicesCache,
        base_issuer: str,
        render: RefusalPage | None = None,
    ) -> None:
        self.app = app
        self._directory = directory
        self._cache = cache
        base = urlsplit(base_issuer)
        self._base_host = (base.hostname or "").lower()
        self._marker = base.path.rstrip("/") + DOMAIN_PATH
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _host(scope)
        domain = None
        if host and host != self._base_host:
            domain = await self._directory.by_host(host)
        prefix = ""
        path: str = scope["path"]
        if domain is None and path.startswith(self._marker):
            name = path[len(self._marker) :].partition("/")[0]
            domain = await self._directory.by_name(name)
            refusal = _by_path_refusal(name, domain)
            if refusal is not None:
                await self._refuse(scope, send, refusal)
                return
            prefix = DOMAIN_PATH + name
        if domain is None:
            await self.app(scope, receive, send)  # the default domain
            return
        if not domain.enabled:
            description = (
                f"the identity domain {domain.display_name!r} is disabled; ask its operator"
            )
            await self._refuse(scope, send, Refusal(403, "domain_disabled", description))
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

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal) -> None:
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


def _by_path_refusal(name: str, domain: IdentityDomain | None) -> Refusal | None:
    """Why a path under `/domains/<name>/` is not served, if it is not."""
    if domain is None or domain.is_default:
        return Refusal(404, "unknown_domain", f"there is no identity domain named {name!r} here")
    if domain.host:
        where = f"the identity domain {name!r} is served at https://{domain.host}"
        return Refusal(404, "unknown_domain", where)
    return None


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
