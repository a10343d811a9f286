"""`tessera.client`: sign in through the browser, keep tokens fresh, call APIs.

    from tessera.client import Session, login
    session = login(ISSUER, CLIENT_ID, scopes=[API_SCOPE])      # RFC 8252 loopback + PKCE
    with httpx.Client(auth=session.auth()) as http:               # refreshes before expiry,
        http.get("https://api.example.test/things")               # retries once after a 401
                                                                  # (a step-up: RFC 9470)
    Session.load().logout()                                       # RFC 7009

Imports only the standard library and httpx: a user installs and uses it alone.
"""

from tessera.client.auth import BearerAuth
from tessera.client.cache import CacheEntry, TokenCache, config_dir
from tessera.client.discovery import ServerMetadata, discover
from tessera.client.errors import (
    CacheError,
    ClientError,
    DiscoveryError,
    LoginError,
    LoginExpired,
    LoginTimeout,
    NotLoggedIn,
    OAuthResponseError,
    StepUpRequired,
)
from tessera.client.login import authorization_url, browser_step_up, login, requested_scopes
from tessera.client.loopback import AuthorizationResponse, LoopbackListener
from tessera.client.pkce import Pkce, s256_challenge
from tessera.client.session import Session, StepUpHandler, refresh_margin
from tessera.client.stepup import StepUp, parse_challenges, step_up_challenge
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet, unverified_jwt

__all__ = [
    "AuthorizationResponse",
    "BearerAuth",
    "CacheEntry",
    "CacheError",
    "ClientError",
    "DiscoveryError",
    "Endpoints",
    "LoginError",
    "LoginExpired",
    "LoginTimeout",
    "LoopbackListener",
    "NotLoggedIn",
    "OAuthClient",
    "OAuthResponseError",
    "Pkce",
    "ServerMetadata",
    "Session",
    "StepUp",
    "StepUpHandler",
    "StepUpRequired",
    "TokenCache",
    "TokenSet",
    "authorization_url",
    "browser_step_up",
    "config_dir",
    "discover",
    "login",
    "parse_challenges",
    "refresh_margin",
    "requested_scopes",
    "s256_challenge",
    "step_up_challenge",
    "unverified_jwt",
]
