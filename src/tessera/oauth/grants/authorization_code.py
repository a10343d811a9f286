"""The authorization code grant at the token endpoint: RFC 6749 §4.1.3, PKCE (RFC 7636 §4.6),
a replayed code revokes what it issued (RFC 9700 §4.2.4), OIDC Core §3.1.3, a code bound to a
DPoP key (RFC 9449 §10) and a public app's refresh family bound to one (RFC 9449 §5).

The redemption is one unit of work (docs/security.md rules 13, 14, 31): the atomic consume of
the code, the subject's cut-off, the checks (a pure function that returns the failure), then
the grant and its first refresh token. A failed check still commits the consume: a code is used
once (RFC 6749 §4.1.2), also by a request that fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import AuthorizationCode, Client, Grant, User
from tessera.oauth import errors
from tessera.oauth.grants.policy import TokenPolicy
from tessera.oauth.grants.refresh_token import first_refresh_token
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse
from tessera.oauth.grants.user_grant import Refusal, start_user_grant
from tessera.oauth.pkce import check_verifier
from tessera.store.protocols import Store, UnitOfWork

__all__ = ["AuthorizationCodeGrant", "Presented", "redemption_failure"]

_UNUSABLE = "unknown, used or expired code"


@dataclass(frozen=True, slots=True)
class Presented:
    """What the client presents with a code."""

    client: Client
    redirect_uri: str | None
    code_verifier: str | None
    dpop_jkt: str | None = None  # the key of the request's verified DPoP proof


def redemption_failure(code: AuthorizationCode, presented: Presented) -> errors.OAuthError | None:
    """RFC 6749 §4.1.3's checks of a consumed code, in order; the failure, or None.

    The code is bound to its client; `redirect_uri` must repeat the authorization request's,
    and may be left out only by an app with that one registered URI; then PKCE (RFC 7636 §4.6,
    including the downgrade of a verifier for a code issued without a challenge); a code bound
    to a DPoP key (RFC 9449 §10) needs a proof made with that key.
    """
    if code.client_id != presented.client.client_id:
        return errors.InvalidGrant("the code was issued to another app")
    if presented.redirect_uri is None:
        if presented.client.redirect_uris != (code.redirect_uri,):
            return errors.InvalidGrant("redirect_uri is required")
    elif presented.redirect_uri != code.redirect_uri:
        return errors.InvalidGrant("redirect_uri differs from the authorization request")
    try:
        check_verifier(code.code_challenge, presented.code_verifier)
    except errors.OAuthError as failure:
        return failure
    if code.dpop_jkt is not None and presented.dpop_jkt != code.dpop_jkt:
        # RFC 9449 §10, §10.1: MUST reject. The proof itself is valid; what does not hold
        # is the code, bound to another key (as a PKCE mismatch): `invalid_grant`.
        return errors.InvalidGrant("the code is bound to another DPoP key (dpop_jkt)")
    return None


class AuthorizationCodeGrant:
    def __init__(self, store: Store, minter: TokenMinter, policy: TokenPolicy) -> None:
        self._store = store
        self._minter = minter
        self._policy = policy

    def handle(self, request: TokenRequest) -> TokenResponse:
        code_value = request.form.get("code")
        if not code_value:
            raise errors.InvalidRequest("code is required")
        if len(code_value) > 256:
            raise errors.InvalidGrant(_UNUSABLE)
        presented = Presented(
            request.client,
            request.form.get("redirect_uri"),
            request.form.get("code_verifier"),
            request.dpop_jkt,
        )
        refresh_value = new_token(32) if "refresh_token" in request.client.grant_types else None
        with self._store.transaction() as work:
            outcome = self._redeem(work, sha256_b64(code_value), presented, refresh_value, request)
        if isinstance(outcome, errors.OAuthError):
            raise outcome  # after the commit: the code stays burned
        grant, user, nonce = outcome
        return self._minter.for_user(request, grant, user, refresh_value, nonce)

    def _redeem(
        self,
        work: UnitOfWork,
        code_hash: str,
        presented: Presented,
        refresh_value: str | None,
        request: TokenRequest,
    ) -> errors.OAuthError | tuple[Grant, User, str | None]:
        """Inside the unit of work: what to answer (a failure is returned, so the unit of work
        commits the consume)."""
        now = request.now
        code, won = work.codes.consume(code_hash, now)
        if code is None or not won:
            if code is not None and code.consumed_at is not None:
                # RFC 6749 §4.1.2, RFC 9700 §4.2.4: a replayed code revokes what it issued.
                work.grants.revoke(code.grant_id, now, self._policy.family_event_expiry(now))
                return errors.InvalidGrant(_UNUSABLE, debug="a replayed code: its grant is revoked")
            return errors.InvalidGrant(_UNUSABLE)
        grant = self._new_grant(code, presented.client, request)
        refresh = None
        if refresh_value is not None:
            refresh = first_refresh_token(refresh_value, grant, presented.client, now, self._policy)
        # Serialised with revocation writes (docs/security.md rule 31); the checks of the code
        # are answered after its cut-off, before the user's state.
        user = start_user_grant(
            work,
            grant,
            refresh,
            cut_off_at=code.issued_at,
            failure=redemption_failure(code, presented),
        )
        if user is Refusal.CUT_OFF:
            # Burned: issued before the user's password change or revocation.
            return errors.InvalidGrant(_UNUSABLE, debug="the code predates the user's cut-off")
        if user is Refusal.INACTIVE:
            return errors.InvalidGrant("the user is no longer active")
        if isinstance(user, errors.OAuthError):
            return user
        return grant, user, code.nonce

    def _new_grant(self, code: AuthorizationCode, client: Client, request: TokenRequest) -> Grant:
        return Grant(
            grant_id=code.grant_id,
            client_id=client.client_id,
            user_id=code.user_id,
            scopes=code.scopes,
            audience=code.audience,
            auth_time=code.auth_time,
            created_at=request.now,
            absolute_expiry=request.now + timedelta(seconds=self._policy.refresh_absolute_ttl),
            session_id=code.session_id,
            amr=code.amr,
            # RFC 9449 §5: a public app's refresh tokens are bound to the proof's key; a
            # confidential app's are bound to the app by its authentication already.
            dpop_jkt=request.dpop_jkt if client.is_public else None,
        )
