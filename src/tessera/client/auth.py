"""`httpx.Auth` with the bearer token of a `Session` (RFC 6750 §2.1).

The token is refreshed a little before it expires; a 401 answer (an expired or revoked token
the clock did not foresee) makes one refresh and one retry, never more. A 401
`insufficient_user_authentication` challenge (RFC 9470 §3) instead makes the session sign in
again for what the API asked (or raise `StepUpRequired`) and retry once: one step-up per
request, never a loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from tessera.client.stepup import step_up_challenge

if TYPE_CHECKING:
    from tessera.client.session import Session

__all__ = ["BearerAuth"]


class BearerAuth(httpx.Auth):
    # The body is read before the first send, so the retry can send it again.
    requires_request_body = True

    def __init__(self, session: Session) -> None:
        self.session = session

    def _can_retry(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and self.session.tokens.refresh_token is not None

    def _set(self, request: httpx.Request, token: str) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        token = self.session.access_token()
        response = yield self._set(request, token)
        challenge = step_up_challenge(response)
        if challenge is not None:
            response.read()  # the step-up may wait minutes for the user: free the connection
            self.session.step_up(challenge)
            yield self._set(request, self.session.tokens.access_token)
        elif self._can_retry(response):
            self.session.refresh(rejected=token)
            yield self._set(request, self.session.tokens.access_token)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        import anyio.to_thread  # httpx's own dependency; only async callers need it

        await request.aread()
        # The session does blocking I/O (file lock, token endpoint): keep it off the event loop.
        token = await anyio.to_thread.run_sync(self.session.access_token)
        response = yield self._set(request, token)
        challenge = step_up_challenge(response)
        if challenge is not None:
            await response.aread()
            await anyio.to_thread.run_sync(lambda: self.session.step_up(challenge))
            yield self._set(request, self.session.tokens.access_token)
        elif self._can_retry(response):
            await anyio.to_thread.run_sync(lambda: self.session.refresh(rejected=token))
            yield self._set(request, self.session.tokens.access_token)
