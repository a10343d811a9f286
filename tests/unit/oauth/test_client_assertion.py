"""JWT client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9
`private_key_jwt` / `client_secret_jwt`, RFC 8725 §3.1-§3.2): every rule refuses on its own,
replay is checked on the real memory `NonceStore`, and a key rotated at `jwks_uri` is picked up
from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, Key, KeySet, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from tessera.oauth.client_assertion import (
    MAX_ASSERTION_LENGTH,
    AssertionRefused,
    client_id_of_assertion,
    replay_key,
    verify_client_assertion,
)
from tessera.oauth.client_jwks import JwksFetcher
from tessera.store.memory import MemoryStore
from tests.unit.oauth.test_client_jwks import Clock, JwksServer, server  # noqa: F401

CLIENT = "app-123"
ISSUER = "https://id.example"
TOKEN_URL = "https://id.example/oauth2/v1/token"
AUDIENCES = (ISSUER, TOKEN_URL)
NOW = 1_800_000_000
SECRET = b"Zm9vYmFyLXNlY3JldC10aGF0LWlzLTMyLWJ5dGVzLWxvbmc"

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
RSA_ONLY = KeySet([RSAKey.import_key(RSA.as_dict(private=False))])
APP_KEYS = KeySet(
    [
        RSAKey.import_key(RSA.as_dict(private=False)),
        ECKey.import_key(EC.as_dict(private=False)),
        OKPKey.import_key(ED.as_dict(private=False)),
    ]
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": CLIENT,
        "sub": CLIENT,
        "aud": TOKEN_URL,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": f"jti-{next(_counter)}",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


_counter = iter(range(10**9))


def sign(key: Key, alg: str = "RS256", header: dict[str, Any] | None = None, **c: Any) -> str:
    head: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if key.kid:
        head["kid"] = key.kid
    head.update(header or {})
    head = {name: value for name, value in head.items() if value is not None}
    return jws.serialize_compact(head, json.dumps(claims(**c)).encode(), key, algorithms=[alg])


def client_claims(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))


def hmac_token(secret: bytes, header: dict[str, Any], body: dict[str, Any]) -> str:
    """An HS256 JWS built by hand, as an attacker would: joserfc refuses such keys."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


@pytest.fixture
def use_jti() -> Callable[[str, int], bool]:
    """The real memory NonceStore, as the lead will adapt it (epoch seconds to datetimes)."""
    nonces = MemoryStore().nonces
    now = datetime.fromtimestamp(NOW, UTC)
    return lambda key, until: nonces.use_once(key, datetime.fromtimestamp(until, UTC), now)


def verify(token: str, use_jti: Callable[[str, int], bool], **options: Any) -> dict[str, Any]:
    if "secret" not in options:
        options.setdefault("keys", APP_KEYS)
    options.setdefault("now", NOW)
    return verify_client_assertion(
        token, client_id=CLIENT, audiences=AUDIENCES, use_jti=use_jti, **options
    )


def refused(token: str, use_jti: Callable[[str, int], bool], match: str, **options: Any) -> None:
    with pytest.raises(AssertionRefused, match=match):
        verify(token, use_jti, **options)


# --- the good cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg"),
    [(RSA, "RS256"), (RSA, "PS256"), (EC, "ES256"), (ED, "EdDSA"), (ED, "Ed25519")],
)
def test_a_good_private_key_jwt_assertion_authenticates(
    key: Key, alg: str, use_jti: Callable[[str, int], bool]
) -> None:
    token = sign(key, alg)
    assert verify(token, use_jti)["sub"] == CLIENT


def test_a_good_client_secret_jwt_assertion_authenticates(
    use_jti: Callable[[str, int], bool],
) -> None:
    for alg in ("HS256", "HS384", "HS512"):
        token = hmac_like(alg)
        assert verify(token, use_jti, secret=SECRET)["iss"] == CLIENT


def hmac_like(alg: str, secret: bytes = SECRET, **c: Any) -> str:
    return sign(OctKey.import_key(secret), alg, **c)


def test_aud_may_be_the_issuer_or_an_array_holding_one_of_ours(
    use_jti: Callable[[str, int], bool],
) -> None:
    verify(sign(RSA, aud=ISSUER), use_jti)
    verify(sign(RSA, aud=["https://other.example", TOKEN_URL]), use_jti)


def test_without_a_kid_the_one_key_of_the_right_type_is_used(
    use_jti: Callable[[str, int], bool],
) -> None:
    verify(sign(EC, "ES256", header={"kid": None}), use_jti)
    two_ec = KeySet([*APP_KEYS.keys, ECKey.generate_key("P-256", parameters={"kid": "ec-2"})])
    refused(sign(EC, "ES256", header={"kid": None}), use_jti, "no key", keys=two_ec)


def test_the_client_id_is_read_before_verification() -> None:
    assert client_id_of_assertion(sign(RSA)) == CLIENT
    assert client_id_of_assertion(sign(RSA, sub="someone-else")) is None
    assert client_id_of_assertion(sign(RSA, iss=None, sub=None)) is None
    assert client_id_of_assertion("a.b") is None
    assert client_id_of_assertion("x" * (MAX_ASSERTION_LENGTH + 1)) is None
    assert client_id_of_assertion(f"e30.{b64(b'[1]')}.c2ln") is None


# --- algorithms --------------------------------------------------------------------------------


def test_alg_none_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    body = b64(json.dumps(claims()).encode())
    for header in ({"alg": "none"}, {"alg": "None"}, {"alg": "none", "kid": "rsa-1"}):
        token = f"{b64(json.dumps(header).encode())}.{body}."
        refused(token, use_jti, "compact JWS")  # an empty signature is not a JWS
        refused(token + "c2ln", use_jti, "algorithm")


@pytest.mark.parametrize(
    "secret",
    [
        RSA.as_pem(private=False),
        json.dumps(RSA.as_dict(private=False)).encode(),
        str(RSA.as_dict(private=False)["n"]).encode(),
    ],
)
def test_hs256_signed_with_the_public_key_is_refused(
    secret: bytes, use_jti: Callable[[str, int], bool]
) -> None:
    token = hmac_token(secret, {"alg": "HS256", "kid": "rsa-1"}, claims())
    refused(token, use_jti, "algorithm 'HS256' is not accepted")
    with pytest.raises(ValueError, match="not allowed for this method"):
        verify(token, use_jti, allowed_algs=["HS256"])
    with pytest.raises(ValueError, match="exactly one"):
        verify(token, use_jti, keys=APP_KEYS, secret=SECRET)  # both together: a caller's bug


def test_client_secret_jwt_accepts_only_hmac_and_only_with_the_right_secret(
    use_jti: Callable[[str, int], bool],
) -> None:
    refused(sign(RSA), use_jti, "algorithm 'RS256'", secret=SECRET)
    refused(hmac_like("HS256", secret=b"another secret of enough length.."), use_jti, "signature",
            secret=SECRET)
    with pytest.raises(ValueError, match="exactly one"):
        verify_client_assertion(
            hmac_like("HS256"), client_id=CLIENT, audiences=AUDIENCES, now=NOW, use_jti=use_jti
        )


def test_the_allow_list_can_be_narrowed_to_the_apps_alg(
    use_jti: Callable[[str, int], bool],
) -> None:
    verify(sign(EC, "ES256"), use_jti, allowed_algs=["ES256"])
    refused(sign(RSA, "RS256"), use_jti, "algorithm 'RS256'", allowed_algs=["ES256"])


def test_a_key_of_the_wrong_type_for_the_alg_is_refused(
    use_jti: Callable[[str, int], bool],
) -> None:
    # ES256 header naming the RSA key's kid: never verified with the RSA key.
    token = sign(EC, "ES256", header={"kid": "rsa-1"})
    refused(token, use_jti, "no key of the app fits kid 'rsa-1'")


def test_a_key_whose_jwk_names_another_alg_is_refused(
    use_jti: Callable[[str, int], bool],
) -> None:
    pinned = KeySet([RSAKey.import_key({**RSA.as_dict(private=False), "alg": "PS256"})])
    verify(sign(RSA, "PS256"), use_jti, keys=pinned)
    refused(sign(RSA, "RS256"), use_jti, "no key", keys=pinned)


def rs256_by_hand(header: dict[str, Any], body: dict[str, Any], key: Key = RSA) -> str:
    """Signed correctly (with `header["alg"]`), for headers joserfc would not sign."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = JWSRegistry.algorithms[header["alg"]].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def test_crit_and_b64_headers_are_refused(use_jti: Callable[[str, int], bool]) -> None:
    head = {"alg": "RS256", "kid": "rsa-1"}
    verify(rs256_by_hand(head, claims()), use_jti)
    refused(rs256_by_hand({**head, "crit": ["exp"], "exp": 1}, claims()), use_jti, "critical")
    refused(rs256_by_hand({**head, "crit": ["b64"], "b64": True}, claims()), use_jti, "critical")
    refused(rs256_by_hand({**head, "b64": True}, claims()), use_jti, "critical")


def test_a_key_embedded_in_the_header_is_never_used(use_jti: Callable[[str, int], bool]) -> None:
    attacker = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    for extra in ({"jwk": attacker.as_dict(private=False)}, {"jku": "https://evil.example/k"}):
        token = rs256_by_hand({"alg": "ES256", "kid": "ec-1", **extra}, claims(), attacker)
        refused(token, use_jti, "signature")


def test_a_secret_unfit_for_hmac_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    short = b"too-short-for-hs256"
    refused(hmac_token(short, {"alg": "HS256"}, claims()), use_jti, "secret", secret=short)


def test_a_bad_signature_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    refused(sign(other), use_jti, "signature")
    token = sign(RSA)
    head, _, sig = token.split(".")
    tampered = b64(json.dumps(claims(sub=CLIENT, iss=CLIENT, exp=NOW + 200)).encode())
    refused(f"{head}.{tampered}.{sig}", use_jti, "signature")


def test_malformed_and_oversize_input_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    refused("x" * (MAX_ASSERTION_LENGTH + 1), use_jti, "too large")
    for bad in ("", "a.b", "a.b.c.d.e", "a..c", "a b.c.d", "!!.b.c"):
        refused(bad, use_jti, "compact JWS")
    refused("YQ.YQ.YQ", use_jti, "header is malformed")
    for header in (["alg"], "alg", "xalgx", 1, None):  # JSON, but not an object
        refused(f"{b64(json.dumps(header).encode())}.e30.YQ", use_jti, "header is malformed")
    head = b64(json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode())
    refused(f"{head}.{b64(b'[1]')}.YQ", use_jti, "signature")


def test_a_payload_that_is_not_an_object_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    token = jws.serialize_compact({"alg": "RS256", "kid": "rsa-1"}, b"[1, 2]", RSA)
    refused(token, use_jti, "not a JSON object")


# --- parties -----------------------------------------------------------------------------------


def test_iss_and_sub_must_both_be_the_client_id(use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(RSA, iss="other-app"), use_jti, "iss is not")
    refused(sign(RSA, sub="other-app"), use_jti, "sub is not")
    refused(sign(RSA, iss="other-app", sub="other-app"), use_jti, "iss is not")
    refused(sign(RSA, sub=None), use_jti, "sub is not")


@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example/oauth2/v1/token",
        ["https://other.example"],
        [],
        None,
        7,
        [ISSUER, 7],
        f"{ISSUER}/",
        ISSUER.upper(),
    ],
)
def test_a_wrong_aud_is_refused(aud: Any, use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(RSA, aud=aud), use_jti, "aud|audience")


# --- times -------------------------------------------------------------------------------------


def test_exp_is_required_and_numeric(use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(RSA, exp=None), use_jti, "no numeric exp")
    refused(sign(RSA, exp=str(NOW + 60)), use_jti, "no numeric exp")
    refused(sign(RSA, exp=True), use_jti, "no numeric exp")


def test_an_expired_assertion_is_refused_after_the_leeway(
    use_jti: Callable[[str, int], bool],
) -> None:
    verify(sign(RSA, exp=NOW - 29, iat=NOW - 60), use_jti)
    refused(sign(RSA, exp=NOW - 30, iat=NOW - 60), use_jti, "expired")
    refused(sign(RSA, exp=NOW - 5, iat=NOW - 60), use_jti, "expired", leeway=0)


def test_an_exp_too_far_ahead_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    verify(sign(RSA, exp=NOW + 330), use_jti)
    refused(sign(RSA, exp=NOW + 331), use_jti, "more than 300 s ahead")
    refused(sign(RSA, exp=NOW + 3600), use_jti, "more than 300 s ahead")
    refused(sign(RSA, exp=NOW + 61), use_jti, "more than 60 s", max_lifetime=60, leeway=0)


def test_a_future_iat_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    verify(sign(RSA, iat=NOW + 30), use_jti)
    refused(sign(RSA, iat=NOW + 31), use_jti, "iat is in the future")
    refused(sign(RSA, iat="now"), use_jti, "iat")


def test_a_future_nbf_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    verify(sign(RSA, nbf=NOW), use_jti)
    refused(sign(RSA, nbf=NOW + 31), use_jti, "not valid yet")


# --- replay ------------------------------------------------------------------------------------


def test_a_replayed_jti_is_refused(use_jti: Callable[[str, int], bool]) -> None:
    token = sign(RSA)
    verify(token, use_jti)
    refused(token, use_jti, "replay")
    jti = client_claims(token)["jti"]
    refused(sign(RSA, jti=jti), use_jti, "replay")  # a freshly signed JWT, the same jti


def test_jti_is_required(use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(RSA, jti=None), use_jti, "no jti")
    refused(sign(RSA, jti=""), use_jti, "no jti")
    refused(sign(RSA, jti=12), use_jti, "no jti")


def test_the_jti_is_kept_until_the_assertion_can_no_longer_be_accepted() -> None:
    recorded: dict[str, int] = {}

    def remember(key: str, until: int) -> bool:
        recorded[key] = until
        return True

    verify(sign(RSA, exp=NOW + 60, jti="j1"), remember)
    assert recorded == {replay_key(CLIENT, "j1"): NOW + 60 + 30}  # exp plus the leeway


def test_a_refused_assertion_burns_no_jti(use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(RSA, aud="https://other.example", jti="keep"), use_jti, "audience")
    verify(sign(RSA, jti="keep"), use_jti)


def test_jtis_of_different_clients_do_not_collide() -> None:
    assert replay_key("a", "1") != replay_key("b", "1")
    assert replay_key("a:b", "c") != replay_key("a", "b:c")
    assert len(replay_key(CLIENT, "x" * 512)) <= 200


# --- keys at a jwks_uri ------------------------------------------------------------------------


@pytest.fixture
def fetcher() -> Iterator[tuple[JwksFetcher, Clock]]:
    clock = Clock()
    f = JwksFetcher(allow_insecure_loopback=True, clock=clock)
    try:
        yield f, clock
    finally:
        f.close()


def test_a_key_rotated_at_the_jwks_uri_is_picked_up_with_one_refetch(
    server: JwksServer,  # noqa: F811
    fetcher: tuple[JwksFetcher, Clock],
    use_jti: Callable[[str, int], bool],
) -> None:
    f, clock = fetcher
    server.publish(RSA)
    keys = lambda refresh: f.keys(server.url(), refresh=refresh)  # noqa: E731
    verify(sign(RSA), use_jti, keys=keys)
    assert server.hits["/jwks"] == 1

    rotated = ECKey.generate_key("P-256", parameters={"kid": "ec-rotated"})
    server.publish(RSA, rotated)
    clock.now += 31  # the last fetch is older than the refetch interval
    verify(sign(rotated, "ES256"), use_jti, keys=keys)
    assert server.hits["/jwks"] == 2

    # A forged kid right after: refused from the cache, no request reaches the app's server.
    for i in range(10):
        forged = ECKey.generate_key("P-256", parameters={"kid": f"forged-{i}"})
        refused(sign(forged, "ES256"), use_jti, "no key", keys=keys)
    assert server.hits["/jwks"] == 2


def test_an_unavailable_jwks_uri_refuses_the_assertion(
    server: JwksServer,  # noqa: F811
    fetcher: tuple[JwksFetcher, Clock],
    use_jti: Callable[[str, int], bool],
) -> None:
    f, _ = fetcher
    server.status = 503
    keys = lambda refresh: f.keys(server.url(), refresh=refresh)  # noqa: E731
    refused(sign(RSA), use_jti, "keys are unavailable", keys=keys)


def test_a_fixed_key_set_is_not_refetched(use_jti: Callable[[str, int], bool]) -> None:
    refused(sign(EC, "ES256"), use_jti, "no key", keys=RSA_ONLY)
