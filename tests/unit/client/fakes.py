"""A fake identity domain behind `httpx.MockTransport`: discovery, token, revocation and (when
`par`) pushed authorization requests."""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    # RFC 9126: advertise the PAR endpoint, require it, or answer it with (status, body).
    par: bool = False
    require_par: bool = False
    par_answer: tuple[int, dict[str, Any]] | None = None
    pushed: dict[str, dict[str, str]] = field(default_factory=dict)
    # RFC 8414 token_endpoint_auth_signing_alg_values_supported (None: not published).
    auth_algs: list[str] | None = None
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
            return httpx.Response(200, json=self.metadata())
        if path == "/oauth2/v1/par":
            if self.par_answer is not None:
                return httpx.Response(self.par_answer[0], json=self.par_answer[1])
            uri = f"urn:ietf:params:oauth:request_uri:{len(self.pushed) + 1}"
            self.pushed[uri] = form
            return httpx.Response(201, json={"request_uri": uri, "expires_in": 60})
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

    def metadata(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "issuer": self.metadata_issuer,
            "authorization_endpoint": f"{ISSUER}/oauth2/v1/authorize",
            "token_endpoint": f"{ISSUER}/oauth2/v1/token",
            "revocation_endpoint": f"{ISSUER}/oauth2/v1/revoke",
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": self.iss_supported,
        }
        if self.par:
            doc["pushed_authorization_request_endpoint"] = f"{ISSUER}/oauth2/v1/par"
            doc["require_pushed_authorization_requests"] = self.require_par
        if self.auth_algs is not None:
            doc["token_endpoint_auth_signing_alg_values_supported"] = self.auth_algs
        return doc

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def calls(self, path: str) -> list[dict[str, str]]:
        return [form for p, form, _ in self.requests if p == path]

    def headers(self, path: str) -> list[dict[str, str]]:
        return [headers for p, _, headers in self.requests if p == path]


class UserAgent:
    """An opener that plays a user who signs in: it goes straight back to the callback with a
    code. For a pushed request (RFC 9126) the parameters are the ones the fake received."""

    def __init__(self, idp: FakeIdp) -> None:
        self.idp = idp
        self.urls: list[str] = []
        self.seen: dict[str, str] = {}

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.seen = dict(self.idp.pushed[query["request_uri"]]) if "request_uri" in query else query
        self.idp.nonce = self.seen.get("nonce")
        params = {"code": "the-code", "state": self.seen["state"], "iss": ISSUER}
        httpx.get(self.seen["redirect_uri"], params=params, timeout=5)
