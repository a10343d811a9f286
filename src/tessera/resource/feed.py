"""Following the identity domain's revocation feed (docs/architecture.md, "Revocation that reaches
resource servers").

A background thread long-polls `GET /oauth2/v1/revocations?since=N`, authenticated as a
confidential app, and applies each event to an in-memory `RevocationIndex` that every
validation consults: a revoked token is refused within about a second, with no per-request
call. After an error or a reconnect it resumes from the last sequence number it applied, so no
event is missed.

The index is only as current as the last answer of the feed. When the follower has not heard
from the identity domain for longer than `max_staleness` (a stopped, partitioned or overloaded
identity domain), the index may miss revocations, so validation fails closed: every token is
refused with 503 `temporarily_unavailable` (`RevocationUnavailableError`), or, when a
`fallback` check is given (`IntrospectionCheck`, RFC 7662), each token is checked with it
instead. Once a poll succeeds again the feed is fresh and the index is used again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from tessera.resource.errors import RevocationUnavailableError
from tessera.shared.revocation_index import RevocationIndex

if TYPE_CHECKING:
    from tessera.resource.validator import RevocationCheck

__all__ = ["FeedFreshness", "RevocationFeed"]

FeedState = Literal["syncing", "fresh", "stale"]


@dataclass(slots=True)
class FeedFreshness:
    """When the follower last heard from the identity domain, and what that makes the index.

    `syncing` before the first catch-up, `fresh` while the last successful poll is at most
    `max_staleness` seconds old, `stale` after that. Times come from one monotonic clock.
    """

    max_staleness: float
    last_contact: float | None = None

    def contact(self, now: float) -> None:
        self.last_contact = now

    def state(self, now: float) -> FeedState:
        if self.last_contact is None:
            return "syncing"
        return "fresh" if now - self.last_contact <= self.max_staleness else "stale"


class RevocationFeed:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        feed_uri: str | None = None,
        wait_seconds: float = 20.0,
        http: httpx.Client | None = None,
        fail_open_until_synced: bool = False,
        max_staleness: float | None = None,
        fallback: RevocationCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`max_staleness` (default the larger of 30 s and 1.5 long-polls) must exceed
        `wait_seconds`: a healthy long-poll may legitimately stay silent that long."""
        self._uri = feed_uri or f"{issuer.rstrip('/')}/oauth2/v1/revocations"
        self._auth = (client_id, client_secret)
        self._wait = wait_seconds
        self._http = http or httpx.Client(timeout=wait_seconds + 10)
        staleness = max(30.0, 1.5 * wait_seconds) if max_staleness is None else max_staleness
        if staleness <= wait_seconds:
            raise ValueError("max_staleness must exceed wait_seconds (one long-poll)")
        self.freshness = FeedFreshness(staleness)
        self._clock = clock
        self._fallback = fallback
        self.index = RevocationIndex()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced = threading.Event()
        self.last_error: str | None = None
        self._fail_open = fail_open_until_synced

    # --- RevocationCheck ------------------------------------------------------------------------

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        state = self.state
        if state == "syncing":
            # Fail closed: before the first catch-up we cannot know what was revoked.
            return not self._fail_open
        if state == "stale":
            if self._fallback is not None:
                return self._fallback.is_revoked(token, claims)
            raise RevocationUnavailableError(
                "the revocation status of tokens cannot be checked right now",
                retry_after=max(1, round(self._wait)),
            )
        return self.index.revoked(claims)

    # --- following ------------------------------------------------------------------------------

    def poll_once(self, wait: float = 0.0) -> int:
        """Fetch and apply the events after the last one seen; return how many."""
        response = self._http.get(
            self._uri, params={"since": self.index.seq, "wait": wait}, auth=self._auth
        )
        response.raise_for_status()
        data = response.json()
        events = data.get("events", [])
        for event in events:
            self.index.apply(
                str(event["kind"]),
                str(event["key"]),
                float(event["not_before"]),
                float(event["expires_at"]),
                int(event["seq"]),
            )
        self.index.prune(time.time())
        # A long-poll answers at once on an event, so an answer means we missed none until now.
        self.freshness.contact(self._clock())
        self._synced.set()
        return len(events)

    def start(self, wait_until_synced: float = 10.0) -> RevocationFeed:
        """Start following in a daemon thread; wait for the first catch-up."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tessera-revocation-feed", daemon=True
            )
            self._thread.start()
        self._synced.wait(wait_until_synced)
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def state(self) -> FeedState:
        """`syncing`, `fresh` or `stale` (see `FeedFreshness`)."""
        return self.freshness.state(self._clock())

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                count = self.poll_once(0.0 if not self._synced.is_set() else self._wait)
                self.last_error = None
                backoff = 0.2
                if count >= 1000:
                    continue  # more to catch up on
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
