"""The proof signature checked with `cryptography` directly (tessera.shared.dpop): every
algorithm we accept verifies a good signature and refuses a tampered one, keys must fit their
algorithm (the ECDSA curve, EdDSA's signing curves only), and only the raw R || S encoding of
an ECDSA signature counts (RFC 7518 §3.4)."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from tessera.shared.dpop import SUPPORTED_ALGS, InvalidProof, verify_proof
from tests.support.dpop import make_proof

URL = "https://rs.example/api"

_KEYS = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "ES512": lambda: ECKey.generate_key("P-521"),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


def _key(alg: str) -> Key:
    maker = _KEYS.get(alg)
    return maker() if maker else RSAKey.generate_key(2048)


def _verify(proof: str) -> None:
    verify_proof(proof, method="GET", url=URL, now=time.time(), algorithms=SUPPORTED_ALGS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tamper(proof: str) -> str:
    head, body, signature = proof.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join((head, body, _b64(bytes(raw))))


@pytest.mark.parametrize("alg", sorted(SUPPORTED_ALGS))
def test_each_algorithm_verifies_and_refuses_a_tampered_signature(alg: str) -> None:
    proof = make_proof(_key(alg), "GET", URL, alg=alg)
    _verify(proof)
    with pytest.raises(InvalidProof, match="signature"):
        _verify(_tamper(proof))


def test_an_ed448_key_verifies() -> None:
    _verify(make_proof(OKPKey.generate_key("Ed448"), "GET", URL, alg="EdDSA"))


def test_an_ecdsa_key_on_another_curve_is_refused() -> None:
    key = ECKey.generate_key("P-384")
    with pytest.raises(InvalidProof, match="not a valid key"):
        _verify(make_proof(key, "GET", URL, alg="ES256", signing_key=ECKey.generate_key("P-256")))


def test_an_x25519_key_is_not_an_eddsa_key() -> None:
    x25519 = OKPKey.generate_key("X25519")
    signer = OKPKey.generate_key("Ed25519")
    proof = make_proof(signer, "GET", URL, alg="EdDSA", jwk=x25519.as_dict(private=False))
    with pytest.raises(InvalidProof, match="not a valid key"):
        _verify(proof)


def test_a_pss_signature_does_not_pass_as_pkcs1() -> None:
    key = RSAKey.generate_key(2048)
    head, body, _ = make_proof(key, "GET", URL, alg="RS256").split(".")
    private = key.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    signature = private.sign(f"{head}.{body}".encode(), pss, hashes.SHA256())
    with pytest.raises(InvalidProof, match="signature"):  # the header says RS256
        _verify(".".join((head, body, _b64(signature))))


def test_a_der_encoded_ecdsa_signature_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    head, body, signature = make_proof(key, "GET", URL).split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    with pytest.raises(InvalidProof, match="signature"):
        _verify(".".join((head, body, _b64(der))))
    _verify(".".join((head, body, signature)))  # the raw form of the same signature passes
