"""The browser login of a native app: authorization code flow with PKCE over a loopback
redirect (RFC 8252), for a public app or, given its secret, a confidential one.

    session = login("https://id.example.com", "my-cli", scopes=["https://api…:443urn:…:all"])

1. discover the issuer's endpoints (RFC 8414; the metadata must name the same issuer);
2. listen on 127.0.0.1:<ephemeral port> (RFC 8252 §7.3, §8.3);
3. fetch the authorization URL once ourselves, so that an unknown client or an unregistered
   redirect URI (an error page, never a redirect: RFC 6749 §4.1.2.1) fails at once;
   then open the browser (or a caller's opener) at it with `state`, a `nonce` and an S256
   `code_challenge` (RFC 7636, RFC 9700 §2.1.1);
4. wait for the redirect: `state` and `iss` (RFC 9207) are checked before the code is used;
5. exchange the code with the verifier (and the secret, for a confidential app);
6. check the ID token's `iss`, `aud` and `nonce` (OIDC Core §3.1.3.7; it came straight from the
   token endpoint over TLS, so its signature need not be checked), and cache the tokens.
"""

from __future__ import annotations

import secrets
import time
import webbrowser
from collections.abc import Callable, Iterable
from urllib.parse import urlencode, urlsplit

import httpx

from tessera.client.cache import CacheEntry, TokenCache, check_profile
from tessera.client.discovery import ServerMetadata, discover
from tessera.client.errors import LoginError
from tessera.client.loopback import LoopbackListener
from tessera.client.pkce import Pkce
from tessera.client.preflight import check_authorization_request
from tessera.client.session import Session
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet, unverified_jwt

__all__ = ["DEFAULT_SCOPES", "authorization_url", "login", "requested_scopes"]

DEFAULT_SCOPES = ("openid",)
_LEEWAY = 120.0

Opener = Callable[[str], object]


def requested_scopes(scopes: Iterable[str]) -> list[str]:
    """`openid` (to know who signed in) plus the caller's scopes, each once, in order."""
    out: list[str] = []
    for scope in (*DEFAULT_SCOPES, *scopes):
        for item in scope.split():
            if item not in out:
                out.append(item)
    return out


def authorization_url(
    metadata: ServerMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    pkce: Pkce,
    nonce: str | None = None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
    }
    if nonce is not None:
        params["nonce"] = nonce
    base = metadata.authorization_endpoint
    return base + ("&" if urlsplit(base).query else "?") + urlencode(params)


def _check_id_token(id_token: str, issuer: str, client_id: str, nonce: str, now: float) -> None:
    try:
        _, claims = unverified_jwt(id_token)
    except ValueError as exc:
        raise LoginError(f"the ID token is malformed ({exc})") from None
    if claims.get("iss") != issuer:
        raise LoginError("the ID token names another issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise LoginError("the ID token is for another client")
    if claims.get("nonce") != nonce:
        raise LoginError("the ID token's nonce does not match this login (replay?)")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires + _LEEWAY < now:
        raise LoginError("the ID token has expired (is the clock right?)")


def login(
    issuer: str,
    client_id: str,
    *,
    client_secret: str | None = None,
    scopes: Iterable[str] = (),
    profile: str = "default",
    opener: Opener | None = None,
    timeout: float = 300.0,
    cache: TokenCache | None = None,
    http: httpx.Client | None = None,
    callback_path: str = "/callback",
    on_waiting: Callable[[str], None] | None = None,
) -> Session:
    """Sign in through the browser and cache the tokens; returns the new `Session`.

    `opener(url)` shows the authorization URL to the user (default: `webbrowser.open`);
    `on_waiting(url)` is called once the browser was asked to open it.
    """
    check_profile(profile)
    cache = cache or TokenCache()
    metadata = discover(issuer, http)
    pkce = Pkce.new()
    state = secrets.token_urlsafe(32)
    wanted = requested_scopes(scopes)
    nonce = secrets.token_urlsafe(32) if "openid" in wanted else None
    with LoopbackListener(
        expected_state=state,
        expected_issuer=metadata.issuer,
        require_iss=metadata.iss_parameter_supported,
        path=callback_path,
    ) as listener:
        redirect_uri = listener.redirect_uri
        url = authorization_url(
            metadata,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=wanted,
            state=state,
            pkce=pkce,
            nonce=nonce,
        )
        check_authorization_request(http, url, client_id=client_id, redirect_uri=redirect_uri)
        (opener or webbrowser.open)(url)
        if on_waiting is not None:
            on_waiting(url)
        response = listener.wait(timeout)
    endpoints = Endpoints(
        issuer=metadata.issuer,
        token_endpoint=metadata.token_endpoint,
        revocation_endpoint=metadata.revocation_endpoint,
        userinfo_endpoint=metadata.userinfo_endpoint,
    )
    oauth = OAuthClient(endpoints, client_id, client_secret, http=http)
    tokens: TokenSet = oauth.exchange_code(response.code, redirect_uri, pkce.verifier)
    now = time.time()
    if nonce is not None and tokens.id_token is not None:
        _check_id_token(tokens.id_token, metadata.issuer, client_id, nonce, now)
    entry = CacheEntry(
        profile=profile,
        client_id=client_id,
        endpoints=endpoints,
        tokens=tokens,
        scopes=tuple(wanted),
        client_secret=client_secret,
        logged_in_at=now,
    )
    cache.save(entry)
    return Session(entry, cache, http=http)
