"""`GET /oauth2/v1/revocations` over HTTP: the long poll around `tessera.oauth.revocation_feed`.

A poll reads the store, answers when the core says so, and otherwise waits to be woken (a
revocation on this node, or one published through Redis, `tessera.web.wakeup`) or for the next
store poll. A client that went away ends its poll.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth import errors
from tessera.oauth.metadata import REVOCATION_FEED_PATH
from tessera.oauth.revocation_feed import (
    BATCH,
    POLL_SECONDS,
    answer_now,
    authenticate_reader,
    feed_body,
    parse_feed_query,
)
from tessera.web.bearer import single_authorization
from tessera.web.errors import oauth_error_response
from tessera.web.responses import NO_STORE, json_response
from tessera.web.services import services

__all__ = ["REVOCATION_FEED_ROUTES", "revocation_feed"]


async def revocation_feed(request: Request) -> Response:
    """The revocation feed for resource servers: events after `since`, long-polled."""
    svc = services(request)
    try:
        query = request.query_params
        names = ("since", "wait", "client_assertion", "client_assertion_type")
        repeated = {k for k in names if len(query.getlist(k)) > 1}
        since, wait = parse_feed_query(query, repeated)
        authorization = single_authorization(request)
        await run_in_threadpool(
            lambda: authenticate_reader(
                authorization,
                svc.client,
                svc.ctx.secret_pepper,
                svc.ctx.clock(),
                params=query,
                assertions=svc.assertions,
            )
        )
    except errors.OAuthError as exc:
        return oauth_error_response(exc)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        events = await run_in_threadpool(svc.ctx.store.revocations.since, since, BATCH)
        remaining = deadline - loop.time()
        if answer_now(events, remaining, svc.wakeup.closing) or await request.is_disconnected():
            break
        # Woken at once by a local or Redis-published revocation; else poll the database.
        await svc.wakeup.wait(min(POLL_SECONDS, remaining), svc.ctx.domain_id)
    return json_response(feed_body(events, since), headers=NO_STORE)


REVOCATION_FEED_ROUTES = [
    Route(REVOCATION_FEED_PATH, revocation_feed, methods=["GET"]),
]
