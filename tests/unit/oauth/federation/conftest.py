"""Federation (docs/federation.md) on the memory store and an injected clock, against a small
OpenID provider served on 127.0.0.1 by the standard library's HTTP server: a real upstream that
the tests configure (its discovery document, keys, token and userinfo answers) and whose
requests they read back. It is the other party, not a stand-in for our code."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from joserfc import jws
from joserfc.jwk import Key, RSAKey

from tessera.domain.model import UpstreamProvider
from tessera.oauth.client_jwks import JwksFetcher
from tessera.oauth.federation.metadata import UpstreamClient
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CLIENT_ID = "tessera-downstream"
REDIRECT_URI = "http://127.0.0.1:8000/oauth2/v1/federation/corp/callback"
# Generated once: RSA key generation is slow.
UPSTREAM_KEY = RSAKey.generate_key(2048, parameters={"kid": "up-1"}, private=True)
ROGUE_KEY = RSAKey.generate_key(2048, parameters={"kid": "up-1"}, private=True)  # same kid


def make_provider(issuer: str = "https://op.example", **changes: Any) -> UpstreamProvider:
    provider = UpstreamProvider(
        id="up_corp",
        name="corp",
        display_name="Corp SSO",
        issuer=issuer,
        client_id=CLIENT_ID,
        auth_method="client_secret_basic",
        created_at=T0,
        updated_at=T0,
        groups_claim="groups",
    )
    return replace(provider, **changes)


def sign(
    claims: dict[str, Any],
    key: Key = UPSTREAM_KEY,
    alg: str = "RS256",
    header: dict[str, Any] | None = None,
) -> str:
    head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    head = {k: v for k, v in head.items() if v is not None}
    payload = json.dumps({k: v for k, v in claims.items() if v is not None}).encode()
    return jws.serialize_compact(head, payload, key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def id_claims(issuer: str, nonce: str, now: datetime = T0, **changes: Any) -> dict[str, Any]:
    at = int(now.timestamp())
    claims = {
        "iss": issuer,
        "sub": "upstream-user-1",
        "aud": CLIENT_ID,
        "exp": at + 300,
        "iat": at,
        "nonce": nonce,
        "email": "ada@corp.example",
        "email_verified": True,
        "preferred_username": "ada",
        "name": "Ada Lovelace",
        "groups": ["Engineers"],
        **changes,
    }
    return claims


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class UpstreamOP:
    """The loopback provider: what it answers is set by the test; what it was asked is kept."""

    base: str = ""
    discovery: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    token: Answer | Callable[[dict[str, str]], Answer] = field(default_factory=Answer)
    userinfo: Answer = field(default_factory=Answer)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def hits(self, path: str) -> int:
        return sum(1 for _, p, _, _ in self.requests if p == path)

    def last(self, path: str) -> tuple[dict[str, str], dict[str, str]]:
        found = [(h, f) for _, p, h, f in self.requests if p == path]
        return found[-1]

    def answer(self, method: str, path: str, headers: dict[str, str], form: dict[str, str]) -> Answer:
        self.requests.append((method, path, headers, form))
        if path == "/.well-known/openid-configuration":
            return Answer(body=self.discovery)
        if path == "/jwks":
            return Answer(body=self.jwks)
        if path == "/token" and method == "POST":
            return self.token(form) if callable(self.token) else self.token
        if path == "/userinfo":
            return self.userinfo
        if path.startswith("/moved/"):  # a redirect to the real document
            return Answer(302, {}, headers={"Location": self.base + path.removeprefix("/moved")})
        return Answer(404, {"error": "not_found"})


def _handler(op: UpstreamOP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            form = dict(parse_qsl(body, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            found = op.answer(method, self.path.split("?")[0], headers, form)
            raw = found.body if isinstance(found.body, bytes) else json.dumps(found.body).encode()
            self.send_response(found.status)
            self.send_header("Content-Type", found.content_type)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in found.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

    return Handler


@pytest.fixture
def op() -> Iterator[UpstreamOP]:
    upstream = UpstreamOP()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    upstream.base = f"http://127.0.0.1:{server.server_address[1]}"
    upstream.discovery = {
        "issuer": upstream.base,
        "authorization_endpoint": f"{upstream.base}/authorize",
        "token_endpoint": f"{upstream.base}/token",
        "jwks_uri": f"{upstream.base}/jwks",
        "userinfo_endpoint": f"{upstream.base}/userinfo",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }
    upstream.jwks = {"keys": [UPSTREAM_KEY.as_dict(private=False)]}
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield upstream
    server.shutdown()
    server.server_close()


@dataclass
class Ticks:
    """The monotonic clock of the caches (discovery, keys), moved by the test."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def client(ticks: Ticks) -> Iterator[UpstreamClient]:
    fetcher = JwksFetcher(allow_insecure_loopback=True, clock=ticks)
    upstream = UpstreamClient(fetcher, http_timeout=3.0, clock=ticks)
    yield upstream
    upstream.close()
    fetcher.close()


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    memory.ensure_domain("Default", T0)
    yield memory
    memory.close()
