"""Validating an upstream provider's ID token: OIDC Core §3.1.3.7 (the checks, in its order),
§3.1.3.8 (`at_hash`), §2 (the claims), RFC 8725 §3.1-§3.2 (an algorithm allow-list).

The signature checks are those of client assertions (`tessera.oauth.client_assertion.
verified_jws`, joserfc underneath): a compact JWS only (an encrypted ID token, a JWE, is
refused: we register no encryption key), an `alg` among the public-key algorithms we accept
and the provider advertises (never `none`, never HS256/384/512: see
`tessera.oauth.federation.metadata.ID_TOKEN_ALGS`), the one key of the provider's JWK Set for
its `kid` (an unknown `kid` makes the key source fetch the set again once: the provider
rotated its keys). Every refusal is an `UpstreamError` whose detail names the claim.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from tessera.oauth.client_assertion import AssertionRefused, KeySource, verified_jws
from tessera.oauth.federation.errors import UpstreamError, clipped
from tessera.oauth.federation.metadata import ID_TOKEN_ALGS
from tessera.shared.jwt_parts import at_hash, is_numeric_date

__all__ = ["MAX_ID_TOKEN", "MAX_SUBJECT", "validate_id_token"]

# Some providers put up to 200 group ids in an ID token: room for that, and no more.
MAX_ID_TOKEN = 32 * 1024
MAX_SUBJECT = 255  # OIDC Core §2: `sub` "MUST NOT exceed 255 ASCII characters"
_REFUSED = (
    "The sign-in provider's answer could not be verified. Try again, or tell an administrator."
)


def _refuse(detail: str) -> UpstreamError:
    return UpstreamError(_REFUSED, detail)


def _signed_claims(
    token: str, keys: KeySource, allowed_algs: Collection[str]
) -> tuple[dict[str, Any], str]:
    """Items 6-8 of §3.1.3.7: not encrypted, an accepted `alg`, a valid signature."""
    if not isinstance(token, str):
        raise _refuse("the ID token is not a string")
    if token.count(".") == 4:  # RFC 7516 §7.1: a compact JWE has five parts
        raise _refuse("the ID token is encrypted (a JWE); the provider must only sign it")
    algs = ID_TOKEN_ALGS & frozenset(allowed_algs)
    if not algs:
        raise _refuse(f"no accepted ID token algorithm among {clipped(sorted(allowed_algs))}")
    try:
        return verified_jws(
            token,
            keys=keys,
            algs=algs,
            max_length=MAX_ID_TOKEN,
            what="the ID token",
            owner="the provider",
        )
    except AssertionRefused as exc:
        raise _refuse(exc.reason) from None


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    """Items 3-5 of §3.1.3.7: `aud` names us; `azp` is us, and required beside others."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _refuse("the ID token's aud is missing or malformed")
    if client_id not in audiences:
        raise _refuse("the ID token's aud does not name us (our client_id)")
    azp = claims.get("azp")
    if azp is None and len(set(audiences)) > 1:
        raise _refuse("the ID token names several audiences and no azp")
    if azp is not None and azp != client_id:
        raise _refuse("the ID token's azp is another client")


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    """Items 9-10 of §3.1.3.7 (`exp`, `iat`), and `nbf` (RFC 7519 §4.1.5) when present."""
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not is_numeric_date(exp):
        raise _refuse("the ID token has no numeric exp")
    if exp <= now - leeway:
        raise _refuse("the ID token has expired")
    if not is_numeric_date(iat):
        raise _refuse("the ID token has no numeric iat")
    if iat > now + leeway:
        raise _refuse("the ID token's iat is in the future")
    if nbf is not None and (not is_numeric_date(nbf) or nbf > now + leeway):
        raise _refuse("the ID token is not valid yet (nbf)")
    auth_time = claims.get("auth_time")
    if auth_time is not None and not is_numeric_date(auth_time):
        raise _refuse("the ID token's auth_time is not a number")


def _check_at_hash(claims: Mapping[str, Any], alg: str, access_token: str) -> None:
    """OIDC Core §3.1.3.8: when the ID token has `at_hash`, it must be the left half of the
    hash of the access token (base64url), so a token from another response does not pass."""
    claimed = claims.get("at_hash")
    if claimed is None:
        return
    expected = at_hash(access_token, alg)  # `alg` is one of ID_TOKEN_ALGS: each has its hash
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed, expected):
        raise _refuse("the ID token's at_hash does not match the access token")


def validate_id_token(
    token: str,
    keys: KeySource,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: datetime,
    allowed_algs: Collection[str],
    leeway: int = 60,
    access_token: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token from the token endpoint, checked per OIDC Core §3.1.3.7:
    signature (items 6-8, `keys` a `KeySet` or a function of `refresh` that is asked once
    more on an unknown `kid`), `iss` exactly `issuer` (item 2), `aud`/`azp` (items 3-5),
    `exp`/`iat` within `leeway` seconds (items 9-10), `nonce` equal to ours in constant time
    (item 11; §15.5.2: it ties the token to this browser's request), `sub` of 1 to 255
    characters (§2), and `at_hash` against `access_token` when both are there (§3.1.3.8).
    `allowed_algs`: the algorithms the provider advertises (ours ∩ them are accepted)."""
    claims, alg = _signed_claims(token, keys, allowed_algs)
    if claims.get("iss") != issuer:
        raise _refuse(f"the ID token's iss {clipped(claims.get('iss'))} is not {issuer}")
    _check_audience(claims, client_id)
    _check_times(claims, now.timestamp(), leeway)
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise _refuse("the ID token's nonce is not the one of this sign-in")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT:
        raise _refuse("the ID token has no sub of 1 to 255 characters")
    amr = claims.get("amr")
    if amr is not None and not (isinstance(amr, list) and all(isinstance(m, str) for m in amr)):
        raise _refuse("the ID token's amr is not a string array")
    if access_token is not None:
        _check_at_hash(claims, alg, access_token)
    return claims
