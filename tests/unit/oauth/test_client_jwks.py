"""An app's keys for `private_key_jwt` (RFC 7591 §2 `jwks` / `jwks_uri`, RFC 7517 §5): fetched
from a real HTTP server on 127.0.0.1 with a timeout and a size limit, no redirects, https only
except loopback in development, cached, refetched at most once per interval; public keys only."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tessera.oauth.client_jwks import JwksFetcher, JwksUnavailable, check_jwks_uri, parse_jwks


@dataclass
class JwksServer:
    """Serves `body` at /jwks (changeable between requests), a redirect at /redirect, and a
    body of `big` bytes without Content-Length at /big; counts requests per path."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    declared_length: int | None = None
    delay: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str = "/jwks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def publish(self, *keys: Any) -> None:
        with self.lock:
            self.body = json.dumps({"keys": [key.as_dict(private=False) for key in keys]}).encode()


def _handler(state: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            with state.lock:
                state.hits[self.path] += 1
                body, status, declared = state.body, state.status, state.declared_length
            time.sleep(state.delay)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", state.url("/jwks"))
                self.end_headers()
                return
            if self.path == "/big":  # HTTP/1.0, no length: the client counts as it reads
                self.send_response(200)
                self.end_headers()
                for _ in range(40):
                    self.wfile.write(b" " * 4096)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(declared or len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[JwksServer]:
    state = JwksServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fetcher(clock: Clock) -> Iterator[JwksFetcher]:
    f = JwksFetcher(allow_insecure_loopback=True, clock=clock)
    try:
        yield f
    finally:
        f.close()


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def kids(key_set: Any) -> set[str | None]:
    return {key.kid for key in key_set.keys}


# --- fetching and caching ----------------------------------------------------------------------


def test_fetches_the_public_keys_and_serves_them_from_the_cache(
    server: JwksServer, fetcher: JwksFetcher
) -> None:
    server.publish(rsa_key("r1"), ECKey.generate_key("P-256", parameters={"kid": "e1"}))
    assert kids(fetcher.keys(server.url())) == {"r1", "e1"}
    assert kids(fetcher.keys(server.url())) == {"r1", "e1"}
    assert server.hits["/jwks"] == 1
    assert not any(key.is_private for key in fetcher.keys(server.url()).keys)


def test_keys_are_fetched_again_after_the_ttl(
    server: JwksServer, fetcher: JwksFetcher, clock: Clock
) -> None:
    server.publish(rsa_key("old"))
    fetcher.keys(server.url())
    server.publish(rsa_key("new"))
    clock.now += fetcher.ttl - 1
    assert kids(fetcher.keys(server.url())) == {"old"}
    clock.now += 2
    assert kids(fetcher.keys(server.url())) == {"new"}
    assert server.hits["/jwks"] == 2


def test_a_refresh_is_rate_limited_per_uri(
    server: JwksServer, fetcher: JwksFetcher, clock: Clock
) -> None:
    server.publish(rsa_key("old"))
    fetcher.keys(server.url())
    server.publish(rsa_key("rotated"))
    clock.now += 5  # an unknown kid just after the fetch: the cached keys, no request
    for _ in range(20):
        assert kids(fetcher.keys(server.url(), refresh=True)) == {"old"}
    assert server.hits["/jwks"] == 1
    clock.now += fetcher.refetch_interval
    assert kids(fetcher.keys(server.url(), refresh=True)) == {"rotated"}
    assert server.hits["/jwks"] == 2


def test_a_failed_fetch_is_not_retried_before_the_interval(
    server: JwksServer, fetcher: JwksFetcher, clock: Clock
) -> None:
    server.status = 500
    for _ in range(5):
        with pytest.raises(JwksUnavailable, match="500"):
            fetcher.keys(server.url())
    assert server.hits["/jwks"] == 1
    server.status = 200
    server.publish(rsa_key("r1"))
    clock.now += fetcher.refetch_interval
    assert kids(fetcher.keys(server.url())) == {"r1"}


def test_concurrent_callers_share_one_fetch(server: JwksServer, fetcher: JwksFetcher) -> None:
    server.publish(rsa_key("r1"))
    server.delay = 0.2
    results: list[set[str | None]] = []
    threads = [
        threading.Thread(target=lambda: results.append(kids(fetcher.keys(server.url()))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"r1"}] * 8
    assert server.hits["/jwks"] == 1


# --- what is refused ---------------------------------------------------------------------------


def test_an_http_uri_other_than_loopback_is_refused_without_a_request() -> None:
    f = JwksFetcher(allow_insecure_loopback=True)
    for uri in ("http://example.com/jwks", "http://10.0.0.1/jwks", "ftp://127.0.0.1/jwks"):
        with pytest.raises(JwksUnavailable, match="https"):
            f.keys(uri)
    f.close()


def test_loopback_http_needs_the_development_switch(server: JwksServer) -> None:
    server.publish(rsa_key("r1"))
    strict = JwksFetcher()
    with pytest.raises(JwksUnavailable, match="https"):
        strict.keys(server.url())
    strict.close()
    assert server.hits["/jwks"] == 0
    for uri in ("http://localhost:1/j", "http://[::1]:1/j", "http://127.0.0.1/j"):
        check_jwks_uri(uri, allow_insecure_loopback=True)
    check_jwks_uri("https://app.example/jwks")
    for bad in ("https://user@app.example/jwks", "https://app.example/jwks#k", "https:///x", ""):
        with pytest.raises(JwksUnavailable):
            check_jwks_uri(bad)


def test_a_redirect_is_not_followed(server: JwksServer, fetcher: JwksFetcher) -> None:
    server.publish(rsa_key("r1"))
    with pytest.raises(JwksUnavailable, match="302"):
        fetcher.keys(server.url("/redirect"))
    assert server.hits["/redirect"] == 1
    assert server.hits["/jwks"] == 0


def test_an_oversize_body_is_refused_while_streaming(
    server: JwksServer, fetcher: JwksFetcher
) -> None:
    with pytest.raises(JwksUnavailable, match="larger than 65536"):
        fetcher.keys(server.url("/big"))


def test_an_oversize_declared_length_is_refused(server: JwksServer, fetcher: JwksFetcher) -> None:
    server.publish(rsa_key("r1"))
    server.declared_length = 10_000_000
    with pytest.raises(JwksUnavailable, match="larger than"):
        fetcher.keys(server.url())


def test_an_error_page_is_refused_by_its_status_unread(
    server: JwksServer, fetcher: JwksFetcher
) -> None:
    # Larger than the limit: were it read, the refusal would be about its size.
    server.status, server.body = 503, b"<html>" + b" " * (fetcher.max_bytes + 1)
    with pytest.raises(JwksUnavailable, match="answered 503"):
        fetcher.keys(server.url())


def test_a_slow_server_times_out(server: JwksServer, clock: Clock) -> None:
    server.publish(rsa_key("r1"))
    server.delay = 1.0
    f = JwksFetcher(allow_insecure_loopback=True, http_timeout=0.3, clock=clock)
    with pytest.raises(JwksUnavailable, match="Timeout"):
        f.keys(server.url())
    f.close()


def test_a_jwks_with_a_private_key_is_refused(server: JwksServer, fetcher: JwksFetcher) -> None:
    key = rsa_key("r1")
    server.body = json.dumps({"keys": [key.as_dict(private=True)]}).encode()
    with pytest.raises(JwksUnavailable, match="private"):
        fetcher.keys(server.url())


def test_a_non_json_body_is_refused(server: JwksServer, fetcher: JwksFetcher) -> None:
    server.body = b"<html>not keys</html>"
    with pytest.raises(JwksUnavailable, match="not JSON"):
        fetcher.keys(server.url())


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"keys": []},
        {"keys": {"kty": "RSA"}},
        {"keys": ["not a key"]},
        {"keys": [{"kty": "RSA", "n": "AQAB"}]},  # no e
        {"keys": [{"kty": "weird", "x": "1"}]},
        {"keys": [{"kty": ["RSA"]}]},
        {"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "key_ops": "verify"}]},
        {"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "kid": 7}]},
    ],
)
def test_anything_but_a_jwk_set_is_refused(value: Any) -> None:
    with pytest.raises(JwksUnavailable):
        parse_jwks(value)


@pytest.mark.parametrize(
    "private",
    [
        RSAKey.generate_key(2048, parameters={"kid": "r"}),
        ECKey.generate_key("P-256", parameters={"kid": "e"}),
        OKPKey.generate_key("Ed25519", parameters={"kid": "o"}),
    ],
)
def test_inline_jwks_with_a_private_key_is_refused(private: Any) -> None:
    assert kids(parse_jwks({"keys": [private.as_dict(private=False)]})) == {private.kid}
    with pytest.raises(JwksUnavailable, match="private"):
        parse_jwks({"keys": [private.as_dict(private=True)]})


def test_a_symmetric_key_is_refused() -> None:
    with pytest.raises(JwksUnavailable, match="symmetric"):
        parse_jwks({"keys": [OctKey.generate_key(256).as_dict(private=True)]})


def test_too_many_keys_are_refused() -> None:
    key = ECKey.generate_key("P-256").as_dict(private=False)
    many = [{**key, "kid": str(i)} for i in range(101)]
    assert len(parse_jwks({"keys": many[:100]}).keys) == 100
    with pytest.raises(JwksUnavailable, match="more than 100"):
        parse_jwks({"keys": many})


def test_a_repeated_kid_is_refused() -> None:
    a, b = rsa_key("same"), rsa_key("same")
    with pytest.raises(JwksUnavailable, match="share a kid"):
        parse_jwks({"keys": [a.as_dict(private=False), b.as_dict(private=False)]})


def test_a_short_rsa_key_is_refused() -> None:
    weak = RSAKey.import_key(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    )
    with pytest.raises(JwksUnavailable, match="2048"):
        parse_jwks({"keys": [weak.as_dict(private=False)]})


def test_encryption_keys_stay_out_of_the_signing_set() -> None:
    sig, enc = rsa_key("sig"), rsa_key("enc")
    value = {
        "keys": [
            sig.as_dict(private=False),
            {**enc.as_dict(private=False), "use": "enc"},
            {**rsa_key("ops").as_dict(private=False), "key_ops": ["encrypt"]},
        ]
    }
    assert kids(parse_jwks(value)) == {"sig"}
    with pytest.raises(JwksUnavailable, match="no key for signatures"):
        parse_jwks({"keys": [{**enc.as_dict(private=False), "use": "enc"}]})


# --- apps that registered themselves: public addresses only (SSRF) ------------------------------


@pytest.mark.parametrize(
    "address",
    ["10.0.0.7", "169.254.169.254", "192.168.1.1", "100.64.0.1", "fd00:ec2::254", "::ffff:10.0.0.1"],
)
def test_a_self_registered_apps_jwks_uri_may_not_resolve_to_an_internal_address(
    address: str,
) -> None:
    """The name resolves to an internal address: refused before any connection."""
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.215.14", address]  # one internal address is enough to refuse

    f = JwksFetcher(resolve=resolve)
    with pytest.raises(JwksUnavailable, match="refused"):
        f.keys("https://keys.example.test/jwks.json", public_only=True)
    assert asked == [("keys.example.test", 443)]


def test_a_literal_internal_address_is_refused_without_resolving() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address needs no resolution")

    f = JwksFetcher(resolve=resolve)
    for uri in ("https://10.1.2.3/jwks", "https://[::1]/jwks", "https://2130706433/jwks"):
        with pytest.raises(JwksUnavailable, match="refused"):
            f.keys(uri, public_only=True)


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    server: JwksServer,
) -> None:
    """DNS rebinding cannot swap the address: we connect to the one we checked (loopback is
    allowed here only because this is a development node)."""
    server.publish(rsa_key("r1"))
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    f = JwksFetcher(allow_insecure_loopback=True, resolve=resolve)
    try:
        uri = f"http://localhost:{server.port}/jwks"  # http: loopback names only
        assert kids(f.keys(uri, public_only=True)) == {"r1"}
    finally:
        f.close()
    assert server.hits["/jwks"] == 1 and asked == ["localhost"]


def test_administrators_apps_may_name_internal_hosts(server: JwksServer) -> None:
    server.publish(rsa_key("r1"))
    f = JwksFetcher(allow_insecure_loopback=True)
    try:
        assert kids(f.keys(server.url(), public_only=False)) == {"r1"}
        # The same URL for a self-registered app on a node that is not a development one:
        strict = JwksFetcher(allow_insecure_loopback=False)
        with pytest.raises(JwksUnavailable):
            strict.keys(server.url(), public_only=True)
    finally:
        f.close()
