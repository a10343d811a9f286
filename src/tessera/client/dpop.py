"""DPoP, the client's half (RFC 9449): a key per login, a proof per request, server nonces.

    key = DPoPKey.generate()                            # P-256, ES256 (RFC 9449 §4.2)
    signer = DPoPSigner(key)
    headers["DPoP"] = signer.proof("POST", token_endpoint)            # §5: token requests
    headers["DPoP"] = signer.proof("GET", url, access_token=token)    # §7.1: with `ath`

The key is generated at `tessera login` and kept, private part included, in the login's token
cache entry (a 0600 file): a refresh must be signed by the same key (§5.0, §5.8), and the access
token is bound to its RFC 7638 thumbprint (`cnf.jkt`, §6.1). The authorization request names
that thumbprint too (`dpop_jkt`, §10), so an intercepted code is useless to another key.

Server nonces (§8, §9): a `use_dpop_nonce` answer carries a `DPoP-Nonce` header; the signer
remembers the latest nonce of each server (origin) and the caller retries once. Any answer may
carry a fresh nonce (§8.2): `remember()` records it for the next proof.

joserfc and cryptography are imported only when a key is used, as for `private_key_jwt`:
`tessera.client` stays importable with the standard library and httpx.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tessera.client.errors import ClientError
from tessera.client.stepup import parse_challenges

if TYPE_CHECKING:
    from joserfc.jwk import ECKey

__all__ = [
    "ALG",
    "DPoPKey",
    "DPoPSigner",
    "access_token_hash",
    "challenge_error",
    "htu_of",
    "is_nonce_challenge",
    "is_nonce_error",
    "origin_of",
    "server_supports_dpop",
]

ALG = "ES256"  # the one algorithm we sign with: P-256 keys are small and fast (§4.2)
_PRIVATE = ("kty", "crv", "x", "y", "d")
_NONCE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # §8.1: NQCHAR, 1 or more
_MAX_NONCE = 512
_B64URL = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def server_supports_dpop(algs: Sequence[str] | None) -> bool:
    """§5.1: the server lists `dpop_signing_alg_values_supported` with ES256."""
    return algs is not None and ALG in algs


def access_token_hash(token: str) -> str:
    """§4.2 `ath`: base64url (no padding) of the SHA-256 of the access token's ASCII."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def htu_of(url: str | httpx.URL) -> str:
    """§4.2 `htu`: the target URI without its query and fragment."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def origin_of(url: str | httpx.URL) -> str:
    """The server a nonce belongs to (§8: nonces are per server): scheme, host and port."""
    parts = urlsplit(str(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _nonce_header(response: httpx.Response) -> str | None:
    value = response.headers.get("DPoP-Nonce")
    if value is None:
        return None
    value = value.strip()
    return value if 0 < len(value) <= _MAX_NONCE and _NONCE.match(value) else None


def _json_error(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) else None


def is_nonce_error(response: httpx.Response) -> bool:
    """§8: the token endpoint's "use this nonce": 400 `use_dpop_nonce` with `DPoP-Nonce`."""
    return (
        response.status_code == 400
        and _nonce_header(response) is not None
        and _json_error(response) == "use_dpop_nonce"
    )


def challenge_error(response: httpx.Response) -> str | None:
    """The `error` of a 401's `WWW-Authenticate: DPoP` challenge (§7.1), if any."""
    if response.status_code != 401:
        return None
    for scheme, params in parse_challenges(response.headers.get_list("WWW-Authenticate")):
        if scheme == "dpop" and "error" in params:
            return params["error"]
    return None


def is_nonce_challenge(response: httpx.Response) -> bool:
    """§9: a resource's "use this nonce": 401, `WWW-Authenticate: DPoP error="use_dpop_nonce"`
    and `DPoP-Nonce`."""
    return _nonce_header(response) is not None and challenge_error(response) == "use_dpop_nonce"


@dataclass(frozen=True, slots=True)
class DPoPKey:
    """A P-256 key pair for DPoP proofs; `to_json` is the private JWK (for the 0600 cache)."""

    jwk: Mapping[str, str] = field(repr=False)  # the private JWK: kty, crv, x, y, d

    @classmethod
    def generate(cls) -> DPoPKey:
        from joserfc.jwk import ECKey

        key = ECKey.generate_key("P-256", private=True)
        data = key.as_dict(private=True)
        return cls({name: str(data[name]) for name in _PRIVATE})

    @classmethod
    def from_json(cls, data: Any) -> DPoPKey:
        """Inverse of `to_json`; `ValueError` unless a private P-256 JWK."""
        if not isinstance(data, Mapping):
            raise ValueError("dpop key is not a JWK")
        if data.get("kty") != "EC" or data.get("crv") != "P-256":
            raise ValueError("dpop key is not an EC P-256 JWK")
        if not all(isinstance(data.get(name), str) and data[name] for name in _PRIVATE):
            raise ValueError("dpop key is not a private JWK")
        if not all(_B64URL.match(data[name]) for name in ("x", "y", "d")):
            raise ValueError("dpop key is not a JWK (x, y, d must be base64url)")
        # The curve point is checked when the key is first used (`DPoPSigner`): reading the
        # cache must not import joserfc (`tessera token` in scripts starts fast).
        return cls({name: data[name] for name in _PRIVATE})

    def to_json(self) -> dict[str, str]:
        return dict(self.jwk)

    def _key(self) -> ECKey:
        from joserfc.jwk import ECKey

        return ECKey.import_key(dict(self.jwk))

    def public_jwk(self) -> dict[str, str]:
        """§4.2: the header's `jwk`: the public members only, never `d`."""
        return {name: self.jwk[name] for name in ("kty", "crv", "x", "y")}

    def thumbprint(self) -> str:
        """RFC 7638 (SHA-256): what the server binds tokens to (`cnf.jkt`) and `dpop_jkt`."""
        members = self.public_jwk()  # required members, in lexicographic order, no spaces
        canonical = (
            f'{{"crv":"{members["crv"]}","kty":"{members["kty"]}",'
            f'"x":"{members["x"]}","y":"{members["y"]}"}}'
        )
        digest = hashlib.sha256(canonical.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class DPoPSigner:
    """Proofs with one key, and the latest server nonce of each origin (§8.2: thread-safe; one
    signer is shared by a session's token requests and API calls)."""

    def __init__(self, key: DPoPKey, *, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self._clock = clock
        self._signing_key: ECKey | None = None
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def nonce_for(self, url: str | httpx.URL) -> str | None:
        with self._lock:
            return self._nonces.get(origin_of(url))

    def remember(self, response: httpx.Response) -> bool:
        """Keep the `DPoP-Nonce` of an answer for the next proof to its server (§8.2, §9);
        True when it is a new one."""
        nonce = _nonce_header(response)
        if nonce is None:
            return False
        origin = origin_of(response.request.url)
        with self._lock:
            new = self._nonces.get(origin) != nonce
            self._nonces[origin] = nonce
        return new

    def proof(self, method: str, url: str | httpx.URL, *, access_token: str | None = None) -> str:
        """A new proof JWT (§4.2): header `typ` dpop+jwt, `alg` ES256 and the public `jwk`;
        claims `jti` (random, 128 bits or more), `htm`, `htu`, `iat`, the server's latest
        `nonce` if any, and `ath` when presenting `access_token` (§7.1)."""
        from joserfc import jws

        if self._signing_key is None:
            try:
                self._signing_key = self.key._key()
            except Exception:  # joserfc / cryptography errors vary: any means "not a key"
                raise ClientError(
                    "the login's DPoP key in the token cache is not a valid P-256 key",
                    hint="run tessera login again",
                ) from None
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(self._clock()),
        }
        nonce = self.nonce_for(url)
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        header = {"typ": "dpop+jwt", "alg": ALG, "jwk": self.key.public_jwk()}
        payload = _compact_json(claims)
        return jws.serialize_compact(header, payload, self._signing_key, algorithms=[ALG])


def _compact_json(data: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":")).encode("utf-8")
