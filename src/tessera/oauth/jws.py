"""Compact JWS signing for our own tokens (RFC 7515 §7.1, RFC 7518 §3.3-§3.4).

Minting is the hot path of the token endpoint, so it signs with `cryptography` directly: the
header is serialised once per key and the ECDSA signature converted from DER to the fixed-size
R||S form of RFC 7518 §3.4. Verification stays with joserfc (`tessera.oauth.tokens`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["Signer"]


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True, slots=True)
class Signer:
    """One private key of one algorithm, ready to sign."""

    kid: str
    alg: str
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        header = _b64(orjson.dumps({"alg": self.alg, "kid": self.kid, "typ": typ}))
        signing_input = header + b"." + _b64(orjson.dumps(claims))
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # RFC 7518 §3.4
        else:
            signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64(signature)).decode("ascii")
