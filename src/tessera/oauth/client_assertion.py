"""JWT client authentication: `private_key_jwt` and `client_secret_jwt`.

RFC 7523 §2.2 (the `client_assertion` parameter) and §3 (the rules for the JWT), RFC 7521 §4.2,
OIDC Core §9 (the two methods), RFC 8725 §3.1-§3.2 (an algorithm allow-list per method: never
`none`, never HMAC with a public key). Every failure raises `AssertionRefused`; its reason is
for the audit log, the caller answers 401 `invalid_client` without it.

`tessera.oauth.client_auth` finds the app (`client_id_of_assertion`), decides the method from
the app's `token_endpoint_auth_method`, and passes either its keys or its secrets.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OctKey, OKPKey, RSAKey

from tessera.oauth.client_jwks import JwksUnavailable
from tessera.shared.jwt_parts import decode_segment, is_numeric_date

__all__ = [
    "ASYMMETRIC_ALGS",
    "HMAC_ALGS",
    "MAX_ASSERTION_LENGTH",
    "AssertionRefused",
    "KeySource",
    "check_assertion_jwt",
    "client_id_of_assertion",
    "replay_key",
    "unverified_claims",
    "use_assertion_jti",
    "verified_jws",
    "verify_client_assertion",
]

# A signed JWT with an RSA-4096 signature is about 1.5 KB; 8 KiB leaves room for any real one.
MAX_ASSERTION_LENGTH = 8192
_MAX_ID = 512
_MAX_JTI = 512
_MIN_SECRET = 32
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

_KEY_TYPE_OF_ALG: dict[str, type[Key]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), RSAKey),
    **dict.fromkeys(("ES256", "ES384", "ES512"), ECKey),
    **dict.fromkeys(("EdDSA", "Ed25519"), OKPKey),
}
ASYMMETRIC_ALGS = frozenset(_KEY_TYPE_OF_ALG)  # private_key_jwt
HMAC_ALGS = frozenset({"HS256", "HS384", "HS512"})  # client_secret_jwt

# The app's keys: a fixed set (inline `jwks`), or a function of `refresh` (a `jwks_uri` through
# `JwksFetcher`) that is called again once with True when the assertion names an unknown kid.
KeySource = KeySet | Callable[[bool], KeySet]
# The app's secret, or its live secrets during a rotation (the assertion needs to match one).
Secrets = bytes | Sequence[bytes]


class AssertionRefused(Exception):
    """The client assertion does not authenticate the client; `reason` is for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def replay_key(client_id: str, jti: str, kind: str = "client-assertion") -> str:
    """The use-once key of an assertion: per issuer (RFC 7519 §4.1.7 makes `jti` unique per
    issuer) and kind (a client's or a trusted issuer's), fixed length so it fits
    `NonceStore.use_once` (at most 200 characters)."""
    digest = hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()
    return f"{kind}:{digest}"


def unverified_claims(assertion: str) -> dict[str, Any] | None:
    """The claims of a compact JWS, read WITHOUT verifying it: only to find whose keys verify
    it. None when it is too large or not a compact JWS with a JSON object payload."""
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_LENGTH:
        return None
    if not _COMPACT.fullmatch(assertion):
        return None
    try:
        claims = decode_segment(assertion.split(".")[1])
    except (ValueError, UnicodeError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def client_id_of_assertion(assertion: str) -> str | None:
    """The `iss` (= `sub`) of an assertion, read without verifying it: only to find the app
    whose keys verify it (RFC 7521 §4.2: `client_id` is optional beside an assertion)."""
    claims = unverified_claims(assertion)
    if claims is None:
        return None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not 0 < len(issuer) <= _MAX_ID or claims.get("sub") != issuer:
        return None
    return issuer


def _method_algs(
    keys: KeySource | None, secret: Secrets | None, allowed_algs: Collection[str] | None
) -> frozenset[str]:
    """The algorithms the method allows; a caller asking for an unsafe one is a bug."""
    if (keys is None) == (secret is None):
        raise ValueError("pass the app's keys (private_key_jwt) or its secret, exactly one")
    method = HMAC_ALGS if secret is not None else ASYMMETRIC_ALGS
    if allowed_algs is None:
        return method
    algs = frozenset(allowed_algs)
    if not algs or not algs <= method:
        raise ValueError(f"algorithms {sorted(algs - method)} are not allowed for this method")
    return algs


def _header(
    assertion: str,
    algs: frozenset[str],
    max_length: int = MAX_ASSERTION_LENGTH,
    what: str = "the assertion",
) -> tuple[jws.CompactSignature, str]:
    if not isinstance(assertion, str) or len(assertion) > max_length:
        raise AssertionRefused(f"{what} is too large")
    # RFC 7523 §3 item 8: a JWS; five parts (JWE), detached or empty payloads are not.
    if not _COMPACT.fullmatch(assertion):
        raise AssertionRefused(f"{what} is not a compact JWS")
    try:
        # joserfc takes any JSON value with "alg" in it (a list, a string) as a header.
        if not isinstance(decode_segment(assertion.split(".", 1)[0]), dict):
            raise ValueError("not an object")
        signed = jws.extract_compact(assertion.encode("ascii"))
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):
        raise AssertionRefused(f"{what}'s header is malformed") from None
    header = signed.headers()
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        # RFC 8725 §3.1-§3.2: `none`, HMAC with a public key, or a method's wrong family.
        raise AssertionRefused(f"the algorithm {alg!r} is not accepted for this method")
    if "crit" in header or "b64" in header:
        raise AssertionRefused(f"{what} has critical header parameters")  # RFC 7515 §4.1.11
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRefused(f"{what}'s kid is not a string")
    return signed, alg


def _pick(key_set: KeySet, kid: str | None, alg: str) -> Key | None:
    """The one key of the right type (and `alg`, if the JWK names one) for `kid`. Without a
    kid the app must have exactly one such key: we never try keys in turn."""
    key_type = _KEY_TYPE_OF_ALG[alg]
    fits = [
        key
        for key in key_set.keys
        if isinstance(key, key_type)
        and (kid is None or key.kid == kid)
        and key.get("alg", alg) == alg  # RFC 7517 §4.4
    ]
    return fits[0] if len(fits) == 1 else None


def _public_key(keys: KeySource, kid: str | None, alg: str, owner: str = "the app") -> Key:
    try:
        key_set = keys if isinstance(keys, KeySet) else keys(False)
        key = _pick(key_set, kid, alg)
        if key is None and not isinstance(keys, KeySet):
            key = _pick(keys(True), kid, alg)  # a rotated key: one refetch (rate-limited)
    except JwksUnavailable as exc:
        raise AssertionRefused(f"{owner}'s keys are unavailable: {exc}") from None
    if key is None:
        raise AssertionRefused(f"no key of {owner} fits kid {kid!r} and {alg}")
    return key


def _hmac_key(secret: bytes) -> Key:
    # OIDC Core §16.19: the HMAC key is the octets of the client secret; RFC 7518 §3.2: at
    # least 256 bits (Tessera's secrets are 256-bit; HS384/HS512 ask for more than we enforce).
    if len(secret) < _MIN_SECRET:
        raise AssertionRefused("the app's secret is too short for HMAC")
    try:
        return OctKey.import_key(secret)
    except (JoseError, ValueError):  # joserfc refuses PEM-looking secrets as HMAC keys
        raise AssertionRefused("the app's secret cannot be an HMAC key") from None


def _valid(signed: jws.CompactSignature, key: Key, alg: str) -> bool:
    try:
        return bool(jws.validate_compact(signed, key, algorithms=[alg]))
    except (JoseError, ValueError, TypeError):
        return False


def _verified_claims(
    signed: jws.CompactSignature,
    alg: str,
    keys: KeySource | None,
    secret: Secrets | None,
    what: str = "the assertion",
    owner: str = "the app",
) -> dict[str, Any]:
    kid = signed.headers().get("kid")
    if secret is not None:
        secrets = [secret] if isinstance(secret, bytes) else list(secret)
        if not secrets:
            raise AssertionRefused("the app has no secret usable for client_secret_jwt")
        # Every live secret is tried, so the time does not say which one matched.
        matches = [_valid(signed, _hmac_key(one), alg) for one in secrets]
        valid = any(matches)
    else:
        valid = _valid(signed, _public_key(keys, kid, alg, owner), alg)  # type: ignore[arg-type]
    if not valid:
        raise AssertionRefused(f"{what}'s signature is invalid")
    try:
        claims = orjson.loads(signed.payload)
    except orjson.JSONDecodeError:
        claims = None
    if not isinstance(claims, dict):
        raise AssertionRefused(f"{what}'s payload is not a JSON object")
    return claims


def _check_parties(
    claims: Mapping[str, Any], client_id: str, audiences: Collection[str], exact: str | None
) -> None:
    # RFC 7523 §3 items 1-2 and OIDC Core §9: the client signs about itself.
    if claims.get("iss") != client_id:
        raise AssertionRefused("the assertion's iss is not the client_id")
    if claims.get("sub") != client_id:
        raise AssertionRefused("the assertion's sub is not the client_id")
    _check_audience(claims, audiences, exact)


def _check_audience(
    claims: Mapping[str, Any], audiences: Collection[str], exact: str | None
) -> None:
    # RFC 7523 §3 item 3: `aud` identifies us: the issuer, the token or the endpoint's URL.
    aud = claims.get("aud")
    if exact is not None and aud != exact:
        # FAPI 2.0 §5.3.2.1 / RFC 7523bis: the issuer as a single string, nothing else, so an
        # assertion a client was lured into making for another server's endpoint never fits.
        raise AssertionRefused("the assertion's aud must be the issuer, as a string")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise AssertionRefused("the assertion's aud is missing or malformed")
    if not set(values) & set(audiences):
        raise AssertionRefused("the assertion is for another audience")


def _check_times(claims: Mapping[str, Any], now: int, max_lifetime: int, leeway: int) -> int:
    """RFC 7523 §3 items 4-6; returns the last second the assertion can be accepted."""
    nbf, iat = claims.get("nbf"), claims.get("iat")
    if not is_numeric_date(claims.get("exp")):
        raise AssertionRefused("the assertion has no numeric exp")
    exp = float(claims["exp"])
    if exp + leeway <= now:
        raise AssertionRefused("the assertion has expired")
    if exp - now > max_lifetime + leeway:
        # A long-lived assertion is a reusable credential; keep it to a few minutes.
        raise AssertionRefused(f"the assertion's exp is more than {max_lifetime} s ahead")
    if iat is not None and (not is_numeric_date(iat) or iat > now + leeway):
        raise AssertionRefused("the assertion's iat is in the future")
    if nbf is not None and (not is_numeric_date(nbf) or nbf > now + leeway):
        raise AssertionRefused("the assertion is not valid yet (nbf)")
    return math.ceil(exp) + leeway


def use_assertion_jti(
    claims: Mapping[str, Any],
    issuer: str,
    until: int,
    use_jti: Callable[[str, int], bool],
    kind: str = "client-assertion",
) -> None:
    """RFC 7523 §3 item 7, OIDC Core §9: `jti` required and used once (per `issuer` and
    `kind`, `replay_key`) while the assertion could be accepted (until `until`)."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise AssertionRefused("the assertion has no jti")
    if not use_jti(replay_key(issuer, jti, kind), until):
        raise AssertionRefused("the assertion's jti was used before (replay)")


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    audiences: Collection[str],
    now: int,
    use_jti: Callable[[str, int], bool],
    keys: KeySource | None = None,
    secret: Secrets | None = None,
    max_lifetime: int = 300,
    leeway: int = 30,
    allowed_algs: Collection[str] | None = None,
    exact_audience: str | None = None,
) -> dict[str, Any]:
    """Verify a `client_assertion` of `client_id` and return its claims.

    `keys` for `private_key_jwt` (asymmetric algorithms only), `secret` for `client_secret_jwt`
    (HS256/384/512 only; several live secrets during a rotation): exactly one. `allowed_algs`
    narrows the method's algorithms (the app's `token_endpoint_auth_signing_alg`);
    `exact_audience` makes `aud` that one string (FAPI 2.0 apps: the issuer).
    `use_jti(key, until)` records `key` until the epoch second `until` (`exp` plus the leeway)
    and returns False on a replay; the key is `replay_key(client_id, jti)`. Checks run in
    order: size, compact JWS, algorithm, `crit`, signature, `iss`/`sub`, `aud`,
    `exp`/`iat`/`nbf`, then `jti` last, so a refused assertion burns no `jti`."""
    algs = _method_algs(keys, secret, allowed_algs)
    signed, alg = _header(assertion, algs)
    claims = _verified_claims(signed, alg, keys, secret)
    _check_parties(claims, client_id, audiences, exact_audience)
    until = _check_times(claims, now, max_lifetime, leeway)
    use_assertion_jti(claims, client_id, until, use_jti)
    return claims


def check_assertion_jwt(
    assertion: str,
    *,
    keys: KeySource,
    audiences: Collection[str],
    now: int,
    max_lifetime: int = 300,
    leeway: int = 30,
) -> tuple[dict[str, Any], int]:
    """The RFC 7523 §3 checks an authorization grant (§2.1) shares with a `private_key_jwt`
    client assertion: size, compact JWS, an asymmetric algorithm (never `none`, never HMAC),
    no `crit`, the signature by one of `keys`, `aud` among `audiences` (item 3),
    `exp`/`iat`/`nbf` (items 4-6). Returns the claims and the last epoch second they can be
    accepted, for `use_assertion_jti`, which the caller runs after its own checks of
    `iss` and `sub`. Raises `AssertionRefused`."""
    signed, alg = _header(assertion, ASYMMETRIC_ALGS)
    claims = _verified_claims(signed, alg, keys, None)
    _check_audience(claims, audiences, None)
    return claims, _check_times(claims, now, max_lifetime, leeway)


def verified_jws(
    token: str,
    *,
    keys: KeySource,
    algs: Collection[str],
    max_length: int = MAX_ASSERTION_LENGTH,
    what: str = "the JWT",
    owner: str = "the signer",
) -> tuple[dict[str, Any], str]:
    """The signature checks of a JWT signed with a public key, shared with other verifiers
    (an upstream provider's ID token, OIDC Core §3.1.3.7 items 6-8): at most `max_length`
    characters, a compact JWS (RFC 7515 §7.1; a JWE is not), an `alg` among `algs` (never
    `none`, never HMAC: `algs` must be asymmetric), no `crit`, the signature by the one key
    of `keys` for its `kid` and `alg` (a `KeySource` function is asked again once, with
    `refresh`, for an unknown `kid`), a JSON object payload. Returns the claims and the alg;
    raises `AssertionRefused` whose reason names `what` and `owner`."""
    allowed = frozenset(algs)
    if not allowed or not allowed <= ASYMMETRIC_ALGS:
        raise ValueError(f"algorithms {sorted(allowed - ASYMMETRIC_ALGS)} are not public-key ones")
    signed, alg = _header(token, allowed, max_length, what)
    return _verified_claims(signed, alg, keys, None, what, owner), alg
