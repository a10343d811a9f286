"""`httpx.Auth` with the access token of a `Session`: `Bearer` (RFC 6750 §2.1) or, for a token
bound to the login's DPoP key, `DPoP` with a new proof carrying `ath` (RFC 9449 §7.1).

The token is refreshed a little before it expires; a 401 answer (an expired or revoked token
the clock did not foresee) makes one refresh and one retry, never more. A 401
`insufficient_user_authentication` challenge (RFC 9470 §3) instead makes the session sign in
again for what the API asked (or raise `StepUpRequired`) and retry once: one step-up per
request, never a loop. A 401 `DPoP error="use_dpop_nonce"` with a `DPoP-Nonce` (RFC 9449 §9)
is retried once with a proof carrying that nonce, which is remembered for the next requests.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from tessera.client.dpop import challenge_error, is_nonce_challenge
from tessera.client.errors import ClientError
from tessera.client.stepup import step_up_challenge

if TYPE_CHECKING:
    from tessera.client.session import Session

__all__ = ["BearerAuth"]

_PROOF_ERRORS = ("invalid_dpop_proof", "use_dpop_nonce")


class BearerAuth(httpx.Auth):
    # The body is read before the first send, so the retry can send it again.
    requires_request_body = True

    def __init__(self, session: Session) -> None:
        self.session = session

    def _can_retry(self, response: httpx.Response) -> bool:
        # A refused DPoP proof or nonce is not cured by a new token: no refresh for those.
        return (
            response.status_code == 401
            and self.session.tokens.refresh_token is not None
            and challenge_error(response) not in _PROOF_ERRORS
        )

    def _set(self, request: httpx.Request) -> httpx.Request:
        """The session's current token, with a new DPoP proof for this request if bound."""
        tokens, signer = self.session.tokens, self.session.dpop
        if not tokens.is_dpop:
            request.headers["Authorization"] = f"Bearer {tokens.access_token}"
            request.headers.pop("DPoP", None)
            return request
        if signer is None:  # the cache refuses such an entry; a caller-built one
            raise ClientError("the access token is DPoP-bound but the session has no DPoP key")
        request.headers["Authorization"] = f"DPoP {tokens.access_token}"
        request.headers["DPoP"] = signer.proof(
            request.method, request.url, access_token=tokens.access_token
        )
        return request

    def _nonce_retry(self, response: httpx.Response) -> bool:
        """Remember a resource's nonce (§9: any answer may carry one); True when the answer asks
        for it and we had not used it (so one retry, never a loop)."""
        signer = self.session.dpop
        if signer is None or not self.session.tokens.is_dpop:
            return False
        return signer.remember(response) and is_nonce_challenge(response)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        token = self.session.access_token()
        response = yield self._set(request)
        if self._nonce_retry(response):
            response = yield self._set(request)
        challenge = step_up_challenge(response)
        if challenge is not None:
            response.read()  # the step-up may wait minutes for the user: free the connection
            self.session.step_up(challenge)
            yield self._set(request)
        elif self._can_retry(response):
            self.session.refresh(rejected=token)
            yield self._set(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        import anyio.to_thread  # httpx's own dependency; only async callers need it

        await request.aread()
        # The session does blocking I/O (file lock, token endpoint): keep it off the event loop.
        token = await anyio.to_thread.run_sync(self.session.access_token)
        response = yield self._set(request)
        if self._nonce_retry(response):
            response = yield self._set(request)
        challenge = step_up_challenge(response)
        if challenge is not None:
            await response.aread()
            await anyio.to_thread.run_sync(lambda: self.session.step_up(challenge))
            yield self._set(request)
        elif self._can_retry(response):
            await anyio.to_thread.run_sync(lambda: self.session.refresh(rejected=token))
            yield self._set(request)
