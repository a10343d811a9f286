"""The UserInfo endpoint's decisions (OIDC Core §5.3) for a bearer token (RFC 6750 §2, §3)
or a DPoP-bound one (RFC 9449 §7).

The caller reads the token from the request (`tessera.web.bearer`); this module decides what
the token may see, in the order of the checks below, and raises the RFC 6750 §3.1 errors:
`invalid_token` (401) for a token that is not ours, expired, revoked, or whose user is gone or
disabled; `insufficient_scope` (403, naming `openid`) for a token that is not a user's or lacks
the `openid` scope. How the token came is checked right after its signature (`check_sender`):
a DPoP-bound token only with the DPoP scheme and a proof of its key (`invalid_token`, or
`invalid_dpop_proof` / `use_dpop_nonce` for the proof itself, 401).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.domain.model import User
from tessera.oauth import errors
from tessera.oauth.dpop import DPoPPolicy
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.token import user_claims
from tessera.oauth.tokens import InvalidOwnToken, TokenIssuer

__all__ = ["Presented", "check_sender", "userinfo"]


@dataclass(frozen=True, slots=True)
class Presented:
    """How the token came (RFC 9449 §7.1): its scheme and, with DPoP, the request's proof and
    the method and URL the proof must name (`htm`, `htu`)."""

    scheme: str = "Bearer"  # "Bearer" or "DPoP"
    proof: str | None = None
    method: str = "GET"
    url: str = ""


def check_sender(
    token: str,
    claims: Mapping[str, Any],
    presented: Presented,
    dpop: DPoPPolicy | None,
    now: datetime,
) -> None:
    """RFC 9449 §7.1, §7.2: a DPoP-bound token (`cnf.jkt`) is refused as a bearer token;
    with the DPoP scheme the token must be bound, and the request must carry a proof (§4.3,
    with `ath` of this token) made with the token's key, used once (§11.1). Errors of a
    DPoP request or a bound token answer with the DPoP challenge alone (`dpop_only`)."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if presented.scheme != "DPoP":
        if jkt is not None:  # §7.2: MUST reject a DPoP-bound token received as a bearer token
            raise _dpop_only(errors.InvalidToken("the access token is DPoP-bound: use DPoP"))
        return
    if jkt is None:  # §7.1: no key to match the proof's with
        raise _dpop_only(errors.InvalidToken("the access token is not DPoP-bound: use Bearer"))
    if presented.proof is None:  # §7.1: MUST check a proof was received
        raise _dpop_only(errors.InvalidDPoPProof("send a DPoP proof with the token", status=401))
    if dpop is None:  # a caller that checks no proofs cannot accept a bound token
        raise _dpop_only(errors.InvalidToken("DPoP is not accepted here"))
    try:
        proof = dpop.verify(
            presented.proof,
            method=presented.method,
            url=presented.url,
            now=now,
            access_token=token,
            status=401,
        )
        if proof.jkt != jkt:  # §6, §7.1 (Figure 16: `invalid_token`)
            raise errors.InvalidToken("the DPoP proof's key is not the access token's key")
        dpop.use(proof, now, status=401)
    except errors.OAuthError as exc:
        raise _dpop_only(exc) from None


def _dpop_only(exc: errors.OAuthError) -> errors.OAuthError:
    exc.dpop_only = True
    return exc


def userinfo(
    token: str,
    *,
    issuer: TokenIssuer,
    revocations: RevocationState,
    lookup_user: Callable[[str], User | None],
    now: datetime,
    presented: Presented | None = None,
    dpop: DPoPPolicy | None = None,
    group_names: Callable[[str], tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """OIDC Core §5.3.2: `sub` and the claims the token's scopes release (§5.4). `presented`:
    how the token came (None: as a bearer token), checked with `dpop` (RFC 9449 §7).

    Reads the store (revocation events, the user): run it off the event loop."""
    claims = _verified(token, issuer, now)
    check_sender(token, claims, presented or Presented(), dpop, now)
    revocations.sync()  # see a revocation made on any node a moment ago
    if revocations.revoked(claims):
        raise errors.InvalidToken("the access token was revoked")
    scopes = _openid_scopes(claims)
    user = lookup_user(str(claims["sub"]))
    if user is None or not user.active:
        raise errors.InvalidToken(
            "the user is no longer active", debug="user deleted" if user is None else "disabled"
        )
    return {"sub": user.id, **user_claims(user, scopes, group_names)}


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
