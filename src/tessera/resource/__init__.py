"""`tessera.resource`: make any Python web app an OAuth 2.0 resource server.

    from tessera.resource import TokenValidator, RevocationFeed
    feed = RevocationFeed(ISSUER, CLIENT_ID, CLIENT_SECRET).start()
    validator = TokenValidator(ISSUER, "https://api.example.test", revocation=feed)
    token = validator.validate(raw_token, scopes=["urn:example:read"])

Adapters: `tessera.resource.starlette` (AuthenticationBackend), `tessera.resource.fastapi`
(a `Security` dependency), `tessera.resource.asgi` (a plain middleware). Each can require a
level or a recent sign-in per route (RFC 9470, `tessera.resource.stepup`). This package imports
nothing of the identity domain's server.
"""

from tessera.resource.errors import (
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidRequestError,
    InvalidTokenError,
    RevocationUnavailableError,
    TokenError,
)
from tessera.resource.feed import FeedFreshness, RevocationFeed
from tessera.resource.introspection import IntrospectionCheck
from tessera.resource.jwks import DiscoveryError, JwksCache
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.resource.validator import AccessToken, RevocationCheck, TokenValidator

__all__ = [
    "AccessToken",
    "AuthRequirement",
    "DiscoveryError",
    "FeedFreshness",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "IntrospectionCheck",
    "InvalidRequestError",
    "InvalidTokenError",
    "JwksCache",
    "RevocationCheck",
    "RevocationFeed",
    "RevocationUnavailableError",
    "TokenError",
    "TokenValidator",
    "requirement",
]
