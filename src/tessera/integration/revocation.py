"""How the service learns of revoked tokens (`TESSERA_INTEGRATION_REVOCATION`).

`feed` (default) follows the identity domain's revocation feed with `tessera.resource`'s
`RevocationFeed`: no per-request call, a revoked token is refused within about a second. Until
the feed has caught up once we refuse every token, since we cannot know which are revoked.
`introspection` asks the introspection endpoint (RFC 7662) with a short cache. Both need the
credentials of a confidential app; without them the service checks no revocation and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tessera.integration.settings import IntegrationSettings
from tessera.resource import IntrospectionCheck, RevocationCheck, RevocationFeed

__all__ = ["Revocation", "SyncedFeed", "revocation_for"]

_log = logging.getLogger("tessera.integration")


class SyncedFeed:
    """A `RevocationCheck` over a feed that fails closed until the feed's first catch-up."""

    def __init__(self, feed: RevocationFeed) -> None:
        self.feed = feed

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        return not self.feed.synced or self.feed.is_revoked(token, claims)


@dataclass(frozen=True, slots=True)
class Revocation:
    check: RevocationCheck | None
    feed: RevocationFeed | None
    mode: str


def revocation_for(settings: IntegrationSettings) -> Revocation:
    """The revocation check the settings ask for (the feed is not started here)."""
    credentials = settings.client_credentials
    if settings.revocation == "none":
        _log.warning("revocation checks are off (TESSERA_INTEGRATION_REVOCATION=none)")
        return Revocation(None, None, "none")
    if credentials is None:
        _log.warning(
            "TESSERA_INTEGRATION_CLIENT_ID and _CLIENT_SECRET are not set: revoked tokens are "
            "accepted until they expire"
        )
        return Revocation(None, None, "none")
    if settings.revocation == "introspection":
        endpoint = f"{settings.issuer}/oauth2/v1/introspect"
        return Revocation(IntrospectionCheck(endpoint, *credentials), None, "introspection")
    feed = RevocationFeed(settings.issuer, *credentials, wait_seconds=settings.revocation_wait)
    return Revocation(SyncedFeed(feed), feed, "feed")
