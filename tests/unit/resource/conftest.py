"""A real issuer for `tessera.resource` tests: discovery and a JWKS served over HTTP on loopback
by a tiny `http.server` in a thread, with keys (ES256, RS256) generated here with joserfc.

The server counts every request per path, so a test can tell exactly when the validator touched
the network. Tokens are signed here: `Idp.sign` with joserfc for well-formed ones, `forge` by
hand for what joserfc itself refuses to produce (`alg: none`, `crit`, HMAC with a public key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute

from tessera.resource import TokenValidator
from tessera.resource.starlette import BearerBackend, bearer_error_response

AUDIENCE = "https://api.example.test"
DROP = object()  # a claim value meaning "leave this claim out"

Key = ECKey | RSAKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def forge(
    header: Any,
    payload: Any,
    key: Key | None = None,
    alg: str | None = None,
    *,
    secret: bytes | None = None,
) -> str:
    """A compact JWS built by hand: `header`/`payload` are dicts (JSON-encoded) or raw bytes;
    signed with `key` (asymmetric), with `secret` (HMAC, for `alg` HS*), or unsigned."""
    signing_input = f"{b64url(_json(header))}.{b64url(_json(payload))}"
    if secret is not None:
        assert alg is not None
        # joserfc rightly refuses a public key as an HMAC secret, so the attacker uses hmac.
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        signature = hmac.new(secret, signing_input.encode(), digest).digest()
    elif key is not None:
        assert alg is not None
        signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    else:
        signature = b""
    return f"{signing_input}.{b64url(signature)}"


class Idp:
    """The state behind the loopback server; tests mutate it, `reset()` restores it."""

    def __init__(self) -> None:
        self.ec = ECKey.generate_key("P-256", {"kid": "ec-1", "alg": "ES256"})
        self.rsa = RSAKey.generate_key(2048, {"kid": "rsa-1", "alg": "RS256"})
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.keys: list[Key] = [self.ec, self.rsa]
            self.raw_jwks_entries: list[Any] = []  # appended verbatim to the JWKS
            self.metadata_issuer: str | None = None  # None: the right one
            self.jwks_status = 200
            self.hits: Counter[str] = Counter()

    @property
    def issuer(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for key in self.keys:
            public = key.as_dict(private=False)
            public.update(
                kid=key.kid, alg="ES256" if isinstance(key, ECKey) else "RS256", use="sig"
            )
            keys.append(public)
        return {"keys": keys + list(self.raw_jwks_entries)}

    def metadata(self) -> dict[str, Any]:
        issuer = self.metadata_issuer if self.metadata_issuer is not None else self.issuer
        return {"issuer": issuer, "jwks_uri": self.jwks_uri}

    # --- tokens --------------------------------------------------------------------------------

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-42",
            "sub_type": "user",
            "aud": AUDIENCE,
            "client_id": "app-7",
            "scope": "orders:read orders:write",
            "exp": now + 300,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "user_displayname": "Alice Example",
            "sid": "grant-9",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def sign(
        self, claims: dict[str, Any] | None = None, key: Key | None = None, **header: Any
    ) -> str:
        """A well-formed access token signed with joserfc (ES256 by default)."""
        key = key or self.ec
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        protected = {"alg": alg, "kid": key.kid, "typ": "at+jwt", **header}
        protected = {k: v for k, v in protected.items() if v is not DROP}
        return jwt.encode(protected, claims or self.claims(), key, algorithms=[alg])

    def token(self, **claim_changes: Any) -> str:
        return self.sign(self.claims(**claim_changes))


def _serve(idp: Idp) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            with idp.lock:
                idp.hits[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    status, body = 200, idp.metadata()
                elif self.path == "/jwks":
                    status, body = idp.jwks_status, idp.jwks()
                else:
                    status, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def served_idp() -> Iterator[Idp]:
    """A new loopback issuer, serving its discovery document and JWKS while in use."""
    idp = Idp()
    idp.server = _serve(idp)
    try:
        yield idp
    finally:
        idp.server.shutdown()
        idp.server.server_close()


@pytest.fixture(scope="session")
def _idp_server() -> Iterator[Idp]:
    with served_idp() as idp:
        yield idp


@pytest.fixture
def idp(_idp_server: Idp) -> Idp:
    """The loopback issuer, with its default keys and zeroed request counters."""
    _idp_server.reset()
    return _idp_server


@pytest.fixture
def validator(idp: Idp) -> TokenValidator:
    """A fresh validator (empty JWKS and token caches) for the loopback issuer."""
    return TokenValidator(idp.issuer, AUDIENCE)


def starlette_api(validator: TokenValidator, routes: Sequence[BaseRoute]) -> Starlette:
    """A Starlette app whose `routes` sit behind `tessera.resource`'s `BearerBackend` (its
    refusals rendered by `bearer_error_response`), the way an API wires it."""
    return Starlette(
        routes=list(routes),
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=BearerBackend(validator),
                on_error=bearer_error_response,
            )
        ],
    )
