"""`tessera.resource.dpop`'s parts: the in-memory and Redis replay caches (RFC 9449 §11.1),
the URL a proof must name (§4.3 check 9: the client's, also behind a proxy), the policy's
own checks, and `validate_request` for code without an adapter. The adapters' behaviour is in
test_dpop_adapters.py."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from tessera.resource import (
    AccessToken,
    DPoPPolicy,
    InsufficientScopeError,
    InvalidDPoPProofError,
    InvalidTokenError,
    MemoryProofReplay,
    RedisProofReplay,
    TemporarilyUnavailableError,
    TokenValidator,
    validate_request,
)
from tessera.resource.dpop import request_url
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.unit.resource.conftest import AUDIENCE, Idp

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- the in-memory replay cache ----------------------------------------------------------------


def test_memory_replay_accepts_a_key_once_until_it_expires() -> None:
    clock = Clock()
    replay = MemoryProofReplay(clock=clock)
    assert replay.use_once("a", clock.now + 65)
    assert not replay.use_once("a", clock.now + 65)
    assert replay.use_once("b", clock.now + 65)
    clock.now += 66  # both expired: forgotten, and a proof that old is refused by its iat anyway
    assert replay.use_once("a", clock.now + 65)
    assert len(replay) == 1


def test_memory_replay_is_bounded_and_refuses_rather_than_forgets() -> None:
    clock = Clock()
    replay = MemoryProofReplay(max_entries=3, clock=clock)
    for key in "abc":
        assert replay.use_once(key, clock.now + 10)
    with pytest.raises(TemporarilyUnavailableError) as caught:
        replay.use_once("d", clock.now + 10)
    assert caught.value.status == 503
    assert not replay.use_once("a", clock.now + 10)  # still remembered: no replay slips in
    clock.now += 11
    assert replay.use_once("d", clock.now + 10)
    assert len(replay) == 1


# --- the Redis replay cache: the real Redis ----------------------------------------------------


@pytest.mark.postgresql
def test_redis_replay_accepts_a_key_once_across_clients_and_sets_its_expiry() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    one, other = RedisProofReplay(client, prefix), RedisProofReplay.from_url(REDIS_URL, prefix)
    expires_at = time.time() + 65
    assert one.use_once("dpop:abc", expires_at)
    assert not other.use_once("dpop:abc", expires_at)  # another replica sees it
    assert other.use_once("dpop:def", expires_at)
    ttl = client.ttl(f"{prefix}dpop:abc")
    assert 60 <= ttl <= 67
    client.delete(f"{prefix}dpop:abc", f"{prefix}dpop:def")


def test_an_unreachable_redis_refuses_with_503() -> None:
    replay = RedisProofReplay.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(TemporarilyUnavailableError):
        replay.use_once("dpop:abc", time.time() + 65)


# --- the URL the client used -------------------------------------------------------------------


def scope(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "http",
        "scheme": "http",
        "method": "GET",
        "path": "/a b/c",
        "raw_path": b"/a%20b/c",
        "query_string": b"x=1",
        "headers": [(b"host", b"api.example.test:8443")],
        "server": ("10.0.0.5", 8000),
    }
    base.update(changes)
    return base


def test_request_url_is_the_path_as_sent_on_the_scheme_and_host() -> None:
    assert request_url(scope()) == "http://api.example.test:8443/a%20b/c"
    # uvicorn with --proxy-headers from a trusted proxy sets the client's scheme in the scope.
    assert request_url(scope(scheme="https")) == "https://api.example.test:8443/a%20b/c"
    assert request_url(scope(headers=[])) == "http://10.0.0.5:8000/a%20b/c"
    assert request_url(scope(raw_path=None)) == "http://api.example.test:8443/a%20b/c"


def test_request_url_with_a_public_url_ignores_the_host_header() -> None:
    spoofed = scope(headers=[(b"host", b"evil.example")])
    assert request_url(spoofed, "https://api.example.test/shop") == (
        "https://api.example.test/shop/a%20b/c"
    )


def test_the_policy_refuses_unknown_algorithms_and_a_bad_public_url() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        DPoPPolicy(algorithms=("HS256",))
    with pytest.raises(ValueError):
        DPoPPolicy(public_url="ftp://api.example.test")
    assert DPoPPolicy(public_url="https://api.example.test/").public_url == (
        "https://api.example.test"
    )


# --- without an adapter ------------------------------------------------------------------------


def test_validate_refuses_a_bound_token_and_validate_request_takes_it_with_its_proof(
    idp: Idp,
) -> None:
    validator = TokenValidator(idp.issuer, AUDIENCE)
    key = new_key()
    token = idp.token(cnf={"jkt": thumbprint(key)})
    url = "https://api.example.test/orders?page=2"
    with pytest.raises(InvalidTokenError) as caught:
        validator.validate(token)  # a bearer use of a bound token (RFC 9449 §7.2)
    assert caught.value.www_authenticate().startswith('DPoP realm="api", error="invalid_token"')

    def request(proof: str, scheme: str = "DPoP", scopes: tuple[str, ...] = ()) -> AccessToken:
        return validate_request(
            validator,
            authorization=[f"{scheme} {token}"],
            dpop=[proof],
            method="GET",
            url=url,
            scopes=scopes,
        )

    proof = make_proof(key, "GET", "https://api.example.test/orders", access_token=token)
    assert request(proof).jkt == thumbprint(key)
    with pytest.raises(InvalidDPoPProofError):
        request(proof)  # replayed
    fresh = make_proof(key, "GET", "https://api.example.test/orders", access_token=token)
    with pytest.raises(InsufficientScopeError) as scope_error:
        request(fresh, scopes=("nope",))
    assert scope_error.value.headers()["WWW-Authenticate"].startswith("DPoP ")
    with pytest.raises(InvalidTokenError):
        request(make_proof(key, "GET", url, access_token=token), scheme="Bearer")
    with pytest.raises(InvalidTokenError) as missing:
        validate_request(validator, authorization=[], dpop=[], method="GET", url=url)
    assert missing.value.headers()["WWW-Authenticate"] == (
        'Bearer realm="api", DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'
    )
