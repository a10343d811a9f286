"""The device code grant at the token endpoint: RFC 8628 §3.4 (the request), §3.5 (the
answers while the user decides) and tokens once for an approved request.

A poll of a pending request is recorded by a compare-and-set on its poll counter, so two
concurrent polls cannot both pass as "on time": the loser reads again and gets `slow_down`.
The redemption is one unit of work, as a code's (docs/security.md rules 13, 31, 58): one
conditional UPDATE marks the approved request redeemed (one winner), the user's cut-off and
state are checked, then the grant and its first refresh token are written. Access tokens are
the user's (`sub_type: user`); a DPoP proof binds them, and a public app's refresh family, to
its key as at the code grant (RFC 9449 §5).
"""

from __future__ import annotations

from datetime import timedelta

from tessera.domain.hashing import new_id, new_token
from tessera.domain.model import DeviceAuthorization, Grant, User
from tessera.oauth import errors
from tessera.oauth.device import code_hash, device_code_valid, poll_outcome
from tessera.oauth.grants.policy import TokenPolicy
from tessera.oauth.grants.refresh_token import first_refresh_token
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse
from tessera.oauth.grants.user_grant import Refusal, start_user_grant
from tessera.store.protocols import Store, UnitOfWork

__all__ = ["DeviceCodeGrant"]

_UNUSABLE = "unknown, used or expired device code"
_ROUNDS = 3  # reads of a pending request after losing a compare-and-set to a concurrent poll


class DeviceCodeGrant:
    def __init__(self, store: Store, minter: TokenMinter, policy: TokenPolicy, key: bytes) -> None:
        self._store = store
        self._minter = minter
        self._policy = policy
        self._key = key

    def handle(self, request: TokenRequest) -> TokenResponse:
        hashed = code_hash(self._key, device_code_valid(request.form.get("device_code")))
        requests = self._store.device_authorizations
        for _ in range(_ROUNDS):
            found = requests.get(hashed)
            if found is None or found.client_id != request.client.client_id:
                raise errors.InvalidGrant(_UNUSABLE)  # RFC 6749 §5.2: another app's is unknown
            outcome = poll_outcome(found, request.now)
            if outcome is None:
                return self._redeem(request, hashed)
            record = outcome.record
            if record is None or requests.poll(hashed, found.polls, record.interval, request.now):
                raise outcome.error
            # Another poll (or the user's decision) came between our read and write: read again.
        raise errors.SlowDown("concurrent polls: poll once per interval")

    def _redeem(self, request: TokenRequest, hashed: str) -> TokenResponse:
        client = request.client
        refresh_value = new_token(32) if "refresh_token" in client.grant_types else None
        with self._store.transaction() as work:
            outcome = self._redeem_in(work, hashed, request, refresh_value)
        if isinstance(outcome, errors.OAuthError):
            raise outcome
        grant, user = outcome
        return self._minter.for_user(request, grant, user, refresh_value, None)

    def _redeem_in(
        self, work: UnitOfWork, hashed: str, request: TokenRequest, refresh_value: str | None
    ) -> errors.OAuthError | tuple[Grant, User]:
        """Inside the unit of work; a failure is returned, so the redemption stays written."""
        now = request.now
        approved = work.device_authorizations.redeem(hashed, request.client.client_id, now)
        if approved is None:  # redeemed by a concurrent poll, or expired a moment ago
            return errors.InvalidGrant(_UNUSABLE)
        assert approved.user_id is not None and approved.decided_at is not None
        grant = self._new_grant(approved, request)
        refresh = None
        if refresh_value is not None:
            refresh = first_refresh_token(refresh_value, grant, request.client, now, self._policy)
        # Serialised with revocation writes, as a code's redemption (docs/security.md rule 31).
        user = start_user_grant(work, grant, refresh, cut_off_at=approved.decided_at)
        if user is Refusal.CUT_OFF:
            return errors.InvalidGrant(_UNUSABLE, debug="approved before the user's cut-off")
        if user is Refusal.INACTIVE:
            return errors.InvalidGrant("the user is no longer active")
        return grant, user

    def _new_grant(self, approved: DeviceAuthorization, request: TokenRequest) -> Grant:
        assert approved.user_id is not None and approved.auth_time is not None
        return Grant(
            grant_id=new_id("g_"),
            client_id=request.client.client_id,
            user_id=approved.user_id,
            scopes=approved.scopes,
            audience=approved.audience,
            auth_time=approved.auth_time,
            created_at=request.now,
            absolute_expiry=request.now + timedelta(seconds=self._policy.refresh_absolute_ttl),
            # No browser session: the device is not signed out with the browser that approved.
            session_id=None,
            amr=approved.amr or ("pwd",),
            # RFC 9449 §5, as at the code grant: a public app's family is bound to the key.
            dpop_jkt=request.dpop_jkt if request.client.is_public else None,
        )
