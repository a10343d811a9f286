"""Revocation awareness by asking the identity domain (RFC 7662), with a short cache.

Simple and always current to within `cache_seconds`, at the price of one call per token per
interval; the revocation feed (`tessera.resource.feed`) does without any per-token call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["IntrospectionCheck"]


class IntrospectionCheck:
    def __init__(
        self,
        introspection_endpoint: str,
        client_id: str,
        client_secret: str,
        *,
        cache_seconds: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._endpoint = introspection_endpoint
        self._auth = (client_id, client_secret)
        self._ttl = cache_seconds
        self._http = http or httpx.Client(timeout=5.0)
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            response = self._http.post(
                self._endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
            )
            response.raise_for_status()
            revoked = not bool(response.json().get("active"))
        except (httpx.HTTPError, ValueError):
            return True  # fail closed: an unverifiable token is refused
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, revoked)
        return revoked
