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
    def __init__(self, redis_url: str | None, channel: str) -> None:
        self._url = redis_url
        self._channel = channel
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("tessera.wakeup")
        self.closing = False

    def close(self) -> None:
        """The server is shutting down: end every long-poll now, and any later one at once
        (the server waits for open requests before it stops). Any thread, or a signal handler."""
        self.closing = True
        self._wake_local()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        if self._url:
            self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def notify(self) -> None:
        """Wake this node's followers; called from any thread."""
        self._wake_local()

    def _wake_local(self) -> None:
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        """Return when woken or after `timeout` seconds."""
        if self._event is None:
            await asyncio.sleep(timeout)
            return
        if self.closing:
            return
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
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
                            self._wake_local()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the database poll covers the gap
                self._log.warning("redis_subscribe_failed", error=str(exc))
                await asyncio.sleep(1.0)
