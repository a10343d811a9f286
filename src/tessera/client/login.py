"""The browser login of a native app: authorization code flow with PKCE over a loopback
redirect (RFC 8252), for a public app or a confidential one (given its secret, or its private
key for `private_key_jwt`, RFC 7523 §2.2).

    session = login("https://id.example.com", "my-cli", scopes=["https://api…:443urn:…:all"])
    session = login(ISSUER, "my-app", private_key="app-key.pem")        # private_key_jwt

1. discover the issuer's endpoints (RFC 8414; the metadata must name the same issuer);
2. listen on 127.0.0.1:<ephemeral port> (RFC 8252 §7.3, §8.3);
3. when the server advertises a pushed authorization request endpoint (RFC 9126), push the
   request there, authenticated as the app, and send the browser with the `request_uri` only
   (`par=False`: never; refused at once when the server requires PAR); otherwise fetch the
   authorization URL once ourselves, so that an unknown client or an unregistered redirect URI
   (an error page, never a redirect: RFC 6749 §4.1.2.1) fails at once;
   then open the browser (or a caller's opener) at it with `state`, a `nonce` and an S256
   `code_challenge` (RFC 7636, RFC 9700 §2.1.1);
4. wait for the redirect: `state` and `iss` (RFC 9207) are checked before the code is used;
5. exchange the code with the verifier (and the app's secret or a new client assertion);
6. check the ID token's `iss`, `aud` and `nonce` (OIDC Core §3.1.3.7; it came straight from the
   token endpoint over TLS, so its signature need not be checked), and cache the tokens (and,
   for `private_key_jwt`, the key file's path, never the key).

DPoP (RFC 9449): when the server lists ES256 in `dpop_signing_alg_values_supported` (and
`dpop=False` was not asked), the login makes a new P-256 key, names its thumbprint in the
authorization request (`dpop_jkt`, §10, pushed or not), signs the code exchange with it (§5)
and caches it with the tokens, which the server binds to it (`token_type: DPoP`).

`acr_values` and `max_age` (OIDC Core §3.1.2.1, RFC 9470 §4) ask the identity domain for a
level of sign-in and a sign-in at most that many seconds old. `browser_step_up()` runs the same
flow again for a cached login when an API asks for it (RFC 9470 §3), with what the API named.
"""

from __future__ import annotations

import secrets
import time
import warnings
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tessera.client.cache import CacheEntry, TokenCache, check_profile
from tessera.client.discovery import ServerMetadata, discover
from tessera.client.dpop import DPoPKey, DPoPSigner, server_supports_dpop
from tessera.client.errors import KeyFileWarning, LoginError
from tessera.client.loopback import LoopbackListener
from tessera.client.par import pushed_authorization_url, with_query
from tessera.client.pkce import Pkce
from tessera.client.preflight import check_authorization_request
from tessera.client.private_key_jwt import ClientKey, KeyFile, key_file_warning, load_private_key
from tessera.client.session import Session, StepUpHandler
from tessera.client.stepup import StepUp
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet, unverified_jwt

__all__ = [
    "DEFAULT_SCOPES",
    "SignIn",
    "authorization_params",
    "authorization_url",
    "browser_step_up",
    "check_id_token",
    "login",
    "requested_scopes",
]

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


def authorization_params(
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    pkce: Pkce,
    nonce: str | None = None,
    acr_values: Iterable[str] = (),
    max_age: int | None = None,
    dpop_jkt: str | None = None,
) -> dict[str, str]:
    """The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1), for the
    query of the authorization URL or the body of a pushed request (RFC 9126 §2.1); `dpop_jkt`
    binds the code to the DPoP key that will redeem it (RFC 9449 §10)."""
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
    acr = " ".join(dict.fromkeys(v for value in acr_values for v in value.split()))
    if acr:
        params["acr_values"] = acr  # OIDC Core §3.1.2.1, in order of preference
    if max_age is not None:
        if max_age < 0:
            raise LoginError(f"max_age must be a number of seconds >= 0, not {max_age}")
        params["max_age"] = str(int(max_age))
    if dpop_jkt is not None:
        params["dpop_jkt"] = dpop_jkt
    return params


def authorization_url(
    metadata: ServerMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    pkce: Pkce,
    nonce: str | None = None,
    acr_values: Iterable[str] = (),
    max_age: int | None = None,
    dpop_jkt: str | None = None,
) -> str:
    """The plain authorization URL (every parameter in its query)."""
    params = authorization_params(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        pkce=pkce,
        nonce=nonce,
        acr_values=acr_values,
        max_age=max_age,
        dpop_jkt=dpop_jkt,
    )
    return with_query(metadata.authorization_endpoint, params)


def check_id_token(
    id_token: str, issuer: str, client_id: str, nonce: str | None, now: float
) -> None:
    """OIDC Core §3.1.3.7 for an ID token that came straight from the token endpoint: `iss`,
    `aud`, `nonce` (None: the request sent none, so the token must carry none) and `exp`."""
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


@dataclass(frozen=True, slots=True)
class _Options:
    opener: Opener | None = None
    timeout: float = 300.0
    http: httpx.Client | None = None
    callback_path: str = "/callback"
    on_waiting: Callable[[str], None] | None = None
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    par: bool = True
    dpop: bool = True  # RFC 9449 when the server offers it


@dataclass(frozen=True, slots=True)
class _Credentials:
    """How the app authenticates: nothing (public), its secret, or its private key; and the
    DPoP key of the login being stepped up (its tokens stay bound to the same key)."""

    secret: str | None = None
    key: ClientKey | None = None
    dpop_key: DPoPKey | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    """What one browser sign-in gave."""

    endpoints: Endpoints
    tokens: TokenSet
    scopes: tuple[str, ...]
    at: float
    private_key: KeyFile | None = None  # with the alg chosen for this server
    pushed: bool = False  # whether the authorization request was pushed (RFC 9126)
    dpop: DPoPSigner | None = None  # the key the tokens are bound to (RFC 9449), its nonces

    def entry(self, profile: str, client_id: str, client_secret: str | None) -> CacheEntry:
        """What the token cache keeps of this sign-in (the browser's or a device's)."""
        return CacheEntry(
            profile=profile,
            client_id=client_id,
            endpoints=self.endpoints,
            tokens=self.tokens,
            scopes=self.scopes,
            client_secret=client_secret,
            logged_in_at=self.at,
            private_key=self.private_key,
            dpop_key=None if self.dpop is None else self.dpop.key,
        )


def _use_par(metadata: ServerMetadata, options: _Options) -> bool:
    if metadata.pushed_authorization_request_endpoint is None:
        return False
    if not options.par and metadata.require_pushed_authorization_requests:
        raise LoginError(
            f"{metadata.issuer} requires pushed authorization requests (RFC 9126)",
            hint="sign in without --no-par",
        )
    return options.par


def _dpop_signer(
    metadata: ServerMetadata, options: _Options, credentials: _Credentials
) -> DPoPSigner | None:
    """RFC 9449 §5.1: DPoP when the server signs up for ES256 proofs and the caller did not
    turn it off; a step-up keeps the login's key, a new login makes a new one."""
    if not options.dpop or not server_supports_dpop(metadata.dpop_signing_algs):
        return None
    return DPoPSigner(credentials.dpop_key or DPoPKey.generate())


def _sign_in(
    issuer: str,
    client_id: str,
    credentials: _Credentials,
    wanted: list[str],
    options: _Options,
) -> SignIn:
    """Steps 1 to 6 of the module's docstring, without touching the cache."""
    metadata = discover(issuer, options.http)
    key = (
        None if credentials.key is None else credentials.key.for_server(metadata.auth_signing_algs)
    )
    endpoints = Endpoints(
        issuer=metadata.issuer,
        token_endpoint=metadata.token_endpoint,
        revocation_endpoint=metadata.revocation_endpoint,
        userinfo_endpoint=metadata.userinfo_endpoint,
    )
    dpop = _dpop_signer(metadata, options, credentials)
    oauth = OAuthClient(
        endpoints, client_id, credentials.secret, client_key=key, http=options.http, dpop=dpop
    )
    pushed = _use_par(metadata, options)
    pkce = Pkce.new()
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32) if "openid" in wanted else None
    with LoopbackListener(
        expected_state=state,
        expected_issuer=metadata.issuer,
        require_iss=metadata.iss_parameter_supported,
        path=options.callback_path,
    ) as listener:
        redirect_uri = listener.redirect_uri
        params = authorization_params(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=wanted,
            state=state,
            pkce=pkce,
            nonce=nonce,
            acr_values=options.acr_values,
            max_age=options.max_age,
            dpop_jkt=None if dpop is None else dpop.jkt,
        )
        if pushed:
            # RFC 9126 §2: the server checks the request now; a refusal ends the login here.
            par_endpoint = metadata.pushed_authorization_request_endpoint or ""
            request = oauth.push_authorization_request(par_endpoint, params)
            url = pushed_authorization_url(
                metadata.authorization_endpoint, client_id, request.request_uri
            )
        else:
            url = with_query(metadata.authorization_endpoint, params)
            check_authorization_request(
                options.http, url, client_id=client_id, redirect_uri=redirect_uri
            )
        (options.opener or webbrowser.open)(url)
        if options.on_waiting is not None:
            options.on_waiting(url)
        response = listener.wait(options.timeout)
    tokens: TokenSet = oauth.exchange_code(response.code, redirect_uri, pkce.verifier)
    now = time.time()
    if nonce is not None and tokens.id_token is not None:
        check_id_token(tokens.id_token, metadata.issuer, client_id, nonce, now)
    reference = None if key is None else key.reference()
    return SignIn(endpoints, tokens, tuple(wanted), now, reference, pushed, dpop)


def _load_key(private_key: str | Path, key_id: str | None) -> ClientKey:
    """The key file, read before any request; a warning when others can read it."""
    key = load_private_key(private_key, key_id=key_id)
    warning = key_file_warning(key.path or private_key)
    if warning is not None:
        warnings.warn(warning, KeyFileWarning, stacklevel=3)
    return key


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
    acr_values: Iterable[str] = (),
    max_age: int | None = None,
    private_key: str | Path | None = None,
    key_id: str | None = None,
    par: bool = True,
    dpop: bool = True,
) -> Session:
    """Sign in through the browser and cache the tokens; returns the new `Session`.

    `opener(url)` shows the authorization URL to the user (default: `webbrowser.open`);
    `on_waiting(url)` is called once the browser was asked to open it. `acr_values` (levels,
    in order of preference) and `max_age` (seconds) are sent on the authorization request.
    `private_key`: the app's key file for `private_key_jwt` (PEM or JWK; `key_id` when the
    registered key's `kid` is not the file's own or its RFC 7638 thumbprint); a
    `KeyFileWarning` when other users can read it. `par=False`: no pushed authorization
    request even when the server offers it. `dpop=False`: bearer tokens even when the server
    offers DPoP (RFC 9449). The session steps up the same way (`browser_step_up`) when an API
    asks for it.
    """
    check_profile(profile)
    if client_secret is not None and private_key is not None:
        raise LoginError("give the app's secret or its private key, not both")
    key = None if private_key is None else _load_key(private_key, key_id)
    cache = cache or TokenCache()
    options = _Options(
        opener, timeout, http, callback_path, on_waiting, tuple(acr_values), max_age, par, dpop
    )
    credentials = _Credentials(client_secret, key)
    done = _sign_in(issuer, client_id, credentials, requested_scopes(scopes), options)
    entry = done.entry(profile, client_id, client_secret)
    cache.save(entry)
    step_up = browser_step_up(
        opener=opener,
        timeout=timeout,
        http=http,
        callback_path=callback_path,
        on_waiting=on_waiting,
        par=par,
    )
    session = Session(entry, cache, http=http, step_up=step_up, dpop=done.dpop)
    session.pushed_authorization_request = done.pushed
    return session


def _subject(id_token: str | None) -> str | None:
    if id_token is None:
        return None
    try:
        sub = unverified_jwt(id_token)[1].get("sub")
    except ValueError:
        return None
    return sub if isinstance(sub, str) else None


def browser_step_up(
    *,
    opener: Opener | None = None,
    timeout: float = 300.0,
    http: httpx.Client | None = None,
    callback_path: str = "/callback",
    on_waiting: Callable[[str], None] | None = None,
    par: bool = True,
) -> StepUpHandler:
    """A `Session` step-up handler: the browser login again for the cached login's app (with
    its secret or its key file) and scopes, with the `acr_values` / `max_age` the API asked for
    (RFC 9470 §4). The new sign-in must be the same user's (compared by the ID tokens' `sub`)."""

    def step_up(entry: CacheEntry, challenge: StepUp) -> TokenSet:
        options = _Options(
            opener,
            timeout,
            http,
            callback_path,
            on_waiting,
            challenge.acr_values,
            challenge.max_age,
            par,
            entry.dpop_key is not None,  # DPoP as the login does, with its key
        )
        wanted = list(entry.scopes) or requested_scopes(())
        key = None if entry.private_key is None else entry.private_key.load()
        credentials = _Credentials(entry.client_secret, key, entry.dpop_key)
        done = _sign_in(entry.issuer, entry.client_id, credentials, wanted, options)
        before, after = _subject(entry.tokens.id_token), _subject(done.tokens.id_token)
        if before is None or after is None:
            # Whoever is signed in to the browser would replace the cached login unchecked.
            raise LoginError(
                "the sign-in cannot be compared with the one logged in (no ID token)",
                hint="run tessera login again (it asks for openid) to step up",
            )
        if before != after:
            raise LoginError(
                "you signed in as another user than the one logged in",
                hint="sign in again as the same user, or run tessera login to switch users",
            )
        return done.tokens

    return step_up
