"""Login throttling in Redis (optional, `TESSERA_REDIS_URL`): the failure counts that rate-limit
logins, shared by every node without a database write per failed attempt.

Each key is a sorted set of failure times that expires on its own after the window.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import redis

from tessera.store.protocols import Failures, StoreUnavailable

__all__ = ["RedisLoginThrottle"]


class RedisLoginThrottle:
    def __init__(self, client: redis.Redis, prefix: str, window_seconds: int) -> None:
        self._redis = client
        self._prefix = f"{prefix}:login:"
        self._ttl = window_seconds + 60

    def failures(self, key: str, since: datetime) -> int:
        try:
            return int(self._redis.zcount(self._prefix + key, since.timestamp(), "+inf"))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def recent(self, keys: Sequence[str], since: datetime) -> dict[str, Failures]:
        start = since.timestamp()
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zcount(self._prefix + key, start, "+inf")
                    pipe.zrevrangebyscore(self._prefix + key, "+inf", start, 0, 1, withscores=True)
                answers = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        out = {}
        for i, key in enumerate(keys):
            count, latest = answers[2 * i], answers[2 * i + 1]
            last = datetime.fromtimestamp(latest[0][1], UTC) if latest else None
            out[key] = Failures(int(count), last)
        return out

    def record_failure(self, key: str, now: datetime) -> None:
        name = self._prefix + key
        try:
            with self._redis.pipeline() as pipe:
                pipe.zadd(name, {uuid.uuid4().hex: now.timestamp()})
                pipe.expire(name, self._ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def clear(self, key: str) -> None:
        try:
            self._redis.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def purge(self, before: datetime) -> int:
        return 0  # keys expire by themselves
