"""What a running identity domain holds: its settings, store, signing keys and clock.

The CLI and the web app both open one with `open_context`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tessera.config import Settings
from tessera.domain.identity_domains import DOMAIN_RULES, IdentityDomain, domain_issuer
from tessera.domain.model import DEFAULT_DOMAIN
from tessera.oauth.keyring import KeyRing
from tessera.store.protocols import Store
from tessera.store.sql import SqlStore, upgrade

if TYPE_CHECKING:
    from redis import Redis

__all__ = [
    "Context",
    "domain_settings",
    "domain_signing_key",
    "domain_subkey",
    "open_context",
    "utcnow",
]


def _publish_revocation(client: Redis, channel: str, domain_id: str) -> None:
    """Wake every node's followers of the domain's revocation feed (best effort: they also
    poll). The message is the domain's id."""
    from redis import RedisError

    with contextlib.suppress(RedisError):
        client.publish(channel, domain_id.encode())


def utcnow() -> datetime:
    return datetime.now(UTC)


def domain_subkey(settings: Settings, domain_id: str, purpose: str) -> bytes:
    """`Settings.subkey` of a domain (see `Context.subkey`)."""
    if domain_id == DEFAULT_DOMAIN:
        return settings.subkey(purpose)
    return settings.subkey(f"{purpose} of domain {domain_id}")


def domain_signing_key(settings: Settings, domain_id: str) -> bytes:
    """The key that seals a domain's signing keys in the database."""
    return domain_subkey(settings, domain_id, "signing-keys")


def domain_settings(base: Settings, domain: IdentityDomain) -> Settings:
    """The node's settings with the domain's issuer and its own settings applied."""
    overrides: dict[str, object] = {
        name: value
        for name, value in domain.settings.as_dict().items()
        if name not in DOMAIN_RULES  # the domain's own rules, not node settings
    }
    return base.model_copy(update={"issuer": domain_issuer(base.issuer, domain), **overrides})


@dataclass
class Context:
    """One identity domain's settings, store, keys and clock (`settings.issuer` is the
    domain's issuer)."""

    settings: Settings
    store: Store
    keys: KeyRing
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def domain_id(self) -> str:
        return self.store.domain_id

    def subkey(self, purpose: str) -> bytes:
        """A key of this domain derived from TESSERA_SECRET_KEY: the default domain's are the
        keys it always had; every other domain's differ, so nothing keyed for one (a CSRF
        token, a known-device cookie, a sealed signing key) is valid in another."""
        return domain_subkey(self.settings, self.domain_id, purpose)

    @property
    def secret_pepper(self) -> bytes:
        """The key of the client-secret hashes."""
        return self.subkey("client-secret")

    def for_domain(self, domain: IdentityDomain) -> Context:
        """The context of another domain on the same database: its issuer and settings, its
        store view and its key ring (keys load when first used)."""
        base = self.settings
        if domain.id == self.domain_id and base.issuer == domain_issuer(base.issuer, domain):
            settings = base
        else:
            settings = domain_settings(base, domain)
        store = self.store.for_domain(domain.id)
        ctx = Context(settings=settings, store=store, keys=self.keys, clock=self.clock)
        if domain.id != self.domain_id:
            ctx.keys = KeyRing(store.keys, domain_signing_key(base, domain.id), utcnow)
        return ctx

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
        # Imported here: without Redis (every admin command) nothing of it is loaded.
        import redis

        from tessera.store.redis_throttle import RedisLoginThrottle

        # Login failure counts shared by all nodes without a database write per attempt.
        client = redis.Redis.from_url(
            settings.redis_url.get_secret_value(), socket_timeout=2, socket_connect_timeout=2
        )
        prefix, window = settings.redis_prefix, settings.login_failure_window
        store.use_login_throttle(
            lambda domain_id: RedisLoginThrottle(client, f"{prefix}:{domain_id}", window)
        )
        channel = settings.revocation_channel
        store.revocation_listeners.append(
            lambda domain_id: _publish_revocation(client, channel, domain_id)
        )
    store.ensure_domain("Default", utcnow())
    keys = KeyRing(store.keys, domain_signing_key(settings, store.domain_id), utcnow)
    return Context(settings=settings, store=store, keys=keys)
