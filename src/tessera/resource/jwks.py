"""Discovery (RFC 8414) and the JWKS (RFC 7517) of one issuer, cached.

An unknown `kid` triggers one refetch, at most once per `refetch_interval`, so a forged `kid`
cannot make us hammer the identity domain; keys published ahead of rotation are known before
they sign.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from joserfc.jwk import ECKey, RSAKey

__all__ = ["DiscoveryError", "JwksCache"]

_Key = ECKey | RSAKey


class DiscoveryError(RuntimeError):
    """The issuer's metadata or keys cannot be fetched or do not match."""


class JwksCache:
    def __init__(
        self,
        issuer: str,
        *,
        http: httpx.Client | None = None,
        jwks_uri: str | None = None,
        refetch_interval: float = 30.0,
        max_age: float = 3600.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._http = http or httpx.Client(timeout=5.0)
        self._jwks_uri = jwks_uri
        self._metadata: dict[str, Any] | None = None
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._keys: dict[str, _Key] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        """The issuer's metadata; its `issuer` must equal ours exactly (RFC 8414 §3.3)."""
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                response = self._http.get(url)
                response.raise_for_status()
                data = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise DiscoveryError(f"cannot read {url}: {exc}") from None
            if not isinstance(data, dict) or data.get("issuer") != self.issuer:
                raise DiscoveryError(f"{url} names another issuer")
            self._metadata = data
        return self._metadata

    @property
    def jwks_uri(self) -> str:
        if self._jwks_uri is None:
            uri = self.metadata().get("jwks_uri")
            if not isinstance(uri, str):
                raise DiscoveryError("the issuer's metadata has no jwks_uri")
            self._jwks_uri = uri
        return self._jwks_uri

    def _fetch(self) -> None:
        # Counted as an attempt even if it fails: a broken JWKS is retried once per interval,
        # not on every request (the identity domain may be struggling already).
        self._fetched_at = time.monotonic()
        try:
            response = self._http.get(self.jwks_uri)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DiscoveryError(f"cannot read the JWKS: {exc}") from None
        keys: dict[str, _Key] = {}
        items = data.get("keys") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            kid, kty = item.get("kid"), item.get("kty")
            if not isinstance(kid, str) or item.get("use", "sig") != "sig":
                continue
            if "d" in item:  # a private key in a JWKS is a misconfiguration: ignore it
                continue
            try:
                if kty == "EC":
                    keys[kid] = ECKey.import_key(item)
                elif kty == "RSA":
                    keys[kid] = RSAKey.import_key(item)
            except Exception:  # noqa: S112 - skip a key we cannot use, keep the others
                continue
        self._keys = keys

    def get(self, kid: str) -> _Key | None:
        """The key for `kid`, refetching the JWKS once if it is unknown or stale."""
        key = self._keys.get(kid)
        age = time.monotonic() - self._fetched_at
        if key is not None and age < self._max_age:
            return key
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if kid in self._keys and age < self._max_age:
                return self._keys[kid]
            if age >= self._refetch_interval:
                self._fetch()
        return self._keys.get(kid)
