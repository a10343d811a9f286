"""The revocation feed's query: `since` (a sequence number) and `wait` (seconds to long-poll).

Parsed strictly: `float()` alone takes `nan`, `inf`, `-1` and `1e999`, and `nan` slips past
`min`/`max` clamping (every comparison with it is false), so a poll would never end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tessera.oauth import errors

__all__ = ["MAX_WAIT_SECONDS", "FeedQuery", "parse_feed_query"]

MAX_WAIT_SECONDS = 30.0
_SINCE = re.compile(r"^[0-9]{1,18}$")
_WAIT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6})?$")  # plain decimal seconds, never negative

FeedQuery = tuple[int, float]


def parse_feed_query(query: Mapping[str, str], repeated: set[str]) -> FeedQuery:
    """`(since, wait)`, with `wait` capped at 30 s; malformed values are `invalid_request`."""
    for name in ("since", "wait"):
        if name in repeated:
            raise errors.InvalidRequest(f"repeated parameter: {name}")
    since = query.get("since", "0")
    wait = query.get("wait", "0")
    if not _SINCE.match(since):
        raise errors.InvalidRequest("since must be a sequence number")
    if not _WAIT.match(wait):
        raise errors.InvalidRequest("wait must be a number of seconds, such as 20 or 2.5")
    return int(since), min(float(wait), MAX_WAIT_SECONDS)
