"""Outbound calls of `invoke` steps: the HTTP connection and its authentication.

Authentication is none, Basic (RFC 7617), or an OAuth 2.0 access token from any issuer's token
endpoint (client_secret_basic): the app's own by the client credentials grant (RFC 6749 §4.4),
or one on behalf of the run's caller by token exchange (RFC 8693: the caller's access token,
held in memory for the run only, for a token for the connection's audience, where the caller
stays `sub` and the app is `act`). Tokens are cached until shortly before they expire (an
exchanged one per caller token and audience), so a busy integration does not ask per call. A
401 from the connection drops the cached token and retries once with a new one (it may have been
revoked). Redirects are not followed (a 3xx fails the step: its target would escape the egress
policy's deploy-time check), and an answer is read up to `MAX_RESPONSE_BYTES`. Every connection
passes the egress policy (`tessera.integration.egress`), the token endpoint's too.

With `dpop: true` the token is DPoP-bound (RFC 9449): the cache holds a P-256 key per
credentials, sends a proof of it to the token endpoint, wants `token_type: DPoP` back, and calls
the connection with `Authorization: DPoP` and a proof with `ath`. A server that asks for its
nonce (`use_dpop_nonce`, §8 and §9) gets one retry with it; the last nonce of each origin is
kept for the next proofs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tessera.integration.document import (
    BasicAuth,
    ClientCredentialsAuth,
    InvokeStep,
    TokenExchangeAuth,
)
from tessera.integration.dpop import NonceMemory, ProofSigner, nonce_asked
from tessera.integration.egress import EgressRefused

__all__ = ["MAX_RESPONSE_BYTES", "Connections", "InvokeError", "TokenCache"]

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
_EXPIRY_MARGIN = 30.0  # seconds before `expires_in` runs out that we stop using a token
_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3
TokenAuth = ClientCredentialsAuth | TokenExchangeAuth


class InvokeError(Exception):
    """The connection failed: answer 502. `detail` is for the caller, `internal` for the
    run record (it names the URL, which callers need not learn)."""

    def __init__(self, detail: str, internal: str) -> None:
        super().__init__(internal)
        self.detail = detail
        self.internal = internal


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    good_until: float
    signer: ProofSigner | None = None  # the key a DPoP-bound token is bound to

    def headers(self, method: str, url: str, nonces: NonceMemory) -> dict[str, str]:
        """`Authorization` (and the `DPoP` proof, RFC 9449 §7.1) of a call with this token."""
        if self.signer is None:
            return {"Authorization": f"Bearer {self.value}"}
        proof = self.signer.proof(method, url, access_token=self.value, nonce=nonces.get(url))
        return {"Authorization": f"DPoP {self.value}", "DPoP": proof}


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    content_type: str
    content: bytes
    headers: httpx.Headers


class TokenCache:
    """Tokens per (token URL, client, secret, scope, binding), and for token exchange per
    caller token (its hash) and audience too."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        nonces: NonceMemory | None = None,
    ) -> None:
        self._http = http
        self._clock = clock
        self.nonces = nonces or NonceMemory()
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._signers: dict[tuple[str, ...], ProofSigner] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    async def token(self, auth: TokenAuth, timeout: float, caller: str | None = None) -> _Token:
        """`caller`: the run's caller token, which token exchange presents (RFC 8693 §2.1)."""
        key = _cache_key(auth, caller)
        found = self._tokens.get(key)
        if found is not None and found.good_until > self._clock():
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one token request per key, not one per concurrent run
            found = self._tokens.get(key)
            if found is not None and found.good_until > self._clock():
                return found
            signer = self._signer(key) if auth.dpop else None
            fresh = await self._fetch(auth, _form(auth, caller), timeout, signer)
            if len(self._tokens) > 1000:
                self._tokens.clear()
            self._tokens[key] = fresh
            return fresh

    def forget(self, auth: TokenAuth, caller: str | None = None) -> None:
        self._tokens.pop(_cache_key(auth, caller), None)

    def _signer(self, key: tuple[str, ...]) -> ProofSigner:
        """The credentials' DPoP key, made on first use and kept (bounded like the tokens)."""
        found = self._signers.get(key)
        if found is None:
            if len(self._signers) > 1000:
                self._signers.clear()
            found = self._signers[key] = ProofSigner()
        return found

    async def _post(
        self, auth: TokenAuth, form: dict[str, str], timeout: float, signer: ProofSigner | None
    ) -> httpx.Response:
        """The token request; with DPoP a proof (RFC 9449 §5), once more with the token
        endpoint's nonce when it asks for one (§8)."""
        url = auth.token_url
        for attempt in (1, 2):
            headers = {"Accept": "application/json"}
            if signer is not None:
                headers["DPoP"] = signer.proof("POST", url, nonce=self.nonces.get(url))
            response = await self._http.post(
                url,
                data=form,
                auth=httpx.BasicAuth(auth.client_id, auth.client_secret.get_secret_value()),
                headers=headers,
                timeout=timeout,
            )
            if signer is None:
                return response
            self.nonces.remember(url, response.headers)
            if attempt == 2 or not nonce_asked(
                response.status_code, response.headers, response.content
            ):
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(
        self, auth: TokenAuth, form: dict[str, str], timeout: float, signer: ProofSigner | None
    ) -> _Token:
        where = _where("POST", auth.token_url)
        try:
            response = await self._post(auth, form, timeout, signer)
        except httpx.HTTPError as exc:
            detail = f"cannot get an access token: the token endpoint {_failure(exc, timeout)}"
            raise InvokeError(detail, f"{detail} ({where})") from None
        if response.status_code != 200:
            detail = f"the token endpoint answered HTTP {response.status_code}"
            raise InvokeError(detail, f"{detail} ({where})")
        try:
            body = response.json()
            value = body["access_token"]
            kind = str(body.get("token_type", "bearer")).lower()
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError, AttributeError):
            detail = "the token endpoint's answer has no access token"
            raise InvokeError(detail, f"{detail} ({where})") from None
        wanted = "Bearer" if signer is None else "DPoP"  # RFC 9449 §5: DPoP when bound
        if not isinstance(value, str) or not value or kind != wanted.lower():
            detail = f"the token endpoint did not issue a {wanted} token"
            raise InvokeError(detail, f"{detail} ({where})")
        margin = min(_EXPIRY_MARGIN, lifetime / 2)
        return _Token(value, self._clock() + lifetime - margin, signer)


class Connections:
    """Runs the HTTP call of an `invoke` step and answers its output."""

    def __init__(self, http: httpx.AsyncClient, tokens: TokenCache | None = None) -> None:
        self._http = http
        self.tokens = tokens or TokenCache(http)

    async def invoke(self, step: InvokeStep, url: str, body: Any, caller: str | None = None) -> Any:
        """The connection's JSON answer (its text when not JSON, None when empty). `caller`:
        the run's caller token, for an `oauth_token_exchange` step."""
        headers = {"Accept": "application/json", **step.headers}
        content: bytes | None = None
        if body is not None and step.method != "GET":
            content = json.dumps(body, separators=(",", ":")).encode("utf-8")
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        response = await self._send(step, url, headers, content, caller)
        if isinstance(step.auth, TokenAuth) and response.status_code == 401:
            # Revoked or expired early: one retry with a new token.
            self.tokens.forget(step.auth, caller)
            response = await self._send(step, url, headers, content, caller)
        where = _where(step.method, url)
        if not 200 <= response.status_code < 300:
            detail = f"the connection answered HTTP {response.status_code}"
            raise InvokeError(detail, f"{detail} ({where})")
        return _output(response, where)

    async def _send(
        self,
        step: InvokeStep,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        caller: str | None,
    ) -> _Answer:
        auth: httpx.Auth | None = None
        if isinstance(step.auth, BasicAuth):
            auth = httpx.BasicAuth(step.auth.username, step.auth.password.get_secret_value())
        elif isinstance(step.auth, TokenAuth):
            token = await self.tokens.token(step.auth, step.timeout_seconds, caller)
            nonces = self.tokens.nonces
            answer = await self._transmit(
                step, url, {**headers, **token.headers(step.method, url, nonces)}, content, None
            )
            if token.signer is None:
                return answer
            nonces.remember(url, answer.headers)
            if not nonce_asked(answer.status_code, answer.headers, answer.content):
                return answer
            # RFC 9449 §9: the resource wants its nonce in the proof; once more with it.
            headers = {**headers, **token.headers(step.method, url, nonces)}
        return await self._transmit(step, url, headers, content, auth)

    async def _transmit(
        self,
        step: InvokeStep,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        auth: httpx.Auth | None,
    ) -> _Answer:
        request = self._http.build_request(
            step.method, url, headers=headers, content=content, timeout=step.timeout_seconds
        )
        try:
            response = await self._http.send(request, auth=auth, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        detail = f"the connection's answer exceeds {MAX_RESPONSE_BYTES} bytes"
                        raise InvokeError(detail, f"{detail} ({_where(step.method, url)})")
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            detail = f"the connection {_failure(exc, step.timeout_seconds)}"
            raise InvokeError(detail, f"{detail} ({_where(step.method, url)})") from None
        return _Answer(
            response.status_code,
            response.headers.get("content-type", ""),
            b"".join(chunks),
            response.headers,
        )


def _output(answer: _Answer, where: str) -> Any:
    if not answer.content:
        return None
    media = answer.content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(answer.content)
        except (ValueError, RecursionError):
            detail = "the connection answered malformed JSON"
            raise InvokeError(detail, f"{detail} ({where})") from None
    return answer.content.decode("utf-8", errors="replace")


def _failure(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc.__cause__, EgressRefused):
        return "is refused by the egress policy (TESSERA_INTEGRATION_EGRESS_ALLOW)"
    if isinstance(exc, httpx.TimeoutException):
        return f"did not answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return "could not be reached"
    return f"failed ({type(exc).__name__})"


def _where(method: str, url: str) -> str:
    """Method and URL without query or userinfo, for the run record."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{method} {parts.scheme}://{host}{port}{parts.path}"


def _form(auth: TokenAuth, caller: str | None) -> dict[str, str]:
    """The token request's parameters: RFC 6749 §4.4.2, or RFC 8693 §2.1 for the caller."""
    if isinstance(auth, ClientCredentialsAuth):
        form = {"grant_type": "client_credentials"}
    elif caller is None:  # a run always has a caller's token; never exchange nothing
        raise InvokeError("no caller token to exchange", "no caller token to exchange")
    else:
        form = {
            "grant_type": _TOKEN_EXCHANGE,
            "subject_token": caller,
            "subject_token_type": _ACCESS_TOKEN_TYPE,
            "audience": auth.audience,
        }
    if auth.scope:
        form["scope"] = auth.scope
    return form


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _cache_key(auth: TokenAuth, caller: str | None) -> tuple[str, ...]:
    # A DPoP-bound token and a bearer one of the same credentials are different tokens; an
    # exchanged token is the caller's (the cache keeps the hash of the caller's token only).
    key: tuple[str, ...] = (
        auth.type,
        auth.token_url,
        auth.client_id,
        _sha256(auth.client_secret.get_secret_value()),
        auth.scope or "",
        "dpop" if auth.dpop else "bearer",
    )
    if isinstance(auth, TokenExchangeAuth):
        key += (auth.audience, _sha256(caller or ""))
    return key
