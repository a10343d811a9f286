"""A fake identity domain behind `httpx.MockTransport`: discovery, token and revocation."""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

ISSUER = "https://id.example.test"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, Any]) -> str:
    return f"{b64({'alg': 'ES256', 'typ': 'at+jwt', 'kid': 'k1'})}.{b64(claims)}.c2ln"


@dataclass
class FakeIdp:
    ttl: int = 3600
    metadata_issuer: str = ISSUER
    iss_supported: bool = True
    refresh_error: str | None = None
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    nonce: str | None = None
    clients: tuple[str, ...] = ("cli",)
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def tokens(self, with_id_token: bool = False) -> dict[str, Any]:
        n = next(self._n)
        body: dict[str, Any] = {
            "access_token": fake_jwt({"sub": "u1", "n": n, "iat": int(time.time())}),
            "token_type": "Bearer",
            "expires_in": self.ttl,
            "refresh_token": f"rt-{n}",
            "scope": "openid",
        }
        if with_id_token:
            body["id_token"] = fake_jwt(
                {
                    "iss": ISSUER,
                    "aud": "cli",
                    "sub": "u1",
                    "nonce": self.nonce,
                    "exp": time.time() + 300,
                    "preferred_username": "alice",
                }
            )
        return body

    def handler(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.requests.append((request.url.path, form, dict(request.headers)))
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.metadata_issuer,
                    "authorization_endpoint": f"{ISSUER}/oauth2/v1/authorize",
                    "token_endpoint": f"{ISSUER}/oauth2/v1/token",
                    "revocation_endpoint": f"{ISSUER}/oauth2/v1/revoke",
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": self.iss_supported,
                },
            )
        if path == "/oauth2/v1/token":
            if form.get("grant_type") == "refresh_token" and self.refresh_error:
                return httpx.Response(400, json={"error": self.refresh_error})
            return httpx.Response(
                200, json=self.tokens(form.get("grant_type") == "authorization_code")
            )
        if path == "/oauth2/v1/authorize":  # the login page, or the error page (RFC 6749 §4.1.2.1)
            if request.url.params.get("client_id") in self.clients:
                return httpx.Response(200, text="<form>sign in</form>")
            page = '<h1 class="title">Invalid request</h1><p class="message">unknown client</p>'
            return httpx.Response(400, text=page)
        if path == "/oauth2/v1/revoke":
            self.revoked.append(form["token"])
            return httpx.Response(200)
        return httpx.Response(404)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def calls(self, path: str) -> list[dict[str, str]]:
        return [form for p, form, _ in self.requests if p == path]
