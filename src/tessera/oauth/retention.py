"""How long a revocation event is kept (docs/architecture.md, "Revocation that reaches resource
servers": events are kept until the tokens they cover have expired).

The one formula, for every kind of event:

- `JTI` (one access token, RFC 7009): until the token's own `exp`, never longer than
  `MAX_TOKEN_LIFETIME` (a forged or odd `exp` cannot keep an event forever);
- `GRANT` (a refresh family, RFC 9700 §4.14.2): as long as any token of the family can live,
  its access tokens (`MAX_TOKEN_LIFETIME` from now) and its refresh tokens (until the grant's
  absolute expiry, or the policy's bound for it when the grant is not at hand);
- `SUBJECT` (a user's or an app's cut-off): `MAX_TOKEN_LIFETIME`, the longest an access token
  issued before it can live (the subject's refresh families are revoked with their own events
  and its outstanding codes are burned).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tessera.domain.model import RevocationKind
from tessera.oauth.keyring import MAX_TOKEN_LIFETIME

__all__ = ["family_bound", "kept_until"]


def kept_until(kind: RevocationKind, now: datetime, expires: datetime | None = None) -> datetime:
    """The `expires_at` of a revocation event of `kind` appended at `now`.

    `expires` is the token's `exp` for `JTI`, the family's last possible use for `GRANT`
    (`Grant.absolute_expiry` or `family_bound`), and unused for `SUBJECT`.
    """
    longest_access_token = now + MAX_TOKEN_LIFETIME
    if kind is RevocationKind.SUBJECT:
        return longest_access_token
    if expires is None:
        raise ValueError(f"a {kind.value} event needs the expiry of what it covers")
    if kind is RevocationKind.JTI:
        return min(expires, longest_access_token)
    return max(expires, longest_access_token)


def family_bound(now: datetime, refresh_absolute_ttl: int) -> datetime:
    """The latest absolute expiry of a family that may still be in use at `now` (none started
    later than now), for when its grant row is not at hand."""
    return now + timedelta(seconds=refresh_absolute_ttl)
