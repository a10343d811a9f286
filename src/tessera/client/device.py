"""The device login: OAuth 2.0 Device Authorization Grant (RFC 8628) for a machine without a
browser (an SSH session, a CI box).

    session = device_login("https://id.example.com", "my-cli", scopes=[API_SCOPE],
                           on_code=lambda code: print(code.verification_uri_complete))

1. discover the issuer's `device_authorization_endpoint` (RFC 8414, RFC 8628 §4);
2. ask it for a device code and a user code (§3.1), authenticated as the app (public apps by
   their `client_id`; a confidential one with its secret or private key);
3. hand the user code and where to enter it to `on_code` (§3.3: the caller shows them, and may
   show `verification_uri_complete` as a QR code, §3.3.1);
4. poll the token endpoint (§3.4) every `interval` seconds: `authorization_pending` waits,
   `slow_down` adds 5 seconds to the interval for good (§3.5), `access_denied` and
   `expired_token` end the login (`DeviceLoginError`);
5. check the ID token (`iss`, `aud`, `exp`) and cache the tokens as the browser login does,
   with the DPoP key (RFC 9449) when the server offers DPoP and `dpop` was not turned off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tessera.client.cache import TokenCache, check_profile
from tessera.client.discovery import discover
from tessera.client.dpop import DPoPKey, DPoPSigner, server_supports_dpop
from tessera.client.errors import DeviceLoginError, LoginError, OAuthResponseError
from tessera.client.login import SignIn, check_id_token, requested_scopes
from tessera.client.private_key_jwt import load_private_key
from tessera.client.session import Session
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet

__all__ = ["SLOW_DOWN_STEP", "DeviceCode", "device_login"]

SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: seconds added to the interval on each `slow_down`
_DEFAULT_INTERVAL = 5  # §3.2: when the server names none


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device authorization response (RFC 8628 §3.2) as the user needs it."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int
    device_code: str = field(repr=False)

    @classmethod
    def from_response(cls, data: dict[str, Any]) -> DeviceCode:
        def text(name: str, required: bool = True) -> str | None:
            value = data.get(name)
            if isinstance(value, str) and value:
                return value
            if required:
                raise LoginError(f"the device authorization response has no valid {name}")
            return None

        expires_in, interval = data.get("expires_in"), data.get("interval", _DEFAULT_INTERVAL)
        if not isinstance(expires_in, int) or expires_in <= 0:
            raise LoginError("the device authorization response has no valid expires_in")
        if not isinstance(interval, int) or interval <= 0:
            interval = _DEFAULT_INTERVAL
        return cls(
            user_code=text("user_code") or "",
            verification_uri=text("verification_uri") or "",
            verification_uri_complete=text("verification_uri_complete", required=False),
            expires_in=expires_in,
            interval=interval,
            device_code=text("device_code") or "",
        )


def _poll(
    oauth: OAuthClient,
    code: DeviceCode,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    on_poll: Callable[[int], None] | None,
) -> TokenSet:
    """§3.4-§3.5 until tokens come, the user denies, or the code expires."""
    interval = code.interval
    deadline = clock() + code.expires_in
    while True:
        sleep(interval)
        try:
            return oauth.poll_device_code(code.device_code)
        except OAuthResponseError as exc:
            if exc.error == "slow_down":
                interval += SLOW_DOWN_STEP  # §3.5: for this and all subsequent requests
            elif exc.error == "access_denied":
                raise DeviceLoginError(
                    "access_denied",
                    "the sign-in was denied on the device page",
                    hint="run the login again and choose Allow if it was you",
                ) from None
            elif exc.error == "expired_token":
                raise _expired() from None
            elif exc.error != "authorization_pending":
                raise
        if on_poll is not None:
            on_poll(interval)
        if clock() + interval > deadline:
            raise _expired()


def _expired() -> DeviceLoginError:
    return DeviceLoginError(
        "expired_token",
        "the code expired before anyone approved it",
        hint="run the login again and enter the new code in time",
    )


def device_login(
    issuer: str,
    client_id: str,
    *,
    client_secret: str | None = None,
    private_key: str | Path | None = None,
    key_id: str | None = None,
    scopes: Iterable[str] = (),
    profile: str = "default",
    cache: TokenCache | None = None,
    http: httpx.Client | None = None,
    on_code: Callable[[DeviceCode], None] | None = None,
    on_poll: Callable[[int], None] | None = None,
    dpop: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Session:
    """Sign in with the device authorization grant and cache the tokens; the new `Session`.

    `on_code(code)` shows the user where to go and what to enter; `on_poll(interval)` is
    called after each poll that did not end the login. `DeviceLoginError` when the user denies
    or the code expires. `dpop=False`: bearer tokens even when the server offers DPoP."""
    check_profile(profile)
    if client_secret is not None and private_key is not None:
        raise LoginError("give the app's secret or its private key, not both")
    key = None if private_key is None else load_private_key(private_key, key_id=key_id)
    metadata = discover(issuer, http)
    if metadata.device_authorization_endpoint is None:
        raise LoginError(
            f"{metadata.issuer} offers no device login (no device_authorization_endpoint)",
            hint="sign in with the browser login instead",
        )
    client_key = None if key is None else key.for_server(metadata.auth_signing_algs)
    endpoints = Endpoints(
        issuer=metadata.issuer,
        token_endpoint=metadata.token_endpoint,
        revocation_endpoint=metadata.revocation_endpoint,
        userinfo_endpoint=metadata.userinfo_endpoint,
    )
    signer = None
    if dpop and server_supports_dpop(metadata.dpop_signing_algs):
        signer = DPoPSigner(DPoPKey.generate())
    oauth = OAuthClient(
        endpoints, client_id, client_secret, client_key=client_key, http=http, dpop=signer
    )
    wanted = requested_scopes(scopes)
    code = DeviceCode.from_response(
        oauth.request_device_code(metadata.device_authorization_endpoint, " ".join(wanted))
    )
    if on_code is not None:
        on_code(code)
    tokens = _poll(oauth, code, sleep, clock, on_poll)
    now = time.time()
    if tokens.id_token is not None:
        check_id_token(tokens.id_token, metadata.issuer, client_id, None, now)
    reference = None if client_key is None else client_key.reference()
    done = SignIn(endpoints, tokens, tuple(wanted), now, reference, dpop=signer)
    cache = cache or TokenCache()
    entry = done.entry(profile, client_id, client_secret)
    cache.save(entry)
    return Session(entry, cache, http=http, dpop=signer)
