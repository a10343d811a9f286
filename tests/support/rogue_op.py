"""A hostile OpenID Provider on loopback, for the negative federation tests.

It is an adversary, not a mock of Tessera: a small, standalone OpenID Provider (Starlette and
uvicorn in the test's process, its own RSA key made with joserfc) that serves a correct
discovery document (OIDC Discovery 1.0 §3, with RFC 9207's
`authorization_response_iss_parameter_supported`), its JWK Set, an authorization endpoint that
sends the browser straight back with `code`, `state` and `iss` (no login page: whoever the
test says), a token endpoint (RFC 6749 §4.1.3) and a userinfo endpoint (OIDC Core §5.3). What
it answers at the token endpoint is an ID token with the defect a test chooses
(`RogueOP.defect`):

- ``forged_signature``: signed with a key that is not in its JWK Set, under the `kid` of the
  published key (OIDC Core §3.1.3.7 step 6);
- ``wrong_aud``: `aud` names another client (step 3);
- ``wrong_nonce``: a `nonce` other than the one of the authorization request (step 11);
- ``wrong_iss``: `iss` is another issuer (step 2);
- ``expired``: `exp` an hour ago (step 9);
- ``alg_none``: an unsecured JWT, `alg: none` (steps 6-8);
- ``hs256``: HMAC-signed with our client secret (sent to it with client_secret_basic), which
  OIDC Core §10.1 allows but Tessera refuses (anyone holding the secret could forge one);
- ``userinfo_sub``: a correct ID token, but userinfo answers for another `sub` (OIDC Core
  §5.3.2: a substituted userinfo response);
- ``no_iss_param``: a correct ID token, but the authorization response has no `iss` although
  discovery says it sends one (RFC 9207 §2.4).

`RogueOP.claims` holds the user's claims (e.g. `email_verified: False`), in the ID token and at
userinfo. Every request it gets is kept in `RogueOP.seen` (`(endpoint, params)`), so a test can
check where a code went.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_plus, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["DEFECTS", "RogueOP", "running_rogue_op"]

DEFECTS = frozenset(
    {
        "forged_signature",
        "wrong_aud",
        "wrong_nonce",
        "wrong_iss",
        "expired",
        "alg_none",
        "hs256",
        "userinfo_sub",
        "no_iss_param",
    }
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _basic_secret(authorization: str) -> str:
    """The client secret of an RFC 6749 §2.3.1 `Authorization: Basic` header ("" without)."""
    if not authorization.startswith("Basic "):
        return ""
    decoded = base64.b64decode(authorization[6:]).decode()
    return unquote_plus(decoded.partition(":")[2])


class RogueOP:
    """The provider at `issuer` (http://127.0.0.1:<port>); `start()` / `stop()`."""

    def __init__(self, *, subject: str | None = None, claims: dict[str, Any] | None = None) -> None:
        # Bound here and handed to uvicorn: no other process can take the port between
        # choosing it and serving on it.
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        kid = secrets.token_hex(8)
        params = {"kid": kid, "use": "sig", "alg": "RS256"}
        self.key = RSAKey.generate_key(2048, parameters=params)
        # Same kid, another key: what a forger who read our JWK Set would sign with.
        self.forger = RSAKey.generate_key(2048, parameters=params)
        self.subject = subject or "rogue-" + secrets.token_hex(6)
        self.claims: dict[str, Any] = dict(claims or {})
        self.defect: str | None = None
        self.seen: list[tuple[str, dict[str, str]]] = []
        # code → the authorization request it answers (client_id, nonce, redirect_uri…).
        self._codes: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}

        routes = [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize),
            Route("/token", self._token, methods=["POST"]),
            Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    # --- what a test sets and reads ------------------------------------------------------------

    def reset(
        self, *, defect: str | None = None, subject: str | None = None, **claims: Any
    ) -> RogueOP:
        """Forget what it saw; answer for `subject` (a new user unless given) with `defect`
        (None: a correct ID token) and `claims`."""
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        self.defect = defect
        self.subject = subject or "rogue-" + secrets.token_hex(6)
        self.claims = dict(claims)
        self.seen.clear()
        return self

    def calls(self, endpoint: str) -> list[dict[str, str]]:
        """The parameters of every request it got at `endpoint` ("authorize", "token"…)."""
        return [params for name, params in self.seen if name == endpoint]

    def issued(self, code: str) -> bool:
        """Whether `code` is one of its authorization codes, not yet redeemed."""
        return code in self._codes

    def authorize_url(self, query: str) -> str:
        """Its authorization endpoint with `query` (e.g. another provider's request, replayed
        here by a mix-up attacker)."""
        return f"{self.issuer}/authorize?{query}"

    def user_claims(self) -> dict[str, Any]:
        return {
            "sub": self.subject,
            "email": f"{self.subject}@rogue.test",
            "email_verified": True,
            "name": "Rogue User",
            "preferred_username": self.subject,
            **self.claims,
        }

    # --- the endpoints ---------------------------------------------------------------------------

    async def _discovery(self, request: Request) -> Response:
        self.seen.append(("discovery", {}))
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                ],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile", "email", "groups"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.seen.append(("jwks", {}))
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.seen.append(("authorize", params))
        code = secrets.token_urlsafe(24)
        self._codes[code] = params
        back = {"code": code, "state": params.get("state", "")}
        if self.defect != "no_iss_param":
            back["iss"] = self.issuer
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(back)}", status_code=303)

    async def _token(self, request: Request) -> Response:
        params = {k: str(v) for k, v in (await request.form()).items()}
        params["authorization"] = request.headers.get("authorization", "")
        self.seen.append(("token", params))
        asked = self._codes.pop(params.get("code", ""), None)
        if asked is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self._tokens[access_token] = self.user_claims()
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self._id_token(asked, _basic_secret(params["authorization"])),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen.append(("userinfo", {"token": token}))
        claims = self._tokens.get(token)
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if self.defect == "userinfo_sub":
            claims = {**claims, "sub": "someone-else", "email": "victim@example.test"}
        return JSONResponse(claims)

    def _id_token(self, asked: dict[str, str], secret: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            **self.user_claims(),
            "iss": self.issuer,
            "aud": asked.get("client_id", ""),
            "iat": now,
            "exp": now + 300,
            "auth_time": self.claims.get("auth_time", now),  # reset(auth_time=…): a session there
        }
        if "nonce" in asked:
            claims["nonce"] = asked["nonce"]
        key = self.key
        match self.defect:
            case "forged_signature":
                key = self.forger
            case "wrong_aud":
                claims["aud"] = "someone-else"
            case "wrong_nonce":
                claims["nonce"] = secrets.token_urlsafe(32)
            case "wrong_iss":
                claims["iss"] = "http://127.0.0.1:9/not-the-issuer"
            case "expired":
                claims["iat"], claims["exp"] = now - 7200, now - 3600
            case "alg_none":
                header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
                return f"{header}.{_b64(json.dumps(claims).encode())}."
            case "hs256":
                hmac_key = OctKey.import_key(secret.encode())
                return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, hmac_key, ["HS256"])
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key)

    # --- running -------------------------------------------------------------------------------

    def start(self) -> RogueOP:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the rogue OpenID provider did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@contextmanager
def running_rogue_op(**kwargs: Any) -> Iterator[RogueOP]:
    """A `RogueOP` started on a free loopback port, stopped on leaving."""
    op = RogueOP(**kwargs).start()
    try:
        yield op
    finally:
        op.stop()
