"""`tessera.client`: sign in through the browser, keep tokens fresh, call APIs.

    from tessera.client import Session, login
    session = login(ISSUER, CLIENT_ID, scopes=[API_SCOPE])      # RFC 8252 loopback + PKCE,
                                                                  # pushed (RFC 9126) if offered
    login(ISSUER, APP_ID, private_key="app-key.pem")              # private_key_jwt (RFC 7523)
    with httpx.Client(auth=session.auth()) as http:               # refreshes before expiry,
        http.get("https://api.example.test/things")               # retries once after a 401
                                                                  # (a step-up: RFC 9470)
    Session.load().logout()                                       # RFC 7009
    login(ISSUER, CLIENT_ID, dpop=False)       # bearer tokens; by default DPoP (RFC 9449)
                                               # when the server offers ES256 proofs
    device_login(ISSUER, CLIENT_ID, on_code=show)  # no browser here: RFC 8628, the user
                                                   # enters a code on another device

Imports only the standard library and httpx: a user installs and uses it alone (a private key
for `private_key_jwt`, and DPoP proofs, also need joserfc and cryptography, imported only then).
"""

from tessera.client.auth import BearerAuth
from tessera.client.cache import CacheEntry, TokenCache, config_dir
from tessera.client.device import DeviceCode, device_login
from tessera.client.discovery import ServerMetadata, discover
from tessera.client.dpop import DPoPKey, DPoPSigner
from tessera.client.errors import (
    CacheError,
    ClientError,
    DeviceLoginError,
    DiscoveryError,
    KeyFileError,
    KeyFileWarning,
    LoginError,
    LoginExpired,
    LoginTimeout,
    NotLoggedIn,
    OAuthResponseError,
    PushedRequestError,
    StepUpRequired,
)
from tessera.client.login import (
    authorization_params,
    authorization_url,
    browser_step_up,
    login,
    requested_scopes,
)
from tessera.client.loopback import AuthorizationResponse, LoopbackListener
from tessera.client.par import PushedRequest, pushed_authorization_url
from tessera.client.pkce import Pkce, s256_challenge
from tessera.client.private_key_jwt import ClientKey, KeyFile, load_private_key
from tessera.client.session import Session, StepUpHandler, refresh_margin
from tessera.client.stepup import StepUp, parse_challenges, step_up_challenge
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet, unverified_jwt

__all__ = [
    "AuthorizationResponse",
    "BearerAuth",
    "CacheEntry",
    "CacheError",
    "ClientError",
    "ClientKey",
    "DPoPKey",
    "DPoPSigner",
    "DeviceCode",
    "DeviceLoginError",
    "DiscoveryError",
    "Endpoints",
    "KeyFile",
    "KeyFileError",
    "KeyFileWarning",
    "LoginError",
    "LoginExpired",
    "LoginTimeout",
    "LoopbackListener",
    "NotLoggedIn",
    "OAuthClient",
    "OAuthResponseError",
    "Pkce",
    "PushedRequest",
    "PushedRequestError",
    "ServerMetadata",
    "Session",
    "StepUp",
    "StepUpHandler",
    "StepUpRequired",
    "TokenCache",
    "TokenSet",
    "authorization_params",
    "authorization_url",
    "browser_step_up",
    "config_dir",
    "device_login",
    "discover",
    "load_private_key",
    "login",
    "parse_challenges",
    "pushed_authorization_url",
    "refresh_margin",
    "requested_scopes",
    "s256_challenge",
    "step_up_challenge",
    "unverified_jwt",
]
