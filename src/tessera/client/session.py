"""A signed-in profile: its cached tokens, refreshed a little before they expire.

    session = Session.load("default")
    token = session.access_token()          # refreshed when within the refresh margin
    with httpx.Client(auth=session.auth()) as http: ...
    session.logout()                        # revoke (RFC 7009) and forget

The refresh margin is 60 s, or `TESSERA_CLIENT_REFRESH_MARGIN` seconds. A refresh holds a lock
on the cache entry and re-reads it first, so two processes (or threads) sharing a login use one
refresh token once (the identity domain rotates it, RFC 9700 §4.14).

Step-up (RFC 9470): when an API answers 401 `insufficient_user_authentication`, a session given a
`step_up` handler (such as `tessera.client.login.browser_step_up()`) signs in again asking for
the level / maximum age the API named, caches the new tokens, and `BearerAuth` retries once;
without a handler, `StepUpRequired` says which `tessera login` to run.

DPoP (RFC 9449): a login made with a DPoP key (cached with its tokens) signs every refresh with
it (§5; the identity domain keeps the tokens bound to the same key) and `BearerAuth` presents a
`DPoP` token with a proof (§7.1). `Session.dpop` remembers the servers' nonces (§8, §9).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.dpop import DPoPSigner
from tessera.client.errors import (
    ClientError,
    KeyFileError,
    LoginExpired,
    NotLoggedIn,
    OAuthResponseError,
    StepUpRequired,
)
from tessera.client.private_key_jwt import KeyFile
from tessera.client.stepup import StepUp
from tessera.client.tokens import OAuthClient, TokenSet, unverified_jwt

__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "Session",
    "StepUpHandler",
    "login_command",
    "refresh_margin",
]

# Signs the user in again for the login `CacheEntry`, asking for what `StepUp` names.
StepUpHandler = Callable[[CacheEntry, StepUp], TokenSet]

DEFAULT_REFRESH_MARGIN = 60.0
_MARGIN_ENV = "TESSERA_CLIENT_REFRESH_MARGIN"


def refresh_margin() -> float:
    """Seconds before expiry at which a token is refreshed (`TESSERA_CLIENT_REFRESH_MARGIN`)."""
    raw = os.environ.get(_MARGIN_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_REFRESH_MARGIN
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ClientError(f"{_MARGIN_ENV} must be a number of seconds (0 to 86400), not {raw!r}")
    return value


def login_command(
    issuer: str | None,
    client_id: str | None,
    profile: str,
    step_up: StepUp | None = None,
    private_key: KeyFile | None = None,
) -> str:
    # Quoted for a shell: the acr values come from an API's WWW-Authenticate header, and the
    # user is told to paste this line.
    parts = [
        "tessera login",
        f"--issuer {shlex.quote(issuer)}" if issuer else "--issuer URL",
        f"--client-id {shlex.quote(client_id)}" if client_id else "--client-id ID",
    ]
    if private_key is not None:
        parts.append(f"--private-key {shlex.quote(private_key.path)}")
        if private_key.key_id is not None:
            parts.append(f"--key-id {shlex.quote(private_key.key_id)}")
    if profile != "default":
        parts.append(f"--profile {shlex.quote(profile)}")
    if step_up is not None:
        parts.extend(f"--acr {shlex.quote(value)}" for value in step_up.acr_values)
        if step_up.max_age is not None:
            parts.append(f"--max-age {int(step_up.max_age)}")
    return " ".join(parts)


class Session:
    def __init__(
        self,
        entry: CacheEntry,
        cache: TokenCache,
        *,
        http: httpx.Client | None = None,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
        step_up: StepUpHandler | None = None,
        dpop: DPoPSigner | None = None,
    ) -> None:
        self._entry = entry
        # The login's DPoP key and the nonces learnt with it (None: a bearer login).
        self.dpop = dpop if dpop is not None else _signer(entry)
        self.step_up_handler = step_up
        self.cache = cache
        self._http = http
        self.margin = refresh_margin() if margin is None else margin
        self._clock = clock
        self._lock = threading.Lock()
        self.refreshed = False  # whether this session refreshed its tokens at least once
        # Set by `login()`: whether its sign-in pushed the authorization request (RFC 9126).
        self.pushed_authorization_request = False

    @classmethod
    def load(
        cls,
        profile: str = "default",
        *,
        issuer: str | None = None,
        client_id: str | None = None,
        cache: TokenCache | None = None,
        http: httpx.Client | None = None,
        margin: float | None = None,
        step_up: StepUpHandler | None = None,
    ) -> Session:
        """The cached login of `profile`; `NotLoggedIn` (with the command to run) if none."""
        cache = cache or TokenCache()
        entry = cache.find(profile, issuer, client_id)
        if entry is None:
            where = f"profile {profile!r}" + (f" at {issuer}" if issuer else "")
            raise NotLoggedIn(
                f"not logged in ({where})",
                hint=f"run: {login_command(issuer, client_id, profile)}",
            )
        return cls(entry, cache, http=http, margin=margin, step_up=step_up)

    # --- what is cached ---------------------------------------------------------------------------

    @property
    def entry(self) -> CacheEntry:
        return self._entry

    @property
    def tokens(self) -> TokenSet:
        return self._entry.tokens

    def relogin_hint(self) -> str:
        e = self._entry
        return f"run: {login_command(e.issuer, e.client_id, e.profile, None, e.private_key)}"

    def _oauth(self) -> OAuthClient:
        e = self._entry
        key = None
        if e.private_key is not None:
            try:
                key = e.private_key.load()  # read again: the cache never holds the key
            except KeyFileError as exc:
                raise KeyFileError(
                    f"the login's private key cannot be used: {exc.message}",
                    hint=f"restore the key file, or {self.relogin_hint()}",
                ) from None
        return OAuthClient(
            e.endpoints,
            e.client_id,
            e.client_secret,
            client_key=key,
            http=self._http,
            dpop=self.dpop,
        )

    def _adopt(self, entry: CacheEntry) -> None:
        """Use `entry` (re-read from the cache); a new login there may have a new DPoP key."""
        if entry.dpop_key != (None if self.dpop is None else self.dpop.key):
            self.dpop = _signer(entry)
        self._entry = entry

    def _stale(self, tokens: TokenSet) -> bool:
        return tokens.expires_at is not None and tokens.expires_at - self.margin <= self._clock()

    def needs_refresh(self) -> bool:
        return self._stale(self._entry.tokens)

    # --- the token --------------------------------------------------------------------------------

    def access_token(self) -> str:
        """The access token, refreshed first when it expires within the margin."""
        if self.needs_refresh():
            self.refresh()
        return self._entry.tokens.access_token

    def refresh(self, rejected: str | None = None) -> TokenSet:
        """Refresh now. `rejected` is an access token an API refused: another process's newer
        token is taken instead of refreshing, unless it is that one."""
        e = self._entry
        with self._lock, self.cache.lock(e):
            current = self.cache.load(e.issuer, e.client_id, e.profile)
            if current is None:
                raise NotLoggedIn("logged out (the cached login is gone)", hint=self.relogin_hint())
            theirs = current.tokens.access_token
            if theirs not in (e.tokens.access_token, rejected) and not self._stale(current.tokens):
                self._adopt(current)  # another process refreshed meanwhile
                return current.tokens
            if current.tokens.refresh_token is None:
                raise LoginExpired(
                    "the access token has expired and there is no refresh token",
                    hint=self.relogin_hint(),
                )
            self._adopt(current)  # refresh with the key the cached tokens are bound to
            try:
                tokens = self._oauth().refresh(current.tokens)
            except OAuthResponseError as exc:
                if exc.error == "invalid_client" and e.private_key is not None:
                    raise LoginExpired(
                        "the identity domain refused the app's key (invalid_client)",
                        hint=f"check that {e.private_key.path} is the key registered for the "
                        f"app, then {self.relogin_hint()}",
                    ) from None
                if exc.error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                    raise LoginExpired(
                        f"your login has expired or was revoked ({exc.error})",
                        hint=self.relogin_hint(),
                    ) from None
                raise
            self._entry = current.with_tokens(tokens)
            self.cache.save(self._entry)
            self.refreshed = True
            return tokens

    # --- step-up (RFC 9470) ----------------------------------------------------------------------

    def step_up(self, challenge: StepUp) -> TokenSet:
        """Sign in again for what `challenge` asks and cache the new tokens; `StepUpRequired`
        (with the `tessera login` to run) when this session has no way to sign in."""
        if self.step_up_handler is None:
            e = self._entry
            raise StepUpRequired(
                f"the API asks for a stronger or more recent sign-in ({challenge.describe()})",
                acr_values=challenge.acr_values,
                max_age=challenge.max_age,
                hint="run: "
                + login_command(e.issuer, e.client_id, e.profile, challenge, e.private_key),
            )
        with self._lock:
            tokens = self.step_up_handler(self._entry, challenge)
            with self.cache.lock(self._entry):
                self._entry = self._entry.with_tokens(tokens)
                self.cache.save(self._entry)
        return tokens

    def claims(self) -> dict[str, Any]:
        """The access token's claims, decoded WITHOUT a signature check (for display)."""
        return unverified_jwt(self._entry.tokens.access_token)[1]

    def auth(self) -> httpx.Auth:
        from tessera.client.auth import BearerAuth

        return BearerAuth(self)

    # --- logout -----------------------------------------------------------------------------------

    def logout(self, *, forget_on_error: bool = False) -> bool:
        """Revoke the refresh token (which ends its grant) and the access token, then delete the
        cache entry. True when the identity domain confirmed the revocation; on an error the
        entry is kept (so logout can be retried) unless `forget_on_error`."""
        tokens, oauth = self._entry.tokens, self._oauth()
        try:
            if tokens.refresh_token is not None:
                oauth.revoke(tokens.refresh_token, "refresh_token")
            else:
                oauth.revoke(tokens.access_token, "access_token")
        except ClientError:
            if not forget_on_error:
                raise
            self.cache.delete(self._entry)
            return False
        if tokens.refresh_token is not None:
            # Tessera revokes the grant's access tokens with it; other servers may not.
            with contextlib.suppress(ClientError):
                oauth.revoke(tokens.access_token, "access_token")
        self.cache.delete(self._entry)
        return True


def _signer(entry: CacheEntry) -> DPoPSigner | None:
    return None if entry.dpop_key is None else DPoPSigner(entry.dpop_key)
