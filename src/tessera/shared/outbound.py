"""Fetching what an administrator or an app configured (a `jwks_uri`, an upstream provider's
endpoints): which URLs may be fetched (RFC 8414 §2, RFC 7591 §2: https; http only to loopback
on a development node) and how much of an answer is read (a size limit counted as the body
arrives, after decompression, and a deadline, so a slow drip cannot hold a worker thread).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from tessera.shared.settings import is_loopback_host

__all__ = ["AnswerRefused", "read_limited", "url_problem"]


def url_problem(url: object, *, max_length: int, allow_insecure_loopback: bool) -> str | None:
    """Why `url` may not be fetched, as the end of a sentence about it ("… must be an https
    URL"); None when it may: absolute, printable ASCII, a host httpx can connect to, no user
    info or fragment, https (or http to a loopback host when allowed)."""
    if not isinstance(url, str) or not 0 < len(url) <= max_length:
        return "is missing, not a string, empty or too long"
    # Printable ASCII only (an internationalised host in its xn-- form): what the HTTP client
    # would otherwise refuse only when it fetches.
    if not all(" " < c < "\x7f" for c in url):
        return "has spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        httpx.URL(url).raw_host.decode("ascii").encode("idna")
    except (ValueError, UnicodeError, httpx.InvalidURL):
        return "is not a URL"
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return "needs a host and no user info or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_insecure_loopback and is_loopback_host(host):
        return None
    return "must be an https URL"


class AnswerRefused(Exception):
    """An answer too large (`too_large`) or too slow to arrive."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__(message)
        self.too_large = too_large


def read_limited(response: httpx.Response, max_bytes: int, deadline: float, what: str) -> bytes:
    """The body of a streamed `response`, at most `max_bytes` (the declared length is checked
    first), read before `time.monotonic()` passes `deadline`; `AnswerRefused` otherwise."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise AnswerRefused(f"{what} is larger than {max_bytes} bytes", too_large=True)
    body = bytearray()
    for chunk in response.iter_bytes():  # counted after decompression: no compressed bomb
        body += chunk
        if len(body) > max_bytes:
            raise AnswerRefused(f"{what} is larger than {max_bytes} bytes", too_large=True)
        if time.monotonic() > deadline:
            raise AnswerRefused(f"{what} took too long to arrive", too_large=False)
    return bytes(body)
