"""`private_key_jwt` client authentication with a key file (RFC 7523 §2.2, OIDC Core §9).

    key = load_private_key("app-key.pem")                  # PEM or a private JWK
    key = key.for_server(metadata.auth_signing_algs)       # the alg the server accepts
    form |= key.client_assertion("my-app", ISSUER, time.time())

The key file: a PEM private key (PKCS#8, PKCS#1, SEC 1 or OpenSSH), or a private JWK (RFC 7517
§4), or a JWK Set holding exactly one private key. Accepted: RSA of at least 2048 bits
(RFC 7518 §3.3), EC P-256, Ed25519 (RFC 8037). Encrypted keys are refused with how to decrypt.

The algorithm comes from the key: ES256 for P-256, EdDSA for Ed25519, PS256 for RSA (RS256 when
the server's `token_endpoint_auth_signing_alg_values_supported`, RFC 8414 §2, lists RS256 but
not PS256); a JWK's own `alg` (RFC 7517 §4.4) is kept. The `kid`: the one given, else the
JWK's, else the key's RFC 7638 thumbprint (which is also the `kid` a JWK Set registered
without one gets).

Each assertion is fresh: `iss` = `sub` = the client id, `aud` the issuer (the single string
RFC 7523bis and FAPI 2.0 §5.3.2.1 recommend; RFC 7523 §3 lets servers accept the endpoint URL
too), a random 256-bit `jti`, `iat`, and `exp` 60 s later: a short-lived, use-once credential.

A cached login remembers a `KeyFile` (the path, the chosen alg, a `--key-id`), never the key.
joserfc and cryptography are imported only when a key is used: `tessera.client` itself stays
importable with the standard library and httpx.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.client.errors import KeyFileError
from tessera.shared.client_assertion import ASSERTION_LIFETIME, JWT_BEARER, client_assertion_form

if TYPE_CHECKING:
    from joserfc.jwk import Key

__all__ = [
    "ASSERTION_LIFETIME",
    "JWT_BEARER",
    "ClientKey",
    "KeyFile",
    "key_file_warning",
    "load_private_key",
    "parse_private_key",
]

_MAX_FILE = 64 * 1024
_MIN_RSA_BITS = 2048
# Per key type, the algorithms in order of preference (RFC 7518 §3.1, RFC 8037 §3.1; RFC 9864's
# fully-specified `Ed25519` only where a server lists it instead of `EdDSA`).
_RSA_ALGS = ("PS256", "RS256")
_EC_ALGS = ("ES256",)
_ED_ALGS = ("EdDSA", "Ed25519")


def _absolute(path: str | Path) -> str:
    # Absolute, so a refresh from another directory finds it; symlinks kept, so a link that
    # is switched to a rotated key is followed.
    return os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True, slots=True)
class KeyFile:
    """What a cached login keeps to authenticate later: where the key is, never the key."""

    path: str
    alg: str | None = None  # the algorithm chosen at login, from the server's metadata
    key_id: str | None = None  # the --key-id given, if any (else the key's own kid)

    def load(self) -> ClientKey:
        """The key, read from the file again (`KeyFileError` when it is gone or changed)."""
        key = load_private_key(self.path, key_id=self.key_id)
        return key if self.alg is None else key.with_alg(self.alg)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "alg": self.alg, "key_id": self.key_id}

    @classmethod
    def from_json(cls, data: Any) -> KeyFile:
        """Inverse of `to_json`; `ValueError` when a field has the wrong type."""
        if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
            raise ValueError("private_key has no path")
        for name in ("alg", "key_id"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"private_key.{name} is not a string")
        return cls(path=data["path"], alg=data.get("alg"), key_id=data.get("key_id"))


@dataclass(frozen=True, slots=True)
class ClientKey:
    """An app's private signing key with the `kid` and `alg` its assertions carry."""

    key: Key = field(repr=False)
    kid: str
    alg: str
    algs: tuple[str, ...]  # the algorithms this key can sign with, preferred first
    fixed_alg: bool = False  # the JWK names its `alg`: no other may be used
    path: str | None = None
    key_id: str | None = None  # the kid given by the caller (kept by `reference`)

    @property
    def kind(self) -> str:
        """For messages: RSA-3072, EC P-256, Ed25519."""
        crv = self.key.get("crv")
        if crv is None:
            return f"RSA-{_rsa_bits(self.key)}"
        return f"EC {crv}" if self.key.key_type == "EC" else str(crv)

    def with_alg(self, alg: str) -> ClientKey:
        """This key signing with `alg`, when it can (a cached choice); else unchanged."""
        if alg == self.alg or self.fixed_alg or alg not in self.algs:
            return self
        return replace(self, alg=alg)

    def for_server(self, supported: Sequence[str] | None) -> ClientKey:
        """The key with the first of its algorithms the server lists (RFC 8414 §2
        `token_endpoint_auth_signing_alg_values_supported`); as is when it lists none."""
        if supported is None:
            return self
        usable = [alg for alg in ((self.alg,) if self.fixed_alg else self.algs) if alg in supported]
        if not usable:
            listed = ", ".join(supported) or "none"
            raise KeyFileError(
                f"the identity domain accepts no signature algorithm of this {self.kind} key "
                f"({', '.join((self.alg,) if self.fixed_alg else self.algs)}; it accepts "
                f"{listed})",
                hint="use a key of a type it accepts (EC P-256 for ES256, RSA for PS256 or RS256, "
                "Ed25519 for EdDSA)",
            )
        return replace(self, alg=usable[0])

    def reference(self) -> KeyFile:
        if self.path is None:
            raise ValueError("a key not read from a file cannot be referenced")
        return KeyFile(path=self.path, alg=self.alg, key_id=self.key_id)

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (with `kid` and `alg`) to register for the app (RFC 7591 `jwks`)."""
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def client_assertion(
        self, client_id: str, audience: str, now: float, *, lifetime: int = ASSERTION_LIFETIME
    ) -> dict[str, str]:
        """The form parameters of RFC 7523 §2.2 with a new assertion (RFC 7523 §3)."""
        return client_assertion_form(
            self.key,
            alg=self.alg,
            kid=self.kid,
            client_id=client_id,
            audience=audience,
            now=now,
            lifetime=lifetime,
        )


# --- reading a key file --------------------------------------------------------------------------


def key_file_warning(path: str | Path) -> str | None:
    """A warning when the key file can be read by other users (POSIX modes only)."""
    if os.name != "posix":  # pragma: no cover - Windows has ACLs, not modes
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"the private key file {path} can be read by other users "
            f"(mode {stat.S_IMODE(mode):04o}); protect it: chmod 600 {path}"
        )
    return None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE + 1)
    except OSError as exc:
        raise KeyFileError(
            f"cannot read the private key file {path} ({exc.strerror or exc})",
            hint="give the app's private key file with --private-key FILE",
        ) from None
    if len(data) > _MAX_FILE:
        raise KeyFileError(f"{path} is too large to be a private key")
    return data


def _native_pem(data: bytes, source: str) -> Any:
    """A cryptography private key from PEM (or OpenSSH) text."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    openssh = b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
    try:
        if openssh:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise KeyFileError(
            f"the private key in {source} is encrypted",
            hint="give an unencrypted copy (kept 0600), e.g. openssl pkey -in KEY -out plain.pem",
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        if b"PUBLIC KEY-----" in data or b"CERTIFICATE-----" in data:
            raise KeyFileError(
                f"{source} holds a public key or certificate, not the private key",
                hint="--private-key takes the app's private key; its public key is registered",
            ) from None
        raise KeyFileError(f"{source} is not a readable PEM private key ({exc})") from None


def _jwk_member(data: Any, source: str) -> dict[str, Any]:
    """The private JWK of a JWK or a JWK Set (exactly one private key)."""
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        private = [k for k in data["keys"] if isinstance(k, dict) and "d" in k]
        if len(private) != 1:
            raise KeyFileError(
                f"the JWK Set in {source} holds {len(private)} private keys, not one",
                hint="give a file with the one private key the app signs with",
            )
        data = private[0]
    if not isinstance(data, dict) or not isinstance(data.get("kty"), str):
        raise KeyFileError(f"{source} is neither a PEM private key nor a JWK")
    if "d" not in data:
        raise KeyFileError(
            f"the JWK in {source} is a public key",
            hint="--private-key takes the app's private key (a JWK with its 'd' member)",
        )
    if data.get("use", "sig") != "sig":
        raise KeyFileError(f"the JWK in {source} is not meant for signatures (use)")  # §4.2
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "sign" not in ops):
        raise KeyFileError(f"the JWK in {source} is not meant for signing (key_ops)")  # §4.3
    return data


def _import(value: Any, kty: str, source: str) -> Key:
    from joserfc.errors import JoseError, SecurityWarning
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    types: dict[str, Any] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    key_type = types.get(kty)
    if key_type is None:
        raise KeyFileError(f"the key in {source} is of type {kty}, not RSA, EC or OKP")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # a short RSA key: refused below
            key: Key = key_type.import_key(value)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise KeyFileError(f"the key in {source} cannot be read ({exc})") from None
    return key


def _native_type(native: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(native, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(native, ec.EllipticCurvePrivateKey):
        return "EC"
    if isinstance(native, ed25519.Ed25519PrivateKey):
        return "OKP"
    return type(native).__name__


def _rsa_bits(key: Key) -> int:
    from joserfc.jwk import RSAKey

    return key.raw_value.key_size if isinstance(key, RSAKey) else 0


def _algs_of(key: Key, source: str) -> tuple[str, ...]:
    """The algorithms a key may sign client assertions with; `KeyFileError` if none."""
    if key.key_type == "RSA":
        bits = _rsa_bits(key)
        if bits < _MIN_RSA_BITS:
            raise KeyFileError(f"the RSA key in {source} has {bits} bits; at least 2048 are needed")
        return _RSA_ALGS
    crv = key.get("crv")
    if key.key_type == "EC" and crv == "P-256":
        return _EC_ALGS
    if key.key_type == "OKP" and crv == "Ed25519":
        return _ED_ALGS
    raise KeyFileError(
        f"the key in {source} is {key.key_type} {crv}; use RSA (2048 bits or more), EC P-256 or "
        "Ed25519"
    )


def parse_private_key(
    data: bytes, *, source: str = "the key", key_id: str | None = None
) -> ClientKey:
    """A `ClientKey` from a PEM private key or a private JWK (Set); `KeyFileError` if not."""
    text = data.lstrip()
    jwk: dict[str, Any] | None = None
    if text.startswith(b"{"):
        try:
            parsed = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KeyFileError(f"{source} is not valid JSON (a JWK was expected)") from None
        jwk = _jwk_member(parsed, source)
        key = _import(jwk, jwk["kty"], source)
    elif b"-----BEGIN" in text:
        native = _native_pem(data, source)
        key = _import(native, _native_type(native), source)
    else:
        raise KeyFileError(
            f"{source} is neither a PEM private key nor a JWK",
            hint="e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
        )
    if not key.is_private:
        raise KeyFileError(f"{source} holds no private key")
    algs = _algs_of(key, source)
    own_alg = jwk.get("alg") if jwk is not None else None
    if own_alg is not None and own_alg not in algs:
        raise KeyFileError(f"the JWK in {source} names alg {own_alg!r}, not one of {list(algs)}")
    own_kid = jwk.get("kid") if jwk is not None else None
    if key_id is not None and not key_id.strip():
        raise KeyFileError("the key id (--key-id) is empty")
    kid = key_id or (own_kid if isinstance(own_kid, str) and own_kid else key.thumbprint())
    return ClientKey(
        key=key,
        kid=kid,
        alg=own_alg or algs[0],
        algs=algs,
        fixed_alg=own_alg is not None,
        key_id=key_id,
    )


def load_private_key(path: str | Path, *, key_id: str | None = None) -> ClientKey:
    """The app's private key from `path` (see the module docstring)."""
    where = _absolute(path)
    key = parse_private_key(_read(where), source=where, key_id=key_id)
    return replace(key, path=where)
