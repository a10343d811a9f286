"""Following the identity domain's revocation feed (ARCHITECTURE.md, "Revocation that reaches
resource servers").

A background thread long-polls `GET /oauth2/v1/revocations?since=N`, authenticated as a
confidential app, and applies each event to an in-memory `RevocationIndex` that every
validation consults: a revoked token is refused within about a second, with no per-request
call. After an error or a reconnect it resumes from the last sequence number it applied, so no
event is missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from tessera.shared.revocation_index import RevocationIndex

__all__ = ["RevocationFeed"]


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
    ) -> None:
        self._uri = feed_uri or f"{issuer.rstrip('/')}/oauth2/v1/revocations"
        self._auth = (client_id, client_secret)
        self._wait = wait_seconds
        self._http = http or httpx.Client(timeout=wait_seconds + 10)
        self.index = RevocationIndex()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced = threading.Event()
        self.last_error: str | None = None
        self._fail_open = fail_open_until_synced

    # --- RevocationCheck ------------------------------------------------------------------------

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        # Fail closed: before the first catch-up we cannot know what was revoked.
        if not self._synced.is_set() and not self._fail_open:
            return True
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
