"""Token introspection, RFC 7662.

Answers from the same revocation state that resource servers follow: a token is active only if
its signature, issuer and expiry hold and no `jti`, grant (`sid`) or subject cut-off event
covers it (Keycloak CVE-2026-8922 ignored subject-wide revocations here). A DPoP-bound token's
answer carries its `cnf` (RFC 9449 §6.2). Refresh tokens are
active while unused, unexpired and of a live grant.

Only a party the token was meant for learns about it (RFC 7662 §2.1, §4): the client it was
issued to, or a resource server registered for its audience (`Client.resource_server_for`).
Anyone else gets `active: false`, as for a token that does not exist. The same rule holds for
refresh tokens, with the audience of their grant (a public app cannot introspect, so its
resource server is the one that can).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import Client
from tessera.oauth import errors
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.tokens import InvalidOwnToken, TokenIssuer
from tessera.store.protocols import Store

__all__ = ["access_token_answer", "introspect", "may_introspect", "verified_access_token"]

_INACTIVE: dict[str, Any] = {"active": False}
_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sub_type",
    "user_id",
    "user_displayname",
    "sid",
    "auth_time",
    "acr",  # RFC 9470 §6.2: a resource server may need them to decide on a step-up
    "amr",
    "act",  # RFC 8693 §4.1: who acts for the subject of an exchanged token
    "roles",  # RFC 9068 §2.2.3.1: the caller's roles on the resource, as issued
    "groups",
)


def may_introspect(caller: Client, claims: Mapping[str, Any]) -> bool:
    """RFC 7662 §2.1, §4: the token's own client, or a resource server of its audience."""
    if claims.get("client_id") == caller.client_id:
        return True
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    return any(isinstance(a, str) and a in caller.resource_server_for for a in audiences)


def introspect(
    caller: Client,
    form: Mapping[str, str],
    store: Store,
    issuer: TokenIssuer,
    revocations: RevocationState,
    now: datetime,
) -> dict[str, Any]:
    token = form.get("token")
    if not token:
        raise errors.InvalidRequest("token is required")  # RFC 7662 §2.1
    # `token_type_hint` is not needed: our refresh tokens have no dots and access tokens are
    # JWS, and a wrong hint must not hide a token (§2.1: extend the search to every type).
    if token.count(".") == 2:
        return _access_token(caller, token, issuer, revocations, now)
    if len(token) <= 256:
        return _refresh_token(caller, token, store, now)
    return _INACTIVE


def _access_token(
    caller: Client, token: str, issuer: TokenIssuer, revocations: RevocationState, now: datetime
) -> dict[str, Any]:
    claims = verified_access_token(token, issuer, now)
    if claims is None or not may_introspect(caller, claims):
        return _INACTIVE
    revocations.sync()  # see revocations made on any node a moment ago
    return access_token_answer(claims, revocations)


def verified_access_token(
    token: str, issuer: TokenIssuer, now: datetime
) -> Mapping[str, Any] | None:
    """The claims of one of our access tokens whose signature, issuer and expiry hold."""
    try:
        return issuer.verify_own(token, int(now.timestamp()))
    except InvalidOwnToken:
        return None


def access_token_answer(claims: Mapping[str, Any], revocations: RevocationState) -> dict[str, Any]:
    """The answer for a verified access token, from revocation state synced a moment ago."""
    if revocations.revoked(claims):
        return _INACTIVE
    # RFC 9449 §6.2: a DPoP-bound token's `cnf` (its key's thumbprint) and `token_type: DPoP`;
    # the resource server checks the binding itself.
    bound = "cnf" in claims
    body = {"active": True, "token_type": "DPoP" if bound else "Bearer"}
    body.update({k: claims[k] for k in _CLAIMS if k in claims})
    if bound:
        body["cnf"] = claims["cnf"]
    return body


def _refresh_token(caller: Client, token: str, store: Store, now: datetime) -> dict[str, Any]:
    row = store.refresh_tokens.get(sha256_b64(token))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return _INACTIVE
    grant = store.grants.get(row.grant_id)
    if grant is None or grant.revoked_at is not None or grant.absolute_expiry <= now:
        return _INACTIVE
    if not may_introspect(caller, {"client_id": grant.client_id, "aud": grant.audience}):
        return _INACTIVE
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "scope": " ".join(grant.scopes),
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "sid": grant.grant_id,
    }
