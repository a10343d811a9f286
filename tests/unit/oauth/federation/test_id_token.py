"""An upstream provider's ID token (OIDC Core §3.1.3.7, §3.1.3.8): a good one passes, and each
rule refuses on its own with a detail that names it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jws
from joserfc.jwk import ECKey, KeySet, OctKey

from tessera.oauth.federation.errors import UpstreamError
from tessera.oauth.federation.id_token import validate_id_token
from tests.unit.oauth.federation.conftest import (
    CLIENT_ID,
    ROGUE_KEY,
    T0,
    UPSTREAM_KEY,
    b64,
    id_claims,
    sign,
)

ISSUER = "https://op.example"
NONCE = "n" * 43
KEYS = KeySet([UPSTREAM_KEY])
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)


def validate(token: str, keys: Any = KEYS, **options: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "nonce": NONCE,
        "now": T0,
        "allowed_algs": ["RS256", "ES256"],
        **options,
    }
    return validate_id_token(token, keys, **args)


def refused(token: str, match: str, keys: Any = KEYS, **options: Any) -> UpstreamError:
    with pytest.raises(UpstreamError, match=match) as caught:
        validate(token, keys, **options)
    assert caught.value.reason.startswith("The sign-in provider's answer could not be verified")
    return caught.value


def token(key: Any = UPSTREAM_KEY, alg: str = "RS256", **changes: Any) -> str:
    return sign({**id_claims(ISSUER, NONCE), **changes}, key, alg)


def test_a_good_id_token_gives_its_claims() -> None:
    claims = validate(token(amr=["pwd", "mfa"], auth_time=int(T0.timestamp()) - 5))
    assert claims["sub"] == "upstream-user-1"
    assert claims["amr"] == ["pwd", "mfa"]
    assert claims["auth_time"] == int((T0 - timedelta(seconds=5)).timestamp())


def test_an_ec_signed_token_passes_when_the_provider_advertises_es256() -> None:
    keys = KeySet([UPSTREAM_KEY, EC_KEY])
    assert validate(token(EC_KEY, "ES256"), keys)["sub"] == "upstream-user-1"
    refused(token(EC_KEY, "ES256"), "algorithm 'ES256'", keys, allowed_algs=["RS256"])


def test_a_forged_signature_is_refused() -> None:
    refused(token(ROGUE_KEY), "signature is invalid")  # the same kid, another key
    head, _, sig = token().split(".")
    other = b64(json.dumps(id_claims(ISSUER, NONCE, sub="someone-else")).encode())
    refused(f"{head}.{other}.{sig}", "signature is invalid")


def test_an_unknown_kid_asks_for_fresh_keys_once() -> None:
    asked: list[bool] = []

    def keys(refresh: bool) -> KeySet:
        asked.append(refresh)
        return KeySet([UPSTREAM_KEY]) if refresh else KeySet([EC_KEY])

    assert validate(token(), keys)["sub"] == "upstream-user-1"
    assert asked == [False, True]
    asked.clear()
    refused(token(ROGUE_KEY.__class__.generate_key(2048, parameters={"kid": "gone"})), "no key", keys)
    assert asked == [False, True]


def test_alg_none_is_refused() -> None:
    head = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(id_claims(ISSUER, NONCE)).encode())
    refused(f"{head}.{payload}.", "compact JWS")
    refused(f"{head}.{payload}.c2ln", "algorithm 'none'")
    refused(token(), "no accepted ID token algorithm", allowed_algs=["none"])


def test_hs256_is_refused_even_with_a_key_that_would_verify_it() -> None:
    # The provider's public key as an HMAC secret (RFC 8725 §2.1), and our client secret:
    # neither may ever verify an ID token.
    secret = OctKey.import_key(b"s" * 32)
    hs = jws.serialize_compact(
        {"alg": "HS256", "kid": "up-1"},
        json.dumps(id_claims(ISSUER, NONCE)).encode(),
        secret,
        algorithms=["HS256"],
    )
    refused(hs, "algorithm 'HS256'", KeySet([secret]), allowed_algs=["HS256", "RS256"])


def test_an_encrypted_id_token_is_refused() -> None:
    refused("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "encrypted")


def by_hand(header: dict[str, Any]) -> str:
    """RS256 over any header (RFC 7515 §5.1), which joserfc would not sign."""
    head = b64(json.dumps(header).encode())
    payload = b64(json.dumps(id_claims(ISSUER, NONCE)).encode())
    signature = UPSTREAM_KEY.private_key.sign(  # type: ignore[union-attr]
        f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{head}.{payload}.{b64(signature)}"


def test_crit_headers_are_refused() -> None:
    assert validate(by_hand({"alg": "RS256", "kid": "up-1"}))
    refused(by_hand({"alg": "RS256", "kid": "up-1", "crit": ["exp"], "exp": 1}), "critical")


@pytest.mark.parametrize("iss", ["https://op.example/", "https://evil.example", None, ["x"]])
def test_a_wrong_iss_is_refused(iss: Any) -> None:
    refused(token(iss=iss), "iss")


@pytest.mark.parametrize("aud", ["another-app", ["another-app"], [], None, 7, [CLIENT_ID, 7]])
def test_an_aud_that_does_not_name_us_is_refused(aud: Any) -> None:
    refused(token(aud=aud), "aud")


def test_azp_is_required_beside_other_audiences_and_must_be_us() -> None:
    refused(token(aud=[CLIENT_ID, "other"]), "several audiences and no azp")
    assert validate(token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))
    refused(token(aud=[CLIENT_ID, "other"], azp="other"), "azp is another client")
    refused(token(azp="other"), "azp is another client")
    assert validate(token(aud=[CLIENT_ID, CLIENT_ID]))  # one audience, named twice


def test_an_expired_token_is_refused_past_the_leeway() -> None:
    at = int(T0.timestamp())
    assert validate(token(exp=at - 59))  # within the 60 s leeway
    refused(token(exp=at - 60), "expired")
    refused(token(exp=at + 10), "expired", now=T0 + timedelta(seconds=71))
    refused(token(exp=None), "no numeric exp")
    refused(token(exp=str(at + 60)), "no numeric exp")
    refused(token(exp=True), "no numeric exp")


def test_iat_is_required_and_not_in_the_future() -> None:
    at = int(T0.timestamp())
    refused(token(iat=None), "no numeric iat")
    refused(token(iat=at + 61), "iat is in the future")
    assert validate(token(iat=at + 60))
    refused(token(nbf=at + 61), "nbf")


@pytest.mark.parametrize("nonce", ["m" * 43, "", None, 42, NONCE + "x"])
def test_a_wrong_nonce_is_refused(nonce: Any) -> None:
    refused(token(nonce=nonce), "nonce")


@pytest.mark.parametrize("sub", [None, "", 42, "x" * 256])
def test_a_missing_or_bad_sub_is_refused(sub: Any) -> None:
    refused(token(sub=sub), "sub")


def test_amr_must_be_strings_and_auth_time_a_number() -> None:
    refused(token(amr="pwd"), "amr")
    refused(token(auth_time="yesterday"), "auth_time")


def test_at_hash_must_match_the_access_token_when_present() -> None:
    digest = hashlib.sha256(b"the-access-token").digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert validate(token(at_hash=at_hash), access_token="the-access-token")
    refused(token(at_hash=at_hash), "at_hash", access_token="another-access-token")
    assert validate(token(), access_token="any")  # absent: nothing to compare


def test_oversize_and_malformed_tokens_are_refused() -> None:
    refused("x" * 40000, "too large")
    refused("not a jwt", "compact JWS")
    refused(f"{b64(b'[1]')}.{b64(b'{}')}.c2ln", "header is malformed")
    refused(by_hand({"alg": "RS256", "kid": 5}), "kid")
