"""The revocation feed's decisions: `GET /oauth2/v1/revocations` (docs/architecture.md,
"Revocation that reaches resource servers"; docs/security.md rules 25 and 30).

Who may read it (a confidential app registered as a resource server), its query (`since`, a
sequence number, and `wait`, seconds to long-poll), when a long poll answers, and the shape of
its answer. The HTTP side (`tessera.web.revocation_feed`) reads the store and waits.

The query is parsed strictly: `float()` alone takes `nan`, `inf`, `-1` and `1e999`, and `nan`
slips past `min`/`max` clamping (every comparison with it is false), so a poll would never end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tessera.domain.model import Client, RevocationEvent
from tessera.oauth import errors
from tessera.oauth.client_auth import AssertionCheck, authenticate_client

__all__ = [
    "BATCH",
    "MAX_WAIT_SECONDS",
    "POLL_SECONDS",
    "FeedQuery",
    "answer_now",
    "authenticate_reader",
    "feed_body",
    "parse_feed_query",
]

MAX_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.2  # how often a waiting poll reads the store when nothing wakes it
BATCH = 1000  # events per answer; a follower asks again from `last_seq`
_SINCE = re.compile(r"^[0-9]{1,18}$")
_WAIT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6})?$")  # plain decimal seconds, never negative

FeedQuery = tuple[int, float]


def parse_feed_query(query: Mapping[str, str], repeated: set[str]) -> FeedQuery:
    """`(since, wait)`, with `wait` capped at 30 s; malformed values are `invalid_request`."""
    errors.refuse_repeated(repeated)  # since, wait and the client assertion (RFC 6749 §3)
    since = query.get("since", "0")
    wait = query.get("wait", "0")
    if not _SINCE.match(since):
        raise errors.InvalidRequest("since must be a sequence number")
    if not _WAIT.match(wait):
        raise errors.InvalidRequest("wait must be a number of seconds, such as 20 or 2.5")
    return int(since), min(float(wait), MAX_WAIT_SECONDS)


def authenticate_reader(
    authorization: str | None,
    lookup: Callable[[str], Client | None],
    pepper: bytes,
    now: datetime,
    *,
    params: Mapping[str, str] | None = None,
    assertions: AssertionCheck | None = None,
) -> Client:
    """The app reading the feed: a confidential app that is registered as a resource server
    (docs/security.md rule 30), else `NotAResourceServer` (403). Anyone else could learn which
    tokens of other apps were revoked. It authenticates with Basic credentials (RFC 6749
    §2.3.1) or, this being a GET, with `client_assertion_type` and `client_assertion` in
    `params` (the query; RFC 7523 §2.2 names the form body, which a GET has not)."""
    form = {k: v for k, v in (params or {}).items() if k.startswith("client_assertion")}
    caller = authenticate_client(
        authorization, form, lookup, pepper, now, allow_public=False, assertions=assertions
    )
    if not caller.is_resource_server:
        raise errors.NotAResourceServer("only a resource server may read this feed")
    return caller


def answer_now(events: Sequence[RevocationEvent], remaining: float, closing: bool) -> bool:
    """Whether a long poll answers now: it has events, its wait is over, or the node is
    shutting down (the follower resumes from `last_seq` on another node or after a restart)."""
    return bool(events) or remaining <= 0 or closing


def feed_body(events: Sequence[RevocationEvent], since: int) -> dict[str, Any]:
    """The answer: the events (times in seconds since the epoch) and the sequence number to
    ask from next (`since` itself when there was nothing new)."""
    return {
        "events": [
            {
                "seq": e.seq,
                "kind": e.kind.value,
                "key": e.key,
                "not_before": e.not_before.timestamp(),
                "expires_at": e.expires_at.timestamp(),
            }
            for e in events
        ],
        "last_seq": events[-1].seq if events else since,
    }
