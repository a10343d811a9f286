"""An app's public keys for `private_key_jwt`: its inline `jwks` or its fetched `jwks_uri`.

RFC 7591 §2 (`jwks_uri` is "referenced", `jwks` is "passed by value"; the keys are public),
RFC 7517 §5 (a JWK Set), RFC 7518 §3.3 (RSA keys of at least 2048 bits). The URI is
fetched with a timeout, a size limit counted as the body arrives and no redirects; the keys are
cached for `ttl` seconds, and a refetch (an unknown `kid`, or a failed fetch) happens at most
once per `refetch_interval` per URI, so a forged `kid` cannot make us hammer somebody's server.

The `jwks_uri` of an app that registered itself (RFC 7591) is fetched only from globally
routable addresses (`public_only`, `tessera.shared.addresses`): the host is resolved, every
address checked, and the connection made to a checked address (the Host header and TLS SNI
keep the name), so such an app cannot point us at internal services or cloud metadata
(server-side request forgery), also not by DNS rebinding. Apps an administrator registered may
name internal hosts.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey

from tessera.shared.addresses import literal_address, refusal
from tessera.shared.outbound import (
    AnswerRefused,
    FetchCache,
    FetchFailed,
    fetch,
    http_client,
    url_problem,
)
from tessera.shared.settings import is_loopback_host

__all__ = [
    "JwksFetcher",
    "JwksUnavailable",
    "allows_insecure_jwks_uri",
    "check_jwks_uri",
    "parse_jwks",
]

MAX_KEYS = 100
_MAX_URI = 2048
_MAX_CACHED_URIS = 4096
_KEY_TYPES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}
# RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2 and RFC 7517 §4.1 ("k"): any of these makes the key
# private or symmetric, which an app must never hand us.
_SECRET_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwksUnavailable(RuntimeError):
    """The app's keys cannot be fetched or are not an acceptable public JWK Set."""


def _public_key(item: Any) -> Key | None:
    """One JWK of the set as a verification key; None for a key not meant for signatures."""
    if not isinstance(item, dict):
        raise JwksUnavailable("a JWK Set member is not an object")
    secret = _SECRET_MEMBERS & item.keys()
    if secret:
        raise JwksUnavailable(
            f"the JWK Set holds private or symmetric key material {sorted(secret)}"
        )
    kty = item.get("kty")
    key_type = _KEY_TYPES.get(kty) if isinstance(kty, str) else None
    if key_type is None:
        raise JwksUnavailable("a key is not of type RSA, EC or OKP")
    ops = item.get("key_ops")
    if ops is not None and not (isinstance(ops, list) and all(isinstance(o, str) for o in ops)):
        raise JwksUnavailable("a key's key_ops is not an array of strings")  # RFC 7517 §4.3
    kid = item.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 256):
        raise JwksUnavailable("a key's kid is not a short string")
    try:
        key = key_type.import_key(item)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise JwksUnavailable(f"a key cannot be read: {exc}") from None
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:  # RFC 7518 §3.3
        raise JwksUnavailable("an RSA key is shorter than 2048 bits")
    # RFC 7517 §4.2-§4.3: keys published for encryption stay out of the verification set.
    if item.get("use", "sig") != "sig" or (ops is not None and "verify" not in ops):
        return None
    return key


def parse_jwks(value: Any, *, max_keys: int = MAX_KEYS) -> KeySet:
    """Check an app's JWK Set (inline `jwks`, or a fetched document) and return its signing
    keys. Refused (`JwksUnavailable`): not `{"keys": [...]}`, more than `max_keys` keys, a
    private or symmetric key, an unknown key type, a repeated `kid`, no signing key at all."""
    items = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(items, list) or not items:
        raise JwksUnavailable('not a JWK Set: expected {"keys": [...]}')
    if len(items) > max_keys:
        raise JwksUnavailable(f"the JWK Set has more than {max_keys} keys")
    keys = [key for key in map(_public_key, items) if key is not None]
    kids = [key.kid for key in keys if key.kid is not None]
    if len(kids) != len(set(kids)):  # an ambiguous kid would make key selection a guess
        raise JwksUnavailable("two keys of the JWK Set share a kid")
    if not keys:
        raise JwksUnavailable("the JWK Set has no key for signatures")
    return KeySet(keys)


def allows_insecure_jwks_uri(issuer: str) -> bool:
    """A development node (its own issuer is http on loopback) may fetch http `jwks_uri`s on
    loopback; every other node only https ones."""
    parts = urlsplit(issuer)
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def check_jwks_uri(uri: str, *, allow_insecure_loopback: bool = False) -> None:
    """RFC 7591 §2 / RFC 8414 §2: `https` only; `http` only to loopback, in development."""
    problem = url_problem(uri, max_length=_MAX_URI, allow_insecure_loopback=allow_insecure_loopback)
    if problem is not None:
        raise JwksUnavailable(f"the jwks_uri {problem}")


# host, port -> the addresses it resolves to
Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class JwksFetcher:
    """Fetches and caches apps' JWK Sets; thread-safe, one fetch at a time per URI."""

    def __init__(
        self,
        *,
        http_timeout: float = 3.0,
        max_bytes: int = 64 * 1024,
        ttl: float = 300.0,
        refetch_interval: float = 10.0,
        allow_insecure_loopback: bool = False,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
        resolve: Resolver = _resolve,
    ) -> None:
        self.http_timeout = http_timeout
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.allow_insecure_loopback = allow_insecure_loopback
        self.max_keys = max_keys
        self._resolve = resolve
        self._http = http_client(http_timeout)
        self._cache: FetchCache[tuple[str, bool], KeySet] = FetchCache(
            ttl=ttl,
            retry_interval=refetch_interval,
            wait=http_timeout,
            clock=clock,
            max_entries=_MAX_CACHED_URIS,
        )

    def close(self) -> None:
        self._http.close()

    def keys(self, jwks_uri: str, *, refresh: bool = False, public_only: bool = False) -> KeySet:
        """The signing keys at `jwks_uri`, from the cache while younger than `ttl`.

        `refresh=True` (the assertion names an unknown `kid`) fetches again unless the URI
        was tried less than `refetch_interval` ago; then the cached keys are returned as
        they are. `public_only`: connect to globally routable addresses only (loopback too on
        a development node). Raises `JwksUnavailable` when no usable keys can be had."""
        check_jwks_uri(jwks_uri, allow_insecure_loopback=self.allow_insecure_loopback)
        return self._cache.get(
            (jwks_uri, public_only),
            lambda: parse_jwks(self._fetch(jwks_uri, public_only), max_keys=self.max_keys),
            refresh=refresh,
            failures=JwksUnavailable,
            busy=lambda: JwksUnavailable(f"{jwks_uri} is being fetched; try again"),
        )

    def _checked_address(self, uri: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL to connect to (the host replaced by a checked address), its Host header
        and the TLS server name, for `public_only` fetches."""
        parts = urlsplit(uri)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = literal_address(host)
        try:
            found = [str(literal)] if literal is not None else self._resolve(host, port)
        except (OSError, UnicodeError):
            raise JwksUnavailable(f"cannot resolve {host}") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise JwksUnavailable(f"cannot resolve {host}")
        for address in addresses:
            reason = refusal(address)
            if reason is not None and not (self.allow_insecure_loopback and address.is_loopback):
                raise JwksUnavailable(f"{host} resolves to a {reason} address, which is refused")
        target = addresses[0]
        netloc = f"[{target}]" if target.version == 6 else str(target)
        pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
        host_header = parts.netloc.rpartition("@")[2]
        return pinned, {"Host": host_header}, {"sni_hostname": host}

    def _fetch(self, uri: str, public_only: bool = False) -> Any:
        deadline = time.monotonic() + self.http_timeout  # resolving the name counts too
        headers, target = {"Accept": "application/json"}, uri
        extensions: dict[str, Any] = {}
        if public_only:
            target, host, extensions = self._checked_address(uri)
            headers.update(host)
        try:
            answer = fetch(
                self._http,
                "GET",
                target,
                what=uri,
                max_bytes=self.max_bytes,
                deadline=deadline,
                headers=headers,
                extensions=extensions,
                read_only=(200,),  # an error page is not read: its status says enough
            )
        except AnswerRefused as exc:
            raise JwksUnavailable(str(exc)) from None
        except FetchFailed as exc:
            raise JwksUnavailable(f"cannot fetch {exc}") from None
        if answer.status != 200:
            raise JwksUnavailable(f"{uri} answered {answer.status}")
        try:
            return orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise JwksUnavailable(f"{uri} is not JSON") from None
