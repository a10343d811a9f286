"""Token revocation, RFC 7009.

A refresh token revokes its whole grant (§2.1: "SHOULD also invalidate all access tokens based
on the same authorization grant"); an access token appends a `jti` event. The endpoint answers
200 for unknown or invalid tokens (§2.2) but never when a write failed: a storage error
propagates and the web layer answers 503 (fosite CVE-2020-15223).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import Client, RevocationKind
from tessera.oauth import errors
from tessera.oauth.retention import kept_until
from tessera.oauth.tokens import InvalidOwnToken, TokenIssuer
from tessera.store.protocols import Store

__all__ = ["revoke"]


def revoke(
    client: Client,
    form: Mapping[str, str],
    store: Store,
    issuer: TokenIssuer,
    now: datetime,
    refresh_event_expiry: datetime,
) -> None:
    """`refresh_event_expiry`: how long a revoked family's event is kept
    (`tessera.oauth.retention.kept_until`, as the token endpoint keeps it)."""
    token = form.get("token")
    if not token:
        raise errors.InvalidRequest("token is required")
    # `token_type_hint` is not needed (refresh tokens have no dots, access tokens are JWS), and
    # §2.2: "An invalid token type hint value is ignored ... and does not influence the
    # revocation response."
    if len(token) <= 256 and token.count(".") != 2:
        row = store.refresh_tokens.get(sha256_b64(token))
        grant = store.grants.get(row.grant_id) if row else None
        # §2.1: only the client the token was issued to may revoke it; others get 200 anyway.
        if grant is not None and grant.client_id == client.client_id:
            store.grants.revoke(grant.grant_id, now, refresh_event_expiry)
        return
    try:
        claims = issuer.verify_own(token, int(now.timestamp()))
    except InvalidOwnToken:
        return
    if claims.get("client_id") != client.client_id or not isinstance(claims.get("jti"), str):
        return
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    kept = kept_until(RevocationKind.JTI, now, expires)
    store.revocations.append(RevocationKind.JTI, claims["jti"], now, kept, now)
