"""The token endpoint's lifetimes and the refresh grace window (set from the configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.domain.model import Client, RevocationKind
from tessera.oauth.retention import family_bound, kept_until

__all__ = ["DEFAULT_ACCESS_TTL", "TokenPolicy"]

DEFAULT_ACCESS_TTL = 3600


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    default_access_ttl: int = DEFAULT_ACCESS_TTL
    id_token_ttl: int = 3600
    refresh_ttl: int = 14 * 86400  # inactivity: each refresh token lives this long unused
    refresh_absolute_ttl: int = 90 * 86400  # a family (grant) ends this long after it started
    refresh_grace_seconds: float = 2.0  # RFC 9700 §4.14.2: a retry of a lost response

    def refresh_inactivity(self, client: Client) -> timedelta:
        """How long a refresh token of `client` lives unused: the app's setting or ours."""
        return timedelta(seconds=client.refresh_ttl or self.refresh_ttl)

    def family_event_expiry(self, now: datetime) -> datetime:
        """How long the event of a refresh family revoked at `now` is kept when its grant is
        not at hand (`tessera.oauth.retention`)."""
        return kept_until(RevocationKind.GRANT, now, family_bound(now, self.refresh_absolute_ttl))
