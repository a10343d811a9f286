"""DPoP (RFC 9449) at a resource server: sender-constrained access tokens.

A token bound to a key (`cnf.jkt`, §6.1) is accepted only as `Authorization: DPoP <token>` with
a proof of that key for this very request (§7.1): every check of
`tessera.shared.dpop.verify_proof` against the request's method and URL, `ath` for this token,
the proof's key thumbprint equal to `cnf.jkt`, and the proof's `jti` used once (§11.1). A bound
token sent as Bearer is refused (§7.2), and so is an unbound token sent with the DPoP scheme.
A resource may also require DPoP (`DPoPPolicy(required=True)`, or per route in the adapters),
refusing every Bearer token.

The proof is checked on every request, also when the token's validation is cached: a proof is
per request, a token is not.

The URL a proof names (`htu`) is the one the client used. Behind a reverse proxy that is not
what the app sees unless the proxy passes it on: give the app's public base URL
(`public_url`, which also pins the host, so a proof made for another host is refused whatever
`Host` header comes with it), or run uvicorn with `--proxy-headers` and `--forwarded-allow-ips`
set to the proxies, so the scope's scheme is the client's (the host is the `Host` header).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from redis.exceptions import RedisError

from tessera.resource.errors import (
    InvalidDPoPProofError,
    InvalidRequestError,
    InvalidTokenError,
    TemporarilyUnavailableError,
    TokenError,
    UseDPoPNonceError,
)
from tessera.shared.authorization import AccessCredentials, request_authorization
from tessera.shared.bearer import MalformedAuthorization
from tessera.shared.dpop import (
    DEFAULT_ALGS,
    SUPPORTED_ALGS,
    InvalidProof,
    NonceRequired,
    NonceSource,
    Proof,
    ProofReplay,
    normalize_htu,
    proof_from_headers,
    replay_key,
    verify_proof,
)

if TYPE_CHECKING:
    import redis

    from tessera.resource.stepup import AuthRequirement
    from tessera.resource.validator import AccessToken, TokenValidator

__all__ = [
    "DPoPPolicy",
    "MemoryProofReplay",
    "RedisProofReplay",
    "check_proof",
    "read_credentials",
    "request_url",
    "use_proof",
    "validate_request",
]


class MemoryProofReplay:
    """One process's memory of proof `jti`s (§11.1), for a resource served by one process.

    Bounded: entries leave when they expire (the front of the insertion order is purged on each
    use, proofs expiring in about the order they arrive). When `max_entries` live proofs are
    remembered, new ones are refused with 503 rather than forgetting one that could then be
    replayed. Several processes or replicas need a shared memory: `RedisProofReplay`."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time):
        self._seen: dict[str, float] = {}
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def use_once(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            self._purge(now)
            found = self._seen.get(key)
            if found is not None and found > now:
                return False
            if len(self._seen) >= self._max:
                raise TemporarilyUnavailableError(
                    "too many DPoP proofs to remember right now", retry_after=1
                )
            self._seen.pop(key, None)  # an expired entry: re-inserted at the back
            self._seen[key] = expires_at
            return True

    def _purge(self, now: float) -> None:
        seen = self._seen
        while seen:
            key = next(iter(seen))
            if seen[key] > now:
                return
            del seen[key]


class RedisProofReplay:
    """Proof `jti`s in Redis (§11.1), shared by every replica: `SET key 1 NX EXAT expiry`,
    one round trip, atomic. An unreachable Redis refuses proofs with 503 (fail closed)."""

    def __init__(self, client: redis.Redis, prefix: str = "tessera:") -> None:
        self._redis = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "tessera:") -> RedisProofReplay:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), prefix)

    def use_once(self, key: str, expires_at: float) -> bool:
        # A second later than asked, never in the past: EXAT takes whole seconds.
        expiry = max(math.ceil(expires_at) + 1, int(time.time()) + 1)
        try:
            return bool(self._redis.set(self._prefix + key, b"1", nx=True, exat=expiry))
        except RedisError:
            raise TemporarilyUnavailableError(
                "the DPoP replay cache is unavailable", retry_after=1
            ) from None


@dataclass(frozen=True)
class DPoPPolicy:
    """How a resource checks DPoP proofs (RFC 9449 §7.1).

    - `algorithms`: the proof algorithms accepted and advertised (`algs` of the challenge);
    - `replay`: where proof `jti`s are remembered (in memory by default; `RedisProofReplay`
      or any `ProofReplay` shared by the replicas of a resource);
    - `nonces`: require the resource's nonces (§9: 401 `use_dpop_nonce` with `DPoP-Nonce`);
      replicas share them by sharing the `NonceSource` secret;
    - `required`: refuse Bearer tokens (unbound or not) on every route;
    - `public_url`: the app's public base URL (scheme, host, port and any path prefix a proxy
      strips), from which `htu` is computed instead of from the request's scope and `Host`;
    - `max_age`, `leeway`: how old (and how far ahead) a proof's `iat` may be, in seconds.
    """

    algorithms: tuple[str, ...] = DEFAULT_ALGS
    replay: ProofReplay = field(default_factory=MemoryProofReplay)
    nonces: NonceSource | None = None
    required: bool = False
    public_url: str | None = None
    max_age: int = 60
    leeway: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.algorithms) - SUPPORTED_ALGS
        if unknown or not self.algorithms:
            raise ValueError(f"DPoP algorithms must be some of {sorted(SUPPORTED_ALGS)}")
        if self.public_url is not None:
            normalize_htu(self.public_url)  # ValueError for anything but an http(s) URL
            object.__setattr__(self, "public_url", self.public_url.rstrip("/"))

    @property
    def local_replay(self) -> bool:
        """The replay memory does no I/O (it may run on the event loop)."""
        return isinstance(self.replay, MemoryProofReplay)


def request_url(scope: Any, public_url: str | None = None) -> str:
    """The URL the client used for this request (§4.3 check 9 compares `htu` with it): the
    path as sent (`raw_path`) on `public_url` when given, else on the scope's scheme and the
    `Host` header (the server's address without one)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        path = raw.decode("latin-1").partition("?")[0]
    else:
        path = quote(scope.get("path") or "/", safe="/:@!$&'()*+,;=-._~%")
    if public_url is not None:
        return public_url + path
    host = None
    for name, value in scope.get("headers") or ():
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{path}"


def check_proof(
    policy: DPoPPolicy,
    credentials: AccessCredentials,
    token: AccessToken,
    proofs: Sequence[str],
    *,
    method: str,
    url: str,
    now: float,
    required: bool = False,
) -> Proof | None:
    """RFC 9449 §7.1 and §7.2 for a validated `token` sent with `credentials`: the verified
    proof of a DPoP request (its `jti` not yet used: `use_proof`), None for a Bearer request
    the resource accepts; raises `InvalidTokenError`, `InvalidDPoPProofError` or
    `UseDPoPNonceError` (all with the DPoP challenge alone)."""
    bound = token.jkt
    if not credentials.is_dpop:
        if bound is not None:  # §7.2: a stolen bound token must not work as a bearer token
            raise InvalidTokenError(
                "the access token is DPoP-bound: send it as Authorization: DPoP with a proof"
            ).for_dpop(policy.algorithms, only=True)
        if required or policy.required:
            raise InvalidTokenError("this resource requires a DPoP-bound access token").for_dpop(
                policy.algorithms, only=True
            )
        return None
    if bound is None:  # §7.1: the DPoP scheme is for bound tokens only
        raise InvalidTokenError(
            "the access token is not DPoP-bound: send it as Authorization: Bearer"
        ).for_dpop(policy.algorithms, only=True)
    try:
        raw = proof_from_headers(list(proofs))
        if raw is None:
            raise InvalidProof("send a DPoP proof in the DPoP header")
        proof = verify_proof(
            raw,
            method=method,
            url=url,
            now=now,
            algorithms=policy.algorithms,
            max_age=policy.max_age,
            leeway=policy.leeway,
            access_token=credentials.token,
            nonces=policy.nonces,
        )
    except NonceRequired as exc:
        assert policy.nonces is not None
        raise UseDPoPNonceError(exc.description, nonce=policy.nonces.current(now)).for_dpop(
            policy.algorithms
        ) from None
    except InvalidProof as exc:
        raise InvalidDPoPProofError(exc.description).for_dpop(policy.algorithms) from None
    if not hmac.compare_digest(proof.jkt, bound):
        # §7.1 (its Figure 17): a proof by another key than the token's is `invalid_token`.
        raise InvalidTokenError(
            "the DPoP proof's key is not the one the access token is bound to"
        ).for_dpop(policy.algorithms, only=True)
    return proof


def read_credentials(
    query: Container[str], authorization: Sequence[str]
) -> AccessCredentials | None:
    """The request's `Bearer` or `DPoP` credentials (None without an Authorization header);
    `InvalidRequestError` for a malformed header or a token in the query."""
    try:
        return request_authorization(query, list(authorization))
    except MalformedAuthorization as exc:
        raise InvalidRequestError(str(exc)) from None


def use_proof(policy: DPoPPolicy, proof: Proof) -> None:
    """§11.1: the proof's `jti` once per key, remembered until the proof is too old anyway."""
    expires_at = proof.iat + policy.max_age + policy.leeway
    if not policy.replay.use_once(replay_key(proof.jkt, proof.jti), expires_at):
        raise InvalidDPoPProofError("the DPoP proof was used before").for_dpop(policy.algorithms)


def validate_request(
    validator: TokenValidator,
    *,
    authorization: Sequence[str],
    dpop: Sequence[str],
    method: str,
    url: str,
    scopes: Sequence[str] = (),
    requirement: AuthRequirement | None = None,
    require_dpop: bool = False,
) -> AccessToken:
    """A request's token for code without an adapter (blocking: may fetch the JWKS or use a
    shared replay cache): the `Authorization` and `DPoP` header values, the method and the URL
    the client used. RFC 6750 §2.1 or RFC 9449 §7.1, then `scopes` and `requirement`; raises a
    `TokenError` whose `headers()` carry the right challenge."""
    policy = validator.dpop
    only = require_dpop or policy.required
    try:
        credentials = read_credentials((), authorization)
        if credentials is None:
            raise InvalidTokenError("")
        only = only or credentials.is_dpop
        token = validator.validate_token(credentials.token)
        only = only or token.is_dpop_bound
        proof = check_proof(
            policy,
            credentials,
            token,
            dpop,
            method=method,
            url=url,
            now=validator.clock(),
            required=require_dpop,
        )
        if proof is not None:
            use_proof(policy, proof)
        validator.require_scopes(token, scopes)
        validator.require_authentication(token, requirement)
        return token
    except TokenError as exc:
        raise exc.for_dpop(policy.algorithms, only=only) from None
