"""The UserInfo endpoint's decisions (OIDC Core §5.3) for a bearer token (RFC 6750 §2, §3).

The caller reads the token from the request (`tessera.web.bearer`); this module decides what
the token may see, in the order of the checks below, and raises the RFC 6750 §3.1 errors:
`invalid_token` (401) for a token that is not ours, expired, revoked, or whose user is gone or
disabled; `insufficient_scope` (403, naming `openid`) for a token that is not a user's or lacks
the `openid` scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tessera.domain.model import User
from tessera.oauth import errors
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.token import user_claims
from tessera.oauth.tokens import InvalidOwnToken, TokenIssuer

__all__ = ["userinfo"]


def userinfo(
    token: str,
    *,
    issuer: TokenIssuer,
    revocations: RevocationState,
    lookup_user: Callable[[str], User | None],
    now: datetime,
) -> dict[str, Any]:
    """OIDC Core §5.3.2: `sub` and the claims the token's scopes release (§5.4).

    Reads the store (revocation events, the user): run it off the event loop."""
    claims = _verified(token, issuer, now)
    revocations.sync()  # see a revocation made on any node a moment ago
    if revocations.revoked(claims):
        raise errors.InvalidToken("the access token was revoked")
    scopes = _openid_scopes(claims)
    user = lookup_user(str(claims["sub"]))
    if user is None or not user.active:
        raise errors.InvalidToken(
            "the user is no longer active", debug="user deleted" if user is None else "disabled"
        )
    return {"sub": user.id, **user_claims(user, scopes)}


def _verified(token: str, issuer: TokenIssuer, now: datetime) -> dict[str, Any]:
    """RFC 6750 §3.1: an access token we signed (RFC 9068 `at+jwt`), unexpired."""
    try:
        return issuer.verify_own(token, int(now.timestamp()))
    except InvalidOwnToken as exc:
        raise errors.InvalidToken(
            "the access token is invalid or expired", debug=str(exc)
        ) from None


def _openid_scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """OIDC Core §5.3: UserInfo is for a user's token granted `openid`; a client's own token
    (`sub_type: client`) has no user to describe."""
    scopes = tuple(str(claims.get("scope", "")).split())
    if claims.get("sub_type") != "user" or "openid" not in scopes:
        raise errors.InsufficientScope("the token lacks the openid scope", "openid")
    return scopes
