"""Validation of JWT access tokens at a resource server (RFC 9068 §4, RFC 8725, RFC 6750).

The checks, in order: size; header (`alg` on the allow-list, never `none` or HMAC; `typ`
`at+jwt`; no `crit`; a `kid`); the signature with the issuer's key for that `kid` (one JWKS
refetch for an unknown one); `iss` equal to the configured issuer, never a substring; `aud`
containing our audience; `exp`, `nbf`, `iat` with a small skew; not revoked. Valid tokens are
cached by a hash of the token until they expire, so repeated calls cost microseconds; the
revocation check runs on every call, cached or not.

The user's sign-in is read from the token too (RFC 9068 §2.2.1, RFC 9470 §5): `acr`, `amr` and
`auth_time`, for routes that require a level or a recent sign-in (`tessera.resource.stepup`).
A malformed value counts as absent, so it never meets a requirement.

Application roles and groups (RFC 9068 §2.2.3.1, SCIM's multi-valued attributes of RFC 7643
§4.1.2): `roles` and `groups` are JSON arrays of strings; anything else counts as no role or
group (a malformed claim grants nothing), and non-string entries are dropped.
`require_roles` answers 403 `insufficient_scope` naming the roles any one of which would do.

A DPoP-bound token (RFC 9449 §6.1: `cnf.jkt`) is valid only with a proof of its key for each
request; the adapters check that (`tessera.resource.dpop`, per the validator's `dpop` policy).
A token bound otherwise (a `cnf` without `jkt`, such as RFC 8705's certificate binding) is
refused: this resource cannot check that binding.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from joserfc import jwt
from joserfc.errors import JoseError

from tessera.resource.dpop import DPoPPolicy
from tessera.resource.errors import (
    InsufficientRoleError,
    InsufficientScopeError,
    InvalidTokenError,
)
from tessera.resource.jwks import DiscoveryError, JwksCache
from tessera.shared.bearer import MAX_TOKEN_LENGTH
from tessera.shared.jwt_parts import decode_segment, is_numeric_date

if TYPE_CHECKING:
    from tessera.resource.stepup import AuthRequirement

__all__ = ["AccessToken", "RevocationCheck", "TokenValidator"]

_ALLOWED_ALGS = frozenset({"ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "EdDSA"})
_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class RevocationCheck(Protocol):
    """Whether a validated token was revoked; raises a `TokenError` (such as
    `RevocationUnavailableError`, 503) when it cannot tell right now."""

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A validated access token."""

    subject: str
    sub_type: str
    client_id: str
    scopes: frozenset[str]
    expires_at: int
    jti: str
    issued_at: int
    audience: tuple[str, ...]
    user_display_name: str | None = None
    grant_id: str | None = None
    acr: str | None = None  # the level of the user's sign-in (RFC 9470 §5)
    amr: tuple[str, ...] = ()  # its methods (RFC 8176)
    auth_time: int | None = None  # when the user signed in, seconds since the epoch
    jkt: str | None = None  # the key the token is bound to (RFC 9449 §6.1 `cnf.jkt`)
    roles: frozenset[str] = frozenset()  # application roles (RFC 9068 §2.2.3.1)
    groups: frozenset[str] = frozenset()  # the user's groups, when the resource asks for them
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_user(self) -> bool:
        return self.sub_type == "user"

    @property
    def is_dpop_bound(self) -> bool:
        """Bound to a key (RFC 9449): it came with a DPoP proof of that key, checked."""
        return self.jkt is not None

    def has_scopes(self, required: Iterable[str]) -> bool:
        return set(required) <= self.scopes

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)


def _b64json(segment: str) -> dict[str, Any]:
    value = decode_segment(segment)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class TokenValidator:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        algorithms: Collection[str] = ("ES256", "RS256"),
        leeway: int = 30,
        jwks: JwksCache | None = None,
        http: httpx.Client | None = None,
        revocation: RevocationCheck | None = None,
        cache_size: int = 10000,
        clock: Callable[[], float] = time.time,
        dpop: DPoPPolicy | None = None,
    ) -> None:
        """`dpop`: how DPoP proofs are checked (RFC 9449; default: in-memory replay, no
        nonces, Bearer tokens accepted when unbound)."""
        unsafe = set(algorithms) - _ALLOWED_ALGS
        if unsafe:
            raise ValueError(f"refusing algorithms {sorted(unsafe)}: never none or HMAC")
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.jwks = jwks or JwksCache(self.issuer, http=http)
        self.revocation = revocation
        self.dpop = dpop or DPoPPolicy()
        self._cache: dict[str, AccessToken] = {}
        self._cache_size = cache_size
        self.clock = clock
        self._lock = threading.Lock()

    # --- public API -----------------------------------------------------------------------------

    def cached(self, token: str) -> AccessToken | None:
        """A previously validated, unexpired, unrevoked token, or None (no I/O; like
        `validate_token`, the DPoP binding is the caller's to check)."""
        found = self._cache.get(_key(token))
        if found is None:
            return None
        if found.expires_at + self.leeway <= self.clock():
            return None
        self._check_revoked(token, found.claims)
        return found

    def validate(
        self,
        token: str,
        scopes: Iterable[str] = (),
        requirement: AuthRequirement | None = None,
    ) -> AccessToken:
        """Validate `token` sent as a bearer token, check it carries `scopes` (403), then that
        its user sign-in meets `requirement` (401 `insufficient_user_authentication`); raise a
        `TokenError`. A DPoP-bound token is refused (RFC 9449 §7.2): it needs the request's
        proof (the adapters, or `tessera.resource.dpop.validate_request`)."""
        result = self.validate_token(token)
        if result.is_dpop_bound:
            raise InvalidTokenError(
                "the access token is DPoP-bound: send it as Authorization: DPoP with a proof"
            ).for_dpop(self.dpop.algorithms, only=True)
        self.require_scopes(result, scopes)
        self.require_authentication(result, requirement)
        return result

    def validate_token(self, token: str) -> AccessToken:
        """The token's own checks (cached): signature, claims, revocation. Not its DPoP
        binding: for a bound token the caller checks the request's proof
        (`tessera.resource.dpop.check_proof`)."""
        return self.cached(token) or self._validate_uncached(token)

    def require_authentication(
        self, token: AccessToken, requirement: AuthRequirement | None
    ) -> None:
        """RFC 9470 §3: raise `InsufficientUserAuthenticationError` unless the token's sign-in
        meets `requirement` (by this validator's clock, with its leeway)."""
        if requirement:
            requirement.check(token, self.clock(), self.leeway)

    @staticmethod
    def require_scopes(token: AccessToken, scopes: Iterable[str]) -> None:
        needed = list(scopes)
        if needed and not token.has_scopes(needed):
            raise InsufficientScopeError(
                "the access token lacks a required scope", scope=" ".join(needed)
            )

    @staticmethod
    def require_roles(token: AccessToken, any_of: Iterable[str]) -> None:
        """Raise `InsufficientRoleError` (403 `insufficient_scope`) unless the token carries
        one of the roles `any_of` (none given: nothing is required)."""
        wanted = tuple(any_of)
        if wanted and not token.has_any_role(wanted):
            raise InsufficientRoleError(wanted)

    # --- the checks -----------------------------------------------------------------------------

    def _validate_uncached(self, token: str) -> AccessToken:
        header = self._check_header(token)
        claims = self._check_signature(token, header)
        self._check_claims(claims)
        self._check_revoked(token, claims)
        result = _access_token(claims)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[_key(token)] = result
        return result

    def _check_header(self, token: str) -> dict[str, Any]:
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidTokenError("the access token is not a signed JWT")
        encoded = token.split(".", 1)[0]
        if len(encoded) > 2048:  # a real header is a few hundred bytes (unbounded JOSE input)
            raise InvalidTokenError("the access token header is too large")
        try:
            header = _b64json(encoded)
        except (ValueError, UnicodeError, RecursionError):
            raise InvalidTokenError("the access token header is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            # RFC 8725 §3.1: never `none`, never HMAC with a public key (alg confusion).
            raise InvalidTokenError("the token's signing algorithm is not accepted")
        if "crit" in header:
            raise InvalidTokenError("the token has critical header parameters we do not know")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _TYPES:
            raise InvalidTokenError("the token is not a JWT access token (typ at+jwt)")  # §4
        if not isinstance(header.get("kid"), str):
            raise InvalidTokenError("the token names no key")
        return header

    def _check_signature(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        try:
            key = self.jwks.get(str(header["kid"]))
        except DiscoveryError:
            raise InvalidTokenError("the issuer's keys are unavailable") from None
        if key is None:
            raise InvalidTokenError("the token is signed with an unknown key")
        try:
            decoded = jwt.decode(token, key, algorithms=[str(header["alg"])])
        except (JoseError, ValueError, TypeError, RecursionError, OverflowError):
            raise InvalidTokenError("the token's signature is invalid") from None
        return dict(decoded.claims)

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self.issuer:  # exact, never a substring (CVE-2024-53861)
            raise InvalidTokenError("the token is from another issuer")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise InvalidTokenError("the token is for another audience")
        now = self.clock()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not is_numeric_date(exp) or exp + self.leeway <= now:
            raise InvalidTokenError("the token has expired")
        if nbf is not None and (not is_numeric_date(nbf) or nbf - self.leeway > now):
            raise InvalidTokenError("the token is not valid yet")
        if not is_numeric_date(iat) or iat - self.leeway > now:
            raise InvalidTokenError("the token's issue time is in the future")
        for name in ("sub", "client_id", "jti"):
            if not isinstance(claims.get(name), str):
                raise InvalidTokenError(f"the token has no {name}")
        if "cnf" in claims and _jkt(claims) is None:
            raise InvalidTokenError("the token is bound by a confirmation method we cannot check")

    def _check_revoked(self, token: str, claims: Mapping[str, Any]) -> None:
        if self.revocation is not None and self.revocation.is_revoked(token, claims):
            raise InvalidTokenError("the token has been revoked")


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _jkt(claims: Mapping[str, Any]) -> str | None:
    """RFC 9449 §6.1: the `cnf.jkt` thumbprint, None when absent or malformed."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and 0 < len(jkt) <= 128 else None


def _names(value: Any) -> frozenset[str]:
    """A `roles` or `groups` claim: the non-empty strings of a JSON array; a claim of any other
    shape grants nothing."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str) and item)


def _access_token(claims: Mapping[str, Any]) -> AccessToken:
    audience = claims["aud"]
    scope = claims.get("scope", "")
    acr, amr, auth_time = claims.get("acr"), claims.get("amr"), claims.get("auth_time")
    return AccessToken(
        subject=str(claims["sub"]),
        sub_type=str(claims.get("sub_type", "user")),
        client_id=str(claims["client_id"]),
        scopes=frozenset(scope.split() if isinstance(scope, str) else ()),
        expires_at=int(claims["exp"]),
        jti=str(claims["jti"]),
        issued_at=int(claims["iat"]),
        audience=(audience,) if isinstance(audience, str) else tuple(audience),
        user_display_name=claims.get("user_displayname"),
        grant_id=claims.get("sid"),
        acr=acr if isinstance(acr, str) and acr else None,
        amr=tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
        auth_time=int(auth_time) if is_numeric_date(auth_time) else None,
        jkt=_jkt(claims),
        roles=_names(claims.get("roles")),
        groups=_names(claims.get("groups")),
        claims=claims,
    )
