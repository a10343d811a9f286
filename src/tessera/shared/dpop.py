"""Checking DPoP proofs (RFC 9449), for the identity domain and resource servers alike.

`verify_proof` runs the checks of RFC 9449 §4.3 in the RFC's order, except the two that need
state the caller owns: the `jti` replay check (§11.1; `ProofReplay`, shared by nodes) and the
comparison with the token's `cnf.jkt` (§4.3 check 12, §7.1), for which it returns the key's
RFC 7638 thumbprint. Server nonces (§8, §9) are stateless: `NonceSource` derives them from a
secret and a time window, so any node accepts a nonce another node handed out.

A failure raises `InvalidProof` (`invalid_dpop_proof`) or `NonceRequired` (`use_dpop_nonce`);
their text is safe to show to the client.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from tessera.shared.jwt_parts import decode_segment, is_numeric_date

__all__ = [
    "DEFAULT_ALGS",
    "SUPPORTED_ALGS",
    "DPoPError",
    "InvalidProof",
    "NonceRequired",
    "NonceSource",
    "Proof",
    "ProofReplay",
    "access_token_hash",
    "normalize_htu",
    "proof_from_headers",
    "replay_key",
    "verify_proof",
]

# Asymmetric algorithms only (§4.3 check 5: never `none`, never a MAC).
_KEY_TYPE_OF_ALG: dict[str, type[Key]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), RSAKey),
    **dict.fromkeys(("ES256", "ES384", "ES512"), ECKey),
    "EdDSA": OKPKey,
}
SUPPORTED_ALGS = frozenset(_KEY_TYPE_OF_ALG)
# What we advertise and accept by default (`dpop_signing_alg_values_supported`).
DEFAULT_ALGS = ("ES256", "PS256", "RS256", "EdDSA")

MAX_PROOF_LENGTH = 8192  # an RSA-4096 proof with its key in the header is about 2.5 KB
_MAX_JTI = 256
_KEY_CACHE_SIZE = 4096
_KEYS: dict[tuple[str, bytes], tuple[_PublicKey, str]] = {}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


# RFC 7518 §3.1's hash of each algorithm; §3.4: an ECDSA signature is R || S, each as long as
# the curve's order, on the algorithm's own curve.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    f"{family}{bits}": getattr(hashes, f"SHA{bits}")
    for family in ("RS", "PS", "ES")
    for bits in (256, 384, 512)
}
_EC_CURVES = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}
_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


class DPoPError(Exception):
    """A DPoP proof that does not do; `error` is the RFC 9449 error code."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidProof(DPoPError):
    """§4.3, §7.1: `invalid_dpop_proof`."""


class NonceRequired(DPoPError):
    """§8, §9: the proof lacks the server's current nonce: `use_dpop_nonce`, with a fresh
    nonce in the `DPoP-Nonce` header of the answer."""

    error = "use_dpop_nonce"


@dataclass(frozen=True, slots=True)
class Proof:
    """A verified proof: the RFC 7638 thumbprint of its key, its `jti` and `iat`."""

    jkt: str
    jti: str
    iat: float
    nonce: str | None = None


class ProofReplay(Protocol):
    """§11.1: remembers a proof's `jti` until `expires_at`; True the first time only. Shared by
    every node that accepts proofs for the same URLs (the database or Redis)."""

    def use_once(self, key: str, expires_at: float) -> bool: ...


def replay_key(jkt: str, jti: str) -> str:
    """The use-once key of a proof, per key (a `jti` is unique per signer), fixed length."""
    digest = hashlib.sha256(f"{jkt}\x00{jti}".encode()).hexdigest()
    return f"dpop:{digest}"


def access_token_hash(token: str) -> str:
    """§4.2 `ath`: base64url (no padding) of the SHA-256 of the access token's ASCII."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def proof_from_headers(values: list[str]) -> str | None:
    """§4.3 check 1: the one `DPoP` header's value; None without one, `InvalidProof` for two."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidProof("send one DPoP header")
    value = values[0].strip()
    if not value or len(value) > MAX_PROOF_LENGTH or not _COMPACT.fullmatch(value):
        raise InvalidProof("the DPoP proof is not a compact JWS")
    return value


@functools.lru_cache(maxsize=1024)  # a resource sees few URLs, and clients repeat theirs
def normalize_htu(url: str) -> str:
    """§4.3 check 9: the URI without query and fragment, normalized as RFC 3986 §6.2.2 and
    §6.2.3 say (lower-case scheme and host, no default port, an empty path is `/`, percent-
    encoding of unreserved characters decoded); `ValueError` for anything but http(s)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a bad port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalize_percent(parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normalize_percent(path: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = unquote(match.group(0))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PERCENT.sub(fix, path)


class NonceSource:
    """Stateless server nonces (§8): `<window>.<mac>` where the MAC binds the window number to a
    secret. A nonce is accepted during its window and the next one, so it lives between one and
    two `window` lengths, on every node that shares the secret."""

    def __init__(self, secret: bytes, window: int = 300) -> None:
        if len(secret) < 32:
            raise ValueError("the nonce secret needs at least 32 bytes")
        self._secret = secret
        self.window = window

    def _mac(self, number: int) -> str:
        mac = hmac.new(self._secret, f"dpop-nonce:{number}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def current(self, now: float) -> str:
        number = int(now // self.window)
        return f"{number}.{self._mac(number)}"

    def is_valid(self, nonce: str, now: float) -> bool:
        number_text, _, mac = nonce.partition(".")
        if not number_text.isdigit() or len(number_text) > 12:
            return False
        number = int(number_text)
        if number not in (int(now // self.window), int(now // self.window) - 1):
            return False
        return hmac.compare_digest(mac, self._mac(number))


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float | None = None,
    algorithms: Collection[str] = DEFAULT_ALGS,
    max_age: int = 60,
    leeway: int = 5,
    access_token: str | None = None,
    nonces: NonceSource | None = None,
) -> Proof:
    """The checks of RFC 9449 §4.3 (2-11) on a proof already taken from its header (check 1:
    `proof_from_headers`): the caller then checks the `jti` once and, for a bound token, that
    `Proof.jkt` is the token's `cnf.jkt`.

    `max_age` and `leeway` bound `iat` (check 11: at most `max_age` seconds old, `leeway` ahead);
    `access_token` asks for `ath` (check 10's sibling, §4.2); `nonces` makes a current server
    nonce mandatory (check 10)."""
    now = time.time() if now is None else now
    header, claims = _parts(proof)
    key, jkt = _check_header(header, algorithms)
    signing_input, _, signature = proof.rpartition(".")
    if not _signature_valid(str(header["alg"]), key, signing_input.encode(), signature):
        raise InvalidProof("the DPoP proof's signature is invalid")
    jti = _check_claims(claims, method, url)
    _check_iat(claims["iat"], now, max_age, leeway)
    nonce = claims.get("nonce")
    if nonces is not None and (not isinstance(nonce, str) or not nonces.is_valid(nonce, now)):
        raise NonceRequired("the DPoP proof needs the server's current nonce")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode(), access_token_hash(access_token).encode()
        ):
            raise InvalidProof("the DPoP proof's ath does not match the access token")
    return Proof(
        jkt=jkt,
        jti=jti,
        iat=float(claims["iat"]),
        nonce=nonce if isinstance(nonce, str) else None,
    )


def _parts(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check 2: a well-formed JWT whose header and payload are JSON objects."""
    if len(proof) > MAX_PROOF_LENGTH or not _COMPACT.fullmatch(proof):
        raise InvalidProof("the DPoP proof is not a compact JWS")
    encoded_header, encoded_claims, _ = proof.split(".")
    try:
        header, claims = decode_segment(encoded_header), decode_segment(encoded_claims)
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidProof("the DPoP proof is not a JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidProof("the DPoP proof is not a JWT")
    return header, claims


def _check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> tuple[_PublicKey, str]:
    """Checks 3-7: `typ`, an asymmetric algorithm we accept, a public key of its type."""
    if header.get("typ") != "dpop+jwt":
        raise InvalidProof("the DPoP proof's typ must be dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in SUPPORTED_ALGS:
        raise InvalidProof("the DPoP proof's algorithm is not accepted")
    if "crit" in header:
        raise InvalidProof("the DPoP proof has critical header parameters")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidProof("the DPoP proof carries no public key (jwk)")
    if _PRIVATE_MEMBERS & set(jwk):
        raise InvalidProof("the DPoP proof's jwk holds a private key")
    return _public_key(alg, jwk)


def _public_key(alg: str, jwk: Mapping[str, Any]) -> tuple[_PublicKey, str]:
    """The key and its thumbprint, cached: a client signs every proof with the same key, and
    importing it costs as much as the signature check."""
    try:
        cache_key = (alg, orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        raise InvalidProof("the DPoP proof's jwk is not a valid key") from None
    found = _KEYS.get(cache_key)
    if found is not None:
        return found
    try:
        imported = _KEY_TYPE_OF_ALG[alg].import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, KeyError, OverflowError):
        raise InvalidProof("the DPoP proof's jwk is not a valid key for its algorithm") from None
    key = _fitting(alg, imported.raw_value)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise InvalidProof("the DPoP proof's RSA key is shorter than 2048 bits")
    if len(_KEYS) >= _KEY_CACHE_SIZE:
        _KEYS.clear()  # crude but bounded; real deployments see far fewer live client keys
    _KEYS[cache_key] = found = (key, imported.thumbprint())
    return found


def _fitting(alg: str, key: object) -> _PublicKey:
    """A public key of the algorithm's type (and, for ECDSA, curve): RFC 7518 §3.3-§3.5,
    RFC 8037 §3.1 (EdDSA: Ed25519 or Ed448, never an X25519/X448 key)."""
    if alg in _EC_CURVES:
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _EC_CURVES[alg][0]:
            return key
    elif alg == "EdDSA":
        if isinstance(key, Ed25519PublicKey | Ed448PublicKey):
            return key
    elif isinstance(key, rsa.RSAPublicKey):
        return key
    raise InvalidProof("the DPoP proof's jwk is not a valid key for its algorithm")


def _signature_valid(alg: str, key: _PublicKey, signing_input: bytes, encoded: str) -> bool:
    """The JWS signature (RFC 7515 §5.2 step 8) checked with `cryptography` directly: the key
    is already imported and cached, so a proof costs one verification."""
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = _EC_CURVES[alg][1]
            if len(signature) != 2 * size:
                return False
            r, s = (int.from_bytes(signature[i : i + size], "big") for i in (0, size))
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(_HASHES[alg]()))
        elif isinstance(key, rsa.RSAPublicKey):
            digest = _HASHES[alg]()
            scheme: padding.AsymmetricPadding = (
                padding.PSS(padding.MGF1(digest), digest.digest_size)
                if alg.startswith("PS")
                else padding.PKCS1v15()
            )
            key.verify(signature, signing_input, scheme, digest)
        else:
            key.verify(signature, signing_input)
    except InvalidSignature:
        return False
    return True


def _check_claims(claims: Mapping[str, Any], method: str, url: str) -> str:
    """Checks 3, 8 and 9: `jti`, `htm` and `htu` present and matching the request."""
    jti, htm, htu = claims.get("jti"), claims.get("htm"), claims.get("htu")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise InvalidProof("the DPoP proof has no usable jti")
    if not is_numeric_date(claims.get("iat")):
        raise InvalidProof("the DPoP proof has no iat")
    if not isinstance(htm, str) or htm != method.upper():
        raise InvalidProof("the DPoP proof's htm is not this request's method")
    if not isinstance(htu, str):
        raise InvalidProof("the DPoP proof has no htu")
    try:
        matches = normalize_htu(htu) == normalize_htu(url)
    except ValueError:
        matches = False
    if not matches:
        raise InvalidProof("the DPoP proof's htu is not this request's URL")
    return jti


def _check_iat(iat: float, now: float, max_age: int, leeway: int) -> None:
    """Check 11: created recently (and not in the future beyond the leeway)."""
    if iat > now + leeway:
        raise InvalidProof("the DPoP proof's iat is in the future")
    if iat < now - max_age - leeway:
        raise InvalidProof("the DPoP proof is too old")
