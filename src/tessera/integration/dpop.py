"""DPoP proofs of the `invoke` step's outbound calls (RFC 9449, the client's side).

A `ProofSigner` holds a P-256 key (in memory: a token bound to it lives as long as the process
caches the token) and signs the proofs of §4.2: to the token endpoint (no `ath`), then to the
connection with `ath`. Server nonces (§8 at the token endpoint, §9 at a resource) are kept per
origin and retried once when a server asks for one. `tessera.client` has its own signer: the
client package imports nothing of Tessera.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

from tessera.shared.dpop import access_token_hash

__all__ = ["NonceMemory", "ProofSigner", "htu", "nonce_asked"]

_MAX_NONCE = 512


def htu(url: str) -> str:
    """§4.2: the request's URL without query and fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ProofSigner:
    """One P-256 key and the proofs it signs (ES256, §4.2)."""

    def __init__(self) -> None:
        self._key = ECKey.generate_key("P-256")
        public = {k: v for k, v in self._key.as_dict(private=False).items() if k != "kid"}
        self._header: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public}

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint (`cnf.jkt` of the tokens bound to it)."""
        return str(self._key.thumbprint())

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(18),
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        payload = orjson.dumps(claims)
        return jws.serialize_compact(self._header, payload, self._key, algorithms=["ES256"])


class NonceMemory:
    """The last nonce each origin gave us (§8.2: a server may send a new one with any
    answer); bounded."""

    def __init__(self, max_entries: int = 1000) -> None:
        self._nonces: dict[str, str] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, url: str) -> str | None:
        return self._nonces.get(origin(url))

    def remember(self, url: str, headers: Mapping[str, str]) -> str | None:
        """Keep the answer's `DPoP-Nonce`, if any (and sane); return it."""
        nonce = headers.get("dpop-nonce")
        if not nonce or len(nonce) > _MAX_NONCE or not nonce.isprintable():
            return None
        with self._lock:
            if len(self._nonces) >= self._max:
                self._nonces.clear()
            self._nonces[origin(url)] = nonce
        return nonce


def nonce_asked(status: int, headers: Mapping[str, str], body: bytes) -> bool:
    """The answer asks for a proof with the server's nonce: 400 `use_dpop_nonce` from a token
    endpoint (§8), or 401 with the DPoP challenge's `error="use_dpop_nonce"` (§9)."""
    if "dpop-nonce" not in headers:
        return False
    if status == 401:
        return 'error="use_dpop_nonce"' in headers.get("www-authenticate", "")
    if status == 400:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        return isinstance(answer, dict) and answer.get("error") == "use_dpop_nonce"
    return False
