"""What a running identity domain holds: its settings, store, signing keys and clock.

The CLI and the web app both open one with `open_context`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from tessera.config import Settings
from tessera.domain.model import DEFAULT_DOMAIN
from tessera.oauth.keyring import KeyRing
from tessera.store.protocols import Store
from tessera.store.redis_throttle import RedisLoginThrottle
from tessera.store.sql import SqlStore, upgrade

__all__ = ["Context", "open_context", "utcnow"]


def _publish_revocation(client: redis.Redis, channel: str) -> None:
    """Wake every node's revocation-feed followers (best effort: they also poll)."""
    with contextlib.suppress(redis.RedisError):
        client.publish(channel, b"1")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    store: Store
    keys: KeyRing
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def secret_pepper(self) -> bytes:
        """The key of the client-secret hashes."""
        return self.settings.subkey("client-secret")

    def close(self) -> None:
        self.store.close()


def open_context(settings: Settings, *, migrate: bool = False, pool_size: int = 10) -> Context:
    """Open the store (migrating first when asked) and the key ring.

    Raises `SchemaNotCurrent` when the database is not migrated and `migrate` is False.
    """
    if migrate:
        upgrade(settings.db_url)
    store = SqlStore.open(settings.db_url, DEFAULT_DOMAIN, pool_size=pool_size)
    if settings.redis_url is not None:
        # Login failure counts shared by all nodes without a database write per attempt.
        client = redis.Redis.from_url(
            settings.redis_url.get_secret_value(), socket_timeout=2, socket_connect_timeout=2
        )
        store.login_throttle = RedisLoginThrottle(
            client, f"{settings.redis_prefix}:{DEFAULT_DOMAIN}", settings.login_failure_window
        )
        channel = settings.revocation_channel
        store.revocation_listeners.append(lambda: _publish_revocation(client, channel))
    store.ensure_domain("Default", utcnow())
    keys = KeyRing(store.keys, settings.subkey("signing-keys"), utcnow)
    return Context(settings=settings, store=store, keys=keys)
