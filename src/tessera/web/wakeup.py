"""Waking revocation-feed long-polls as soon as a revocation is written.

Without Redis, a node wakes its own followers at once and sees other nodes' events by polling
the database every 200 ms. With `TESSERA_REDIS_URL`, every process that writes a revocation
(a node, the CLI) publishes on a channel (`tessera.context`), and every node's followers wake
at once, whichever process took the revocation.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis

from tessera.web.logs import get_logger

__all__ = ["Wakeup"]


class Wakeup:
    """One per node: the followers of each domain's feed wait on that domain's event, created
    when the first follower waits and dropped with the last, so idle domains cost nothing and
    a revocation in one domain wakes no follower of another."""

    def __init__(self, redis_url: str | None, channel: str) -> None:
        self._url = redis_url
        self._channel = channel
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("tessera.wakeup")
        self.closing = False

    def close(self) -> None:
        """The server is shutting down: end every long-poll now, and any later one at once
        (the server waits for open requests before it stops). Any thread, or a signal handler."""
        self.closing = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_all)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._url:
            self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def notify(self, domain_id: str) -> None:
        """Wake this node's followers of the domain's feed; called from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, domain_id)

    def _wake(self, domain_id: str) -> None:
        event = self._events.get(domain_id)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        for event in self._events.values():
            event.set()

    async def wait(self, timeout: float, domain_id: str) -> None:
        """Return when the domain's feed is woken or after `timeout` seconds."""
        if self._loop is None:
            await asyncio.sleep(timeout)
            return
        if self.closing:
            return
        event = self._events.get(domain_id)
        if event is None:
            event = self._events[domain_id] = asyncio.Event()
        self._waiting[domain_id] = self._waiting.get(domain_id, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            left = self._waiting[domain_id] - 1
            if left:
                self._waiting[domain_id] = left
            else:  # the last follower: forget the domain
                del self._waiting[domain_id]
                self._events.pop(domain_id, None)
        if not self.closing:
            event.clear()

    async def _listen(self) -> None:
        assert self._url is not None
        while True:
            try:
                client: Any = aioredis.Redis.from_url(self._url)
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake(bytes(message.get("data") or b"").decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the database poll covers the gap
                self._log.warning("redis_subscribe_failed", error=str(exc))
                await asyncio.sleep(1.0)
