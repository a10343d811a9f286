"""RFC 9449 §4.3: each check of `tessera.shared.dpop.verify_proof`, broken one at a time."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from tessera.shared.dpop import (
    InvalidProof,
    NonceRequired,
    NonceSource,
    access_token_hash,
    normalize_htu,
    proof_from_headers,
    replay_key,
    verify_proof,
)
from tests.support.dpop import make_proof, new_key

NOW = 1_800_000_000.0
URL = "https://id.example/oauth2/v1/token"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_good_proof_gives_the_keys_thumbprint() -> None:
    key = new_key()
    proof = verify_proof(make_proof(key, "POST", URL, iat=NOW, jti="j1"), method="POST",
                         url=URL, now=NOW)
    assert proof.jkt == key.thumbprint()
    assert proof.jti == "j1"


def test_wrong_typ_is_refused() -> None:
    with pytest.raises(InvalidProof, match="typ"):
        verify_proof(make_proof(new_key(), "POST", URL, iat=NOW, typ="JWT"), method="POST",
                     url=URL, now=NOW)


def test_alg_none_is_refused() -> None:
    key = new_key()
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}
    claims = {"jti": "x", "htm": "POST", "htu": URL, "iat": NOW}
    with pytest.raises(InvalidProof):
        verify_proof(f"{_b64(header)}.{_b64(claims)}.", method="POST", url=URL, now=NOW)
    with pytest.raises(InvalidProof, match="algorithm"):
        verify_proof(f"{_b64(header)}.{_b64(claims)}.c2ln", method="POST", url=URL, now=NOW)


def test_hmac_is_refused() -> None:
    secret = OctKey.generate_key(256)
    proof = make_proof(secret, "POST", URL, iat=NOW, alg="HS256", jwk={"kty": "oct"})
    with pytest.raises(InvalidProof, match="algorithm"):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_a_private_key_in_the_header_is_refused() -> None:
    key = new_key()
    proof = make_proof(key, "POST", URL, iat=NOW, jwk=key.as_dict(private=True))
    with pytest.raises(InvalidProof, match="private"):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_a_bad_signature_is_refused() -> None:
    proof = make_proof(new_key(), "POST", URL, iat=NOW, signing_key=new_key())
    with pytest.raises(InvalidProof, match="signature"):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_a_key_of_another_type_than_the_alg_is_refused() -> None:
    rsa = RSAKey.generate_key(2048)
    proof = make_proof(rsa, "POST", URL, iat=NOW, alg="RS256", jwk=new_key().as_dict(private=False))
    with pytest.raises(InvalidProof):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_an_algorithm_outside_the_allow_list_is_refused() -> None:
    rsa = RSAKey.generate_key(2048)
    proof = make_proof(rsa, "POST", URL, iat=NOW, alg="RS256")
    assert verify_proof(proof, method="POST", url=URL, now=NOW).jkt == rsa.thumbprint()
    with pytest.raises(InvalidProof, match="algorithm"):
        verify_proof(proof, method="POST", url=URL, now=NOW, algorithms=("ES256",))


def test_wrong_htm_is_refused() -> None:
    with pytest.raises(InvalidProof, match="htm"):
        verify_proof(make_proof(new_key(), "GET", URL, iat=NOW), method="POST", url=URL, now=NOW)


@pytest.mark.parametrize(
    "htu",
    [
        "https://id.example/oauth2/v1/userinfo",
        "http://id.example/oauth2/v1/token",
        "https://other.example/oauth2/v1/token",
        "https://id.example:8443/oauth2/v1/token",
        "id.example/oauth2/v1/token",
    ],
)
def test_wrong_htu_is_refused(htu: str) -> None:
    with pytest.raises(InvalidProof, match="htu"):
        verify_proof(make_proof(new_key(), "POST", htu, iat=NOW), method="POST", url=URL, now=NOW)


@pytest.mark.parametrize(
    "htu",
    [
        "https://ID.example:443/oauth2/v1/token",
        "HTTPS://id.example/oauth2/v1/token?x=1",
        "https://id.example/oauth2/v1/token#frag",
        "https://id.example/oauth2/v1/%74oken",
    ],
)
def test_htu_is_compared_after_normalization(htu: str) -> None:
    """§4.3 check 9: query and fragment ignored; RFC 3986 §6.2.2-6.2.3 normalization."""
    verify_proof(make_proof(new_key(), "POST", htu, iat=NOW), method="POST", url=URL, now=NOW)


def test_normalize_htu() -> None:
    assert normalize_htu("http://127.0.0.1:80") == "http://127.0.0.1/"
    assert normalize_htu("https://[::1]:8443/a%2fb") == "https://[::1]:8443/a%2Fb"
    with pytest.raises(ValueError):
        normalize_htu("ftp://x/")


def test_iat_window() -> None:
    key = new_key()
    verify_proof(make_proof(key, "POST", URL, iat=NOW - 60), method="POST", url=URL, now=NOW)
    with pytest.raises(InvalidProof, match="too old"):
        verify_proof(make_proof(key, "POST", URL, iat=NOW - 70), method="POST", url=URL, now=NOW)
    with pytest.raises(InvalidProof, match="future"):
        verify_proof(make_proof(key, "POST", URL, iat=NOW + 30), method="POST", url=URL, now=NOW)


@pytest.mark.parametrize("missing", ["jti", "htm", "htu", "iat"])
def test_missing_claims_are_refused(missing: str) -> None:
    proof = make_proof(new_key(), "POST", URL, iat=NOW, claims={missing: None})
    with pytest.raises(InvalidProof):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_ath_binds_the_access_token() -> None:
    key = new_key()
    good = make_proof(key, "GET", URL, iat=NOW, access_token="tok")
    verify_proof(good, method="GET", url=URL, now=NOW, access_token="tok")
    with pytest.raises(InvalidProof, match="ath"):
        verify_proof(good, method="GET", url=URL, now=NOW, access_token="other")
    with pytest.raises(InvalidProof, match="ath"):
        verify_proof(make_proof(key, "GET", URL, iat=NOW), method="GET", url=URL, now=NOW,
                     access_token="tok")
    assert access_token_hash("tok") == make_proof.__globals__["ath"]("tok")


def test_nonces() -> None:
    nonces = NonceSource(b"s" * 32, window=300)
    key = new_key()
    with pytest.raises(NonceRequired):
        verify_proof(make_proof(key, "POST", URL, iat=NOW), method="POST", url=URL, now=NOW,
                     nonces=nonces)
    nonce = nonces.current(NOW)
    proof = make_proof(key, "POST", URL, iat=NOW, nonce=nonce)
    assert verify_proof(proof, method="POST", url=URL, now=NOW, nonces=nonces).nonce == nonce
    assert nonces.is_valid(nonce, NOW + 300)  # the next window still takes it
    assert not nonces.is_valid(nonce, NOW + 600)
    assert not NonceSource(b"t" * 32).is_valid(nonce, NOW)
    assert not nonces.is_valid("1.x", NOW)
    with pytest.raises(NonceRequired):
        verify_proof(make_proof(key, "POST", URL, iat=NOW, nonce="5.abc"), method="POST",
                     url=URL, now=NOW, nonces=nonces)


def test_the_header_must_be_single_and_compact() -> None:
    assert proof_from_headers([]) is None
    with pytest.raises(InvalidProof, match="one"):
        proof_from_headers(["a.b.c", "a.b.c"])
    with pytest.raises(InvalidProof):
        proof_from_headers(["not a jwt"])
    with pytest.raises(InvalidProof):
        verify_proof("a.b.c", method="POST", url=URL, now=NOW)


def test_small_rsa_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = RSAKey.import_key(rsa.generate_private_key(65537, 1024))
    proof = make_proof(small, "POST", URL, iat=NOW, alg="RS256")
    with pytest.raises(InvalidProof, match="2048"):
        verify_proof(proof, method="POST", url=URL, now=NOW)


def test_replay_keys_are_per_key_and_fixed_length() -> None:
    assert replay_key("a", "j") != replay_key("b", "j")
    assert len(replay_key("a", "j" * 200)) == len(replay_key("a", "j"))
    assert isinstance(ECKey, type)
