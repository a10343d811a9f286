"""`tessera.resource`: make any Python web app an OAuth 2.0 resource server.

    from tessera.resource import TokenValidator, RevocationFeed
    feed = RevocationFeed(ISSUER, CLIENT_ID, CLIENT_SECRET).start()
    validator = TokenValidator(ISSUER, "https://api.example.test", revocation=feed)
    token = validator.validate(raw_token, scopes=["urn:example:read"])

Adapters: `tessera.resource.starlette` (AuthenticationBackend), `tessera.resource.fastapi`
(a `Security` dependency), `tessera.resource.asgi` (a plain middleware). Each can require a
level or a recent sign-in per route (RFC 9470, `tessera.resource.stepup`). DPoP-bound tokens
(RFC 9449) are checked with a proof per request (`tessera.resource.dpop`):

    validator = TokenValidator(ISSUER, AUDIENCE, dpop=DPoPPolicy(
        replay=RedisProofReplay.from_url(REDIS_URL), public_url="https://api.example.test"))

`validator.validate(raw_token)` takes bearer tokens only; without an adapter, a request that
may carry DPoP goes through `validate_request(validator, authorization=…, dpop=…, method=…,
url=…)`.

This package imports nothing of the identity domain's server.
"""

from tessera.resource.dpop import (
    DPoPPolicy,
    MemoryProofReplay,
    RedisProofReplay,
    validate_request,
)
from tessera.resource.errors import (
    InsufficientRoleError,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidDPoPProofError,
    InvalidRequestError,
    InvalidTokenError,
    RevocationUnavailableError,
    TemporarilyUnavailableError,
    TokenError,
    UseDPoPNonceError,
)
from tessera.resource.feed import FeedFreshness, RevocationFeed
from tessera.resource.introspection import IntrospectionCheck
from tessera.resource.jwks import DiscoveryError, JwksCache
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.resource.validator import AccessToken, RevocationCheck, TokenValidator
from tessera.shared.dpop import NonceSource, ProofReplay

__all__ = [
    "AccessToken",
    "AuthRequirement",
    "DPoPPolicy",
    "DiscoveryError",
    "FeedFreshness",
    "InsufficientRoleError",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "IntrospectionCheck",
    "InvalidDPoPProofError",
    "InvalidRequestError",
    "InvalidTokenError",
    "JwksCache",
    "MemoryProofReplay",
    "NonceSource",
    "ProofReplay",
    "RedisProofReplay",
    "RevocationCheck",
    "RevocationFeed",
    "RevocationUnavailableError",
    "TemporarilyUnavailableError",
    "TokenError",
    "TokenValidator",
    "UseDPoPNonceError",
    "requirement",
    "validate_request",
]
