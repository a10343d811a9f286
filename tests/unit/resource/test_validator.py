"""`tessera.resource.TokenValidator` against a real issuer on loopback (see conftest.py): one test
per part of docs/security.md rule 19 and the JOSE attack classes (alg confusion, unknown `crit`,
unbounded input, issuer substring match)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from tessera.resource import (
    AccessToken,
    DiscoveryError,
    InsufficientScopeError,
    InvalidTokenError,
    JwksCache,
    TokenError,
    TokenValidator,
)
from tests.unit.resource.conftest import AUDIENCE, DROP, Idp, b64url, forge

JWKS = "/jwks"
DISCOVERY = "/.well-known/openid-configuration"


def refused(validator: TokenValidator, token: str, *scopes: str) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        validator.validate(token, scopes)
    assert caught.value.status == 401
    assert 'error="invalid_token"' in caught.value.www_authenticate()
    return caught.value


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    head, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(head), decode(payload), signature


# --- valid tokens ------------------------------------------------------------------------------


def test_a_valid_es256_token_gives_the_access_token(idp: Idp, validator: TokenValidator) -> None:
    claims = idp.claims()
    result = validator.validate(idp.sign(claims, idp.ec))
    assert isinstance(result, AccessToken)
    assert result.subject == "user-42"
    assert result.sub_type == "user" and result.is_user
    assert result.client_id == "app-7"
    assert result.scopes == frozenset({"orders:read", "orders:write"})
    assert result.user_display_name == "Alice Example"
    assert result.expires_at == claims["exp"]
    assert result.issued_at == claims["iat"]
    assert result.jti == claims["jti"]
    assert result.audience == (AUDIENCE,)
    assert result.grant_id == "grant-9"
    assert idp.hits == {DISCOVERY: 1, JWKS: 1}


def test_a_valid_rs256_token_gives_the_access_token(idp: Idp, validator: TokenValidator) -> None:
    claims = idp.claims(sub="app-7", sub_type="client", user_displayname=DROP, scope="orders:read")
    result = validator.validate(idp.sign(claims, idp.rsa))
    assert result.subject == "app-7" and result.sub_type == "client" and not result.is_user
    assert result.client_id == "app-7"
    assert result.scopes == frozenset({"orders:read"})
    assert result.user_display_name is None
    assert (result.expires_at, result.jti) == (claims["exp"], claims["jti"])


def test_typ_application_at_jwt_is_accepted(idp: Idp, validator: TokenValidator) -> None:
    assert validator.validate(idp.sign(typ="application/at+jwt")).subject == "user-42"


# --- time --------------------------------------------------------------------------------------


def test_an_expired_token_beyond_the_leeway_is_refused(idp: Idp, validator: TokenValidator) -> None:
    now = int(time.time())
    error = refused(
        validator,
        idp.token(iat=now - 600, nbf=now - 600, exp=now - 60),  # a small skew: 30 s
    )
    assert "expired" in error.description


def test_an_expired_token_within_the_leeway_is_accepted(
    idp: Idp, validator: TokenValidator
) -> None:
    now = int(time.time())
    assert validator.validate(idp.token(iat=now - 600, nbf=now - 600, exp=now - 10)).subject
    # The same small skew for a clock behind the issuer's: nbf and iat a little ahead.
    assert validator.validate(idp.token(iat=now + 10, nbf=now + 10, exp=now + 300)).subject


def test_a_token_without_exp_is_refused(idp: Idp, validator: TokenValidator) -> None:
    refused(validator, idp.token(exp=DROP))


def test_a_token_with_nbf_in_the_future_is_refused(idp: Idp, validator: TokenValidator) -> None:
    now = int(time.time())
    error = refused(validator, idp.token(nbf=now + 60, exp=now + 900))
    assert "not valid yet" in error.description


def test_a_token_with_iat_in_the_future_is_refused(idp: Idp, validator: TokenValidator) -> None:
    now = int(time.time())
    error = refused(validator, idp.token(iat=now + 60, nbf=DROP, exp=now + 900))
    assert "issue time" in error.description


# --- issuer and audience -----------------------------------------------------------------------


def test_a_token_from_another_issuer_is_refused(idp: Idp, validator: TokenValidator) -> None:
    refused(validator, idp.token(iss="https://other-idp.example.test"))
    refused(validator, idp.token(iss=DROP))


@pytest.mark.parametrize(
    "iss",
    [
        "https://idp.test.evil",  # suffix
        "https://idp.test.evil.example",
        "https://evil.idp.test",  # prefix
        "https://idp.tes",  # a substring of ours
        "https://idp.test/",
        "https://idp.test/tenant",
        "https://IDP.test",
        "http://idp.test",
        " https://idp.test",
        "https://evil.test/https://idp.test",
        ["https://idp.test"],
    ],
)
def test_the_issuer_is_compared_exactly_never_as_a_substring(idp: Idp, iss: Any) -> None:
    # PyJWT CVE-2024-53861: `"https://idp.test" in "https://idp.test.evil"` must not pass.
    validator = TokenValidator(
        "https://idp.test", AUDIENCE, jwks=JwksCache("https://idp.test", jwks_uri=idp.jwks_uri)
    )
    assert validator.validate(idp.token(iss="https://idp.test")).subject == "user-42"
    refused(validator, idp.token(iss=iss))


def test_a_token_for_another_audience_is_refused(idp: Idp, validator: TokenValidator) -> None:
    error = refused(validator, idp.token(aud="https://other-api.example.test"))
    assert "audience" in error.description
    refused(validator, idp.token(aud=[]))
    refused(validator, idp.token(aud=DROP))
    refused(validator, idp.token(aud=AUDIENCE + "/"))
    refused(validator, idp.token(aud="https://api.example"))  # a prefix of ours


def test_an_audience_list_containing_ours_is_accepted(idp: Idp, validator: TokenValidator) -> None:
    result = validator.validate(idp.token(aud=["https://other.example.test", AUDIENCE]))
    assert result.audience == ("https://other.example.test", AUDIENCE)


# --- the header: algorithms, typ, crit, kid ------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(idp: Idp, validator: TokenValidator, alg: str) -> None:
    header = {"alg": alg, "typ": "at+jwt", "kid": "ec-1"}
    refused(validator, forge(header, idp.claims()))
    # Also with a valid signature left in place, and without a kid.
    _, _, signature = idp.token().split(".")
    refused(validator, forge(header, idp.claims()) + signature)
    refused(validator, forge({"alg": alg, "typ": "at+jwt"}, idp.claims()))
    assert idp.hits[JWKS] == 0  # refused before any key was looked up


def _public_secrets(key: RSAKey) -> list[bytes]:
    """The forms an attacker can find the public key in: PEM (SPKI, PKCS#1), DER, JWK JSON."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key
    return [
        key.as_pem(private=False),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(key.as_dict(private=False)).encode(),
    ]


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_rsa_public_key_is_refused(
    idp: Idp, validator: TokenValidator, alg: str
) -> None:
    # Algorithm confusion (Authlib CVE-2024-37568, PyJWT CVE-2022-29217): the public key as an
    # HMAC secret, with the kid of the RSA key.
    assert validator.validate(idp.sign(key=idp.rsa)).subject  # the RSA key itself is trusted
    for secret in _public_secrets(idp.rsa):
        token = forge(
            {"alg": alg, "typ": "at+jwt", "kid": "rsa-1"}, idp.claims(), alg=alg, secret=secret
        )
        error = refused(validator, token)
        assert "algorithm" in error.description


def test_hmac_algorithms_cannot_even_be_configured(idp: Idp) -> None:
    for algorithms in (["HS256"], ["RS256", "HS256"], ["none"], ["ES256", "none"]):
        with pytest.raises(ValueError, match="never none or HMAC"):
            TokenValidator(idp.issuer, AUDIENCE, algorithms=algorithms)


def test_an_algorithm_outside_the_allow_list_is_refused(
    idp: Idp, validator: TokenValidator
) -> None:
    # A properly signed PS256 token, with the right RSA key: not on this validator's list.
    header = {"alg": "PS256", "typ": "at+jwt", "kid": "rsa-1"}
    refused(validator, forge(header, idp.claims(), idp.rsa, "PS256"))


def test_an_alg_that_does_not_match_the_key_is_refused(idp: Idp, validator: TokenValidator) -> None:
    # RS256 in the header, the kid of the EC key (and vice versa).
    refused(
        validator,
        forge({"alg": "RS256", "typ": "at+jwt", "kid": "ec-1"}, idp.claims(), idp.rsa, "RS256"),
    )
    refused(
        validator,
        forge({"alg": "ES256", "typ": "at+jwt", "kid": "rsa-1"}, idp.claims(), idp.ec, "ES256"),
    )


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt+x", "application/jwt", "", 1, None])
def test_a_wrong_typ_is_refused(idp: Idp, validator: TokenValidator, typ: Any) -> None:
    # RFC 9068 §4: an ID token or any other JWT signed by the same key is not an access token.
    header = {"alg": "ES256", "typ": typ, "kid": "ec-1"}
    error = refused(validator, forge(header, idp.claims(), idp.ec, "ES256"))
    assert "typ" in error.description


def test_a_missing_typ_is_refused(idp: Idp, validator: TokenValidator) -> None:
    token = forge({"alg": "ES256", "kid": "ec-1"}, idp.claims(), idp.ec, "ES256")
    assert "typ" not in parts(token)[0]
    assert "typ" in refused(validator, token).description


@pytest.mark.parametrize(
    "crit",
    [
        {"crit": ["urn:example:unknown"], "urn:example:unknown": True},
        {"crit": ["b64"], "b64": True},
        {"crit": ["exp"]},
        {"crit": []},
    ],
)
def test_an_unknown_crit_header_is_refused(
    idp: Idp, validator: TokenValidator, crit: dict[str, Any]
) -> None:
    # Authlib CVE-2025-59420: a `crit` parameter we do not understand must fail validation.
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1", **crit}
    error = refused(validator, forge(header, idp.claims(), idp.ec, "ES256"))
    assert "critical" in error.description


def test_a_token_without_kid_is_refused(idp: Idp, validator: TokenValidator) -> None:
    refused(validator, forge({"alg": "ES256", "typ": "at+jwt"}, idp.claims(), idp.ec, "ES256"))
    refused(
        validator, forge({"alg": "ES256", "typ": "at+jwt", "kid": 1}, idp.claims(), idp.ec, "ES256")
    )
    assert idp.hits[JWKS] == 0


def test_an_embedded_jwk_header_is_not_trusted(idp: Idp, validator: TokenValidator) -> None:
    # The attacker's own key in `jwk`/`jku`, with our kid: the signature is checked against the
    # issuer's key for that kid only.
    evil = ECKey.generate_key("P-256", {"kid": "ec-1"})
    header = {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": "ec-1",
        "jwk": evil.as_dict(private=False),
        "jku": "http://127.0.0.1:9/evil-jwks",
    }
    refused(validator, forge(header, idp.claims(), evil, "ES256"))


# --- keys: unknown kid, refetch, rotation --------------------------------------------------------


def test_an_unknown_kid_triggers_exactly_one_jwks_refetch(idp: Idp) -> None:
    validator = TokenValidator(
        idp.issuer, AUDIENCE, jwks=JwksCache(idp.issuer, refetch_interval=0.3)
    )
    assert validator.validate(idp.token()).subject
    assert idp.hits[JWKS] == 1
    time.sleep(0.35)  # the JWKS is now older than the refetch interval
    stranger = ECKey.generate_key("P-256", {"kid": "unknown-1"})
    error = refused(validator, idp.sign(key=stranger))
    assert "unknown key" in error.description
    assert idp.hits[JWKS] == 2  # one refetch
    # A second unknown kid inside the refetch interval: no further fetch.
    refused(validator, idp.sign(key=ECKey.generate_key("P-256", {"kid": "unknown-2"})))
    refused(validator, idp.sign(key=stranger))
    assert idp.hits[JWKS] == 2
    assert idp.hits[DISCOVERY] == 1  # the metadata is read once


def test_forged_kids_right_after_a_fetch_cause_no_fetch_at_all(
    idp: Idp, validator: TokenValidator
) -> None:
    assert validator.validate(idp.token()).subject
    for n in range(20):
        refused(validator, idp.sign(key=ECKey.generate_key("P-256", {"kid": f"forged-{n}"})))
    assert idp.hits[JWKS] == 1


def test_a_key_added_to_the_jwks_after_startup_is_found_by_the_refetch(idp: Idp) -> None:
    validator = TokenValidator(
        idp.issuer, AUDIENCE, jwks=JwksCache(idp.issuer, refetch_interval=0.3)
    )
    assert validator.validate(idp.token()).subject
    new_key = RSAKey.generate_key(2048, {"kid": "rsa-2", "alg": "RS256"})
    token = idp.sign(key=new_key)
    refused(validator, token)  # not published yet, and the JWKS is fresh: no refetch
    assert idp.hits[JWKS] == 1
    idp.keys.append(new_key)  # published after the validator started
    time.sleep(0.35)
    result = validator.validate(token)
    assert result.subject == "user-42"
    assert idp.hits[JWKS] == 2
    # The keys it already knew still work after the refetch.
    assert validator.validate(idp.token()).subject
    assert idp.hits[JWKS] == 2


def test_a_private_key_in_the_jwks_is_ignored(idp: Idp, validator: TokenValidator) -> None:
    leaked = ECKey.generate_key("P-256", {"kid": "leaked-1"})
    entry = leaked.as_dict(private=True)
    entry.update(kid="leaked-1", alg="ES256", use="sig")
    assert "d" in entry
    idp.raw_jwks_entries.append(entry)
    refused(validator, idp.sign(key=leaked))
    assert validator.jwks.get("leaked-1") is None
    assert validator.jwks.get("ec-1") is not None  # the other keys are used


def test_an_encryption_key_in_the_jwks_is_not_used_to_verify(
    idp: Idp, validator: TokenValidator
) -> None:
    enc = ECKey.generate_key("P-256", {"kid": "enc-1"})
    entry = enc.as_dict(private=False)
    entry.update(kid="enc-1", use="enc")
    idp.raw_jwks_entries.append(entry)
    refused(validator, idp.sign(key=enc))


def test_a_malformed_jwks_entry_is_skipped(idp: Idp, validator: TokenValidator) -> None:
    idp.raw_jwks_entries.extend(["not-a-key", 7, None])
    assert validator.validate(idp.token()).subject == "user-42"


def test_a_failing_jwks_is_not_refetched_on_every_request(
    idp: Idp, validator: TokenValidator
) -> None:
    idp.jwks_status = 503
    for _ in range(5):
        refused(validator, idp.token())
    assert idp.hits[JWKS] == 1


def test_unavailable_keys_are_invalid_token_not_a_crash(
    idp: Idp, validator: TokenValidator
) -> None:
    idp.jwks_status = 500
    error = refused(validator, idp.token())
    assert "unavailable" in error.description


# --- discovery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".evil", "/", "/other", ":1"])
def test_discovery_refuses_metadata_naming_another_issuer(
    idp: Idp, validator: TokenValidator, suffix: str
) -> None:
    idp.metadata_issuer = idp.issuer + suffix
    with pytest.raises(DiscoveryError, match="another issuer"):
        JwksCache(idp.issuer).metadata()
    refused(validator, idp.token())
    assert idp.hits[JWKS] == 0  # never followed that metadata's jwks_uri


def test_discovery_refuses_metadata_without_issuer(idp: Idp, validator: TokenValidator) -> None:
    idp.metadata_issuer = ""
    refused(validator, idp.token())
    assert idp.hits[JWKS] == 0


# --- signature and shape -------------------------------------------------------------------------


def test_a_tampered_payload_is_refused(idp: Idp, validator: TokenValidator) -> None:
    token = idp.token()
    head, _, signature = token.split(".")
    for changes in (
        {"scope": "orders:read orders:write admin"},
        {"sub": "user-1"},
        {"exp": int(time.time()) + 10**6},
    ):
        _, claims, _ = parts(token)
        claims.update(changes)
        tampered = f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"
        assert "signature" in refused(validator, tampered).description
    assert validator.validate(token).subject  # the original is fine


def test_a_tampered_signature_is_refused(idp: Idp, validator: TokenValidator) -> None:
    for key in (idp.ec, idp.rsa):
        head, payload, signature = idp.sign(key=key).split(".")
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        refused(validator, f"{head}.{payload}.{flipped}")
        refused(validator, f"{head}.{payload}.")
        refused(validator, f"{head}.{payload}.{signature[:-8]}")


def test_a_huge_token_is_refused_quickly(idp: Idp, validator: TokenValidator) -> None:
    # Unbounded JOSE input (Authlib CVE-2025-61920): refused on its size, before any parsing,
    # key lookup or signature check.
    signed = idp.sign(idp.claims(padding="x" * 17 * 1024))  # properly signed, > 16 KiB
    assert len(signed) > 16 * 1024
    enormous = "eyJ" + "A" * (10 * 1024 * 1024) + ".e30.sig"
    for token in (signed, enormous, "." * 20000):
        started = time.perf_counter()
        refused(validator, token)
        assert time.perf_counter() - started < 0.25
    assert idp.hits[JWKS] == 0 and idp.hits[DISCOVERY] == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",  # a JWE shape
        "!!!.e30.c2ln",
        "abcde.e30.c2ln",  # impossible base64 length
        b64url(b"not json") + ".e30.c2ln",
        b64url(b"[1, 2]") + ".e30.c2ln",
        b64url(b'"at+jwt"') + ".e30.c2ln",
        b64url(b"\xff\xfe{}") + ".e30.c2ln",  # invalid UTF-8
        "\u00e9\u00e9\u00e9\u00e9.e30.c2ln",  # not ASCII
        b64url(b'{"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}') + ".!!!.c2ln",
        b64url(b'{"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}') + "." + b64url(b"[]") + ".c2ln",
        b64url(b'{"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}')
        + "."
        + b64url(b"{bad")
        + ".c2ln",
        b64url(b'{"alg": ["ES256"], "typ": "at+jwt", "kid": "ec-1"}') + ".e30.c2ln",
    ],
)
def test_a_malformed_token_is_invalid_token(validator: TokenValidator, token: str) -> None:
    refused(validator, token)


def test_a_deeply_nested_header_is_invalid_token(validator: TokenValidator) -> None:
    header = (
        b'{"alg": "ES256", "typ": "at+jwt", "kid": "ec-1", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    )
    token = b64url(header) + ".e30.c2ln"
    assert len(token) < 16 * 1024  # within the size limit
    refused(validator, token)


@pytest.mark.parametrize("exp", ["NaN", "1e400", '1, "x": ' + "[" * 2000 + "]" * 2000])
def test_signed_claims_that_break_json_numbers_or_depth_are_invalid_token(
    idp: Idp, validator: TokenValidator, exp: str
) -> None:
    claims = idp.claims(exp=0)
    payload = json.dumps(claims).replace('"exp": 0', f'"exp": {exp}').encode()
    refused(
        validator, forge({"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}, payload, idp.ec, "ES256")
    )


@pytest.mark.parametrize("claim", ["sub", "client_id", "jti"])
def test_a_token_missing_a_required_claim_is_refused(
    idp: Idp, validator: TokenValidator, claim: str
) -> None:
    error = refused(validator, idp.token(**{claim: DROP}))
    assert claim in error.description
    refused(validator, idp.token(**{claim: 12345}))  # not a string either


def test_a_token_without_iat_is_refused(idp: Idp, validator: TokenValidator) -> None:
    refused(validator, idp.token(iat=DROP))


# --- scopes --------------------------------------------------------------------------------------


def test_a_missing_required_scope_is_insufficient_scope(
    idp: Idp, validator: TokenValidator
) -> None:
    token = idp.token(scope="orders:read")
    assert validator.validate(token, ["orders:read"]).scopes == {"orders:read"}
    with pytest.raises(InsufficientScopeError) as caught:
        validator.validate(token, ["orders:read", "orders:write"])
    error = caught.value
    assert error.status == 403
    assert error.scope == "orders:read orders:write"
    challenge = error.www_authenticate()
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:read orders:write"' in challenge
    assert error.body()["error"] == "insufficient_scope"


def test_a_scope_is_matched_as_a_whole_word(idp: Idp, validator: TokenValidator) -> None:
    token = idp.token(scope="orders:read-only admin:none")
    for missing in ("orders:read", "admin", "orders"):
        with pytest.raises(InsufficientScopeError):
            validator.validate(token, [missing])


# --- the cache and revocation --------------------------------------------------------------------


def test_a_second_validation_is_served_from_the_cache(idp: Idp, validator: TokenValidator) -> None:
    token = idp.token()
    first = validator.validate(token)
    hits = dict(idp.hits)
    assert validator.cached(token) == first

    def no_lookup(kid: str) -> None:
        raise AssertionError("the JWKS was consulted for a cached token")

    validator.jwks.get = no_lookup  # type: ignore[method-assign]
    idp.keys = []  # and the issuer no longer publishes the key
    assert validator.validate(token) == first
    assert validator.validate(token, ["orders:write"]) == first
    assert dict(idp.hits) == hits
    assert validator.cached(idp.token()) is None  # another token is not in the cache


def test_an_expired_token_is_not_served_from_the_cache(idp: Idp, validator: TokenValidator) -> None:
    now = int(time.time())
    exp = now - validator.leeway + 2
    token = idp.token(iat=now - 600, nbf=now - 600, exp=exp)
    assert validator.validate(token).subject
    time.sleep(max(0.0, exp + validator.leeway - time.time()) + 0.05)  # now beyond the leeway
    assert validator.cached(token) is None
    refused(validator, token)


class Revocations:
    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        self.calls.append((token, claims))
        return claims.get("jti") in self.revoked


def test_revocation_is_checked_also_for_cached_tokens(idp: Idp) -> None:
    revocations = Revocations()
    validator = TokenValidator(idp.issuer, AUDIENCE, revocation=revocations)
    claims = idp.claims()
    token = idp.sign(claims)
    assert validator.validate(token).jti == claims["jti"]
    assert validator.cached(token) is not None
    assert len(revocations.calls) == 2
    assert revocations.calls[0][0] == token and revocations.calls[0][1]["jti"] == claims["jti"]

    revocations.revoked.add(claims["jti"])
    assert "revoked" in refused(validator, token).description
    with pytest.raises(InvalidTokenError, match="revoked"):
        validator.cached(token)
    assert len(revocations.calls) == 4


def test_a_revoked_token_is_never_cached_as_valid(idp: Idp) -> None:
    revocations = Revocations()
    validator = TokenValidator(idp.issuer, AUDIENCE, revocation=revocations)
    claims = idp.claims()
    revocations.revoked.add(claims["jti"])
    token = idp.sign(claims)
    refused(validator, token)
    revocations.revoked.clear()
    assert validator.cached(token) is None


# --- the RFC 6750 challenge ----------------------------------------------------------------------


def test_the_challenge_for_a_request_without_token_has_no_error_code() -> None:
    # RFC 6750 §3.1: no error information when the request carried no authentication.
    challenge = InvalidTokenError("").www_authenticate()
    assert challenge == 'Bearer realm="api"'
    assert "error=" not in challenge


def test_the_challenge_for_a_bad_token_names_the_error() -> None:
    challenge = InvalidTokenError('the token "x" has expired').www_authenticate(realm="orders")
    assert challenge.startswith('Bearer realm="orders", error="invalid_token"')
    assert "error_description=\"the token 'x' has expired\"" in challenge
    assert isinstance(InvalidTokenError("x"), TokenError)


def test_signing_helpers_produce_what_the_validator_expects(
    idp: Idp, validator: TokenValidator
) -> None:
    # Guard for the tests above: a hand-forged token with the right header and key is valid,
    # so the refusals are due to the one thing each test changes.
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}
    assert validator.validate(forge(header, idp.claims(), idp.ec, "ES256")).subject == "user-42"
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}
    assert validator.validate(forge(header, idp.claims(), idp.rsa, "RS256")).subject == "user-42"
    assert "HS256" in JWSRegistry.algorithms
