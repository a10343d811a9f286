"""Redirect URI rules: what may be registered, and what matches at the authorization endpoint.

RFC 6749 §3.1.2 (absolute URI, no fragment), RFC 9700 §4.1.3 (exact string matching),
RFC 8252 §7.1 (private-use schemes), §7.3 (loopback: any port), §8.3 (loopback over http).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "InvalidRedirectUri",
    "is_loopback_uri",
    "matches_registered",
    "validate_for_registration",
]

_MAX_LENGTH = 2000
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about", "ftp"})
# Loopback IP literals only: "localhost" can be re-bound by DNS or a hosts file (RFC 8252 §8.3).
_LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?(/[^#]*)?$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*$")
# Not allowed anywhere in a URI (RFC 3986 §2); browsers rewrite `\` to `/` (WHATWG URL), so
# `https://app.test\@evil.test/` would be one URI to us and another to the browser.
_NOT_IN_URIS = frozenset('\\"<>^`{|}')


class InvalidRedirectUri(ValueError):
    """A redirect URI that may not be registered; the message says why."""


def is_loopback_uri(uri: str) -> bool:
    """True for `http://127.0.0.1[:port]/…` and `http://[::1][:port]/…`."""
    match = _LOOPBACK.match(uri)
    return match is not None and _valid_port(match.group(2))


def _valid_port(port: str | None) -> bool:
    return port is None or 0 < int(port) < 65536


def validate_for_registration(uri: str) -> str:
    """Return `uri` unchanged if it may be registered, else raise `InvalidRedirectUri`.

    docs/security.md rule 5: no `http:` but loopback, no `javascript:`/`data:`, no fragment, no
    wildcard, no user info.
    """
    if not uri or len(uri) > _MAX_LENGTH:
        raise InvalidRedirectUri("a redirect URI must be 1 to 2000 characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri) or not uri.isascii():
        raise InvalidRedirectUri(
            "a redirect URI must be ASCII without spaces or control characters"
        )
    if "*" in uri:
        raise InvalidRedirectUri("wildcards are not allowed; register each URI exactly")
    if "#" in uri:
        raise InvalidRedirectUri("a redirect URI must not contain a fragment (RFC 6749 §3.1.2)")
    scheme, _, _ = uri.partition(":")
    if not _SCHEME.match(scheme) or ":" not in uri:
        raise InvalidRedirectUri("a redirect URI must be absolute, with a scheme")
    scheme = scheme.lower()
    if scheme in _FORBIDDEN_SCHEMES:
        raise InvalidRedirectUri(f"the {scheme}: scheme is not allowed")
    if not _NOT_IN_URIS.isdisjoint(uri):
        raise InvalidRedirectUri(
            'a redirect URI must not contain any of \\ " < > ^ ` { | } (RFC 3986 §2); '
            "percent-encode them"
        )
    if scheme == "http":
        if not is_loopback_uri(uri):
            raise InvalidRedirectUri(
                "http: is allowed only for loopback (http://127.0.0.1:PORT/… or "
                "http://[::1]:PORT/…); use https"
            )
        return uri
    if scheme == "https":
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise InvalidRedirectUri(f"not a valid URI: {exc}") from None
        if not parts.hostname or "@" in parts.netloc:
            raise InvalidRedirectUri("an https redirect URI needs a host and no user info")
        return uri
    # Private-use schemes of native apps must be reverse domain names (RFC 8252 §7.1).
    if "." not in scheme:
        raise InvalidRedirectUri(
            f"the {scheme}: scheme is not allowed; native apps use a reverse-domain scheme "
            "such as com.example.app:/callback"
        )
    return uri


def matches_registered(requested: str, registered: tuple[str, ...], *, native: bool = True) -> bool:
    """Exact string match (RFC 9700 §4.1.3).

    Loopback URIs of native apps may differ in the port only (RFC 8252 §7.3): for a public app
    (`native=True`) any registered loopback URI, for a confidential app only one registered
    without a port, which is how an administrator declares a native app that holds a secret.
    """
    if requested in registered:
        return True
    req = _LOOPBACK.match(requested)
    if req is None or not _valid_port(req.group(2)):
        return False
    for uri in registered:
        reg = _LOOPBACK.match(uri)
        if reg is None or (reg.group(2) is not None and not native):
            continue
        if reg.group(1) == req.group(1) and (reg.group(3) or "") == (req.group(3) or ""):
            return True
    return False
