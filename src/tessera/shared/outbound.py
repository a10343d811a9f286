"""Fetching what an administrator or an app configured (a `jwks_uri`, an upstream provider's
endpoints): which URLs may be fetched (RFC 8414 §2, RFC 7591 §2: https; http only to loopback
on a development node) and how much of an answer is read (a size limit counted as the body
arrives, after decompression, and a deadline, so a slow drip cannot hold a worker thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from tessera.shared.settings import is_loopback_host

# httpx is imported where it is first used: importing it loads its own command line (rich's
# progress bars, pygments) and would cost every CLI command a tenth of its start-up.
if TYPE_CHECKING:
    import httpx

__all__ = [
    "Answer",
    "AnswerRefused",
    "FetchCache",
    "FetchFailed",
    "fetch",
    "http_client",
    "url_problem",
]


def url_problem(url: object, *, max_length: int, allow_insecure_loopback: bool) -> str | None:
    """Why `url` may not be fetched, as the end of a sentence about it ("… must be an https
    URL"); None when it may: absolute, printable ASCII, a host httpx can connect to, no user
    info or fragment, https (or http to a loopback host when allowed)."""
    if not isinstance(url, str) or not 0 < len(url) <= max_length:
        return "is missing, not a string, empty or too long"
    # Printable ASCII only (an internationalised host in its xn-- form): what the HTTP client
    # would otherwise refuse only when it fetches.
    if not all(" " < c < "\x7f" for c in url):
        return "has spaces, control or non-ASCII characters"
    import httpx

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        httpx.URL(url).raw_host.decode("ascii").encode("idna")
    except (ValueError, UnicodeError, httpx.InvalidURL):
        return "is not a URL"
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return "needs a host and no user info or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_insecure_loopback and is_loopback_host(host):
        return None
    return "must be an https URL"


class AnswerRefused(Exception):
    """An answer too large (`too_large`) or too slow to arrive."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__(message)
        self.too_large = too_large


class FetchFailed(Exception):
    """No answer: the connection, TLS or the request failed, or the URL is one httpx refuses."""


def http_client(timeout: float) -> httpx.Client:
    """A client for the URLs an administrator or an app configured: no redirects (a redirect
    could point anywhere, http included) and no proxy settings from the environment, so a
    loopback URL stays on this host."""
    import httpx

    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    media_type: str  # of Content-Type, lower case, without parameters
    body: bytes


def fetch(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    max_bytes: int,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
    read_only: Collection[int] | None = None,
) -> Answer:
    """Make the request and read its answer (`what` it is, for the messages), at most
    `max_bytes` (the declared length is checked first, the body counted as it arrives, after
    decompression: no compressed bomb), all of it before `time.monotonic()` passes `deadline`,
    so a slow drip cannot hold a worker thread. `read_only`: the statuses whose body is wanted
    (another's answer has an empty body). `AnswerRefused` or `FetchFailed` (a URL or header
    httpx refuses, the connection, TLS) otherwise."""
    import httpx

    try:
        request = client.build_request(
            method, url, headers=headers, data=data, extensions=extensions
        )
        response = client.send(request, stream=True)
        try:
            wanted = read_only is None or response.status_code in read_only
            body = _read_limited(response, max_bytes, deadline, what) if wanted else b""
        finally:
            response.close()
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise FetchFailed(f"{what}: {type(exc).__name__}") from None
    media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return Answer(response.status_code, media, body)


def _read_limited(response: httpx.Response, max_bytes: int, deadline: float, what: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise AnswerRefused(f"{what} is larger than {max_bytes} bytes", too_large=True)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise AnswerRefused(f"{what} is larger than {max_bytes} bytes", too_large=True)
        if time.monotonic() > deadline:
            raise AnswerRefused(f"{what} took too long to arrive", too_large=False)
    return bytes(body)


K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    lock: threading.Lock
    value: V | None = None
    fetched_at: float = float("-inf")  # the last successful fetch
    attempted_at: float = float("-inf")  # the last attempt, successful or not
    error: Exception | None = None  # the last attempt's failure


class FetchCache(Generic[K, V]):
    """What was fetched per key (a JWK Set, a discovery document), thread-safe: kept `ttl`
    seconds; a fetch (a refresh asked for, or after a failure) at most once per
    `retry_interval` per key, the last failure raised again meanwhile, so a forged `kid` or a
    provider that is down cannot make us hammer it; one fetch at a time per key, and while one
    runs the others use what is cached rather than queue (a slow server must not hold the
    node's worker threads), waiting at most `wait` seconds when nothing is."""

    def __init__(
        self,
        *,
        ttl: float,
        retry_interval: float,
        wait: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
    ) -> None:
        self.ttl = ttl
        self.retry_interval = retry_interval
        self.wait = wait
        self._clock = clock
        self._max = max_entries
        self._entries: dict[K, _Entry[V]] = {}
        self._lock = threading.Lock()

    def _entry(self, key: K) -> _Entry[V]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self._max:
                    self._entries.pop(next(iter(self._entries)))  # the oldest key
                entry = self._entries[key] = _Entry(threading.Lock())
            return entry

    def cached(self, key: K) -> V | None:
        """What is in memory for `key`, however old (never fetches)."""
        with self._lock:
            entry = self._entries.get(key)
        return entry.value if entry is not None else None

    def get(
        self,
        key: K,
        fetch: Callable[[], V],
        *,
        refresh: bool = False,
        failures: type[Exception] = Exception,
        busy: Callable[[], Exception],
    ) -> V:
        """The value of `key`, fetched by `fetch` when there is none younger than `ttl` (or
        `refresh`, unless tried less than `retry_interval` ago: then the cached value). A
        `failures` exception of `fetch` is remembered and raised again until the interval
        has passed; `busy()` is raised when another fetch of `key` outlasts `wait`."""
        entry = self._entry(key)
        if not entry.lock.acquire(blocking=False):
            if entry.value is not None:
                return entry.value
            if not entry.lock.acquire(timeout=self.wait):
                raise busy()
        try:
            now = self._clock()
            fresh = entry.value is not None and now - entry.fetched_at < self.ttl
            if fresh and not refresh:
                return entry.value  # type: ignore[return-value]
            if now - entry.attempted_at < self.retry_interval:
                if fresh:
                    return entry.value  # type: ignore[return-value]
                if entry.error is not None:  # failed recently: do not ask again yet
                    raise entry.error.with_traceback(None)
            entry.attempted_at = now
            try:
                value = fetch()
            except failures as exc:
                entry.error = exc
                raise
            entry.value, entry.fetched_at, entry.error = value, now, None
            return value
        finally:
            entry.lock.release()
