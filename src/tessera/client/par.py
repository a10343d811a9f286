"""Pushed authorization requests (RFC 9126).

The login POSTs its authorization parameters to the server's
`pushed_authorization_request_endpoint`, authenticated as the app (a public app sends its
`client_id` only, §2), and gets a one-time `request_uri` (§2.2); the browser then opens
`authorization_endpoint?client_id=…&request_uri=…` (§4). Nothing of the request travels through
the browser, where it could be read or changed, and the server checks it before the user sees
a page: a refused request fails the login at once with the OAuth error (§2.3).

`tessera.client` pushes whenever the server advertises the endpoint (`par=False`,
`tessera login --no-par`, sends a plain request): that is what servers requiring PAR for some
apps only (per-app `require_pushed_authorization_requests`) need, and it is never worse for
the others. The `request_uri` is short-lived (Tessera: 60 s) and used once: the URL must be
opened soon, and is not fetched beforehand (the plain request's preflight would use it up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from tessera.client.errors import ClientError, PushedRequestError

__all__ = ["PushedRequest", "pushed_authorization_url", "read_pushed_response", "with_query"]

_MAX_REQUEST_URI = 2048

# What to do about each error of RFC 9126 §2.3 / RFC 6749 §5.2 / §4.1.2.1.
_HINTS = {
    "invalid_client": (
        "check --client-id and how the app authenticates: --private-key FILE for an app "
        "registered for private_key_jwt (with the key whose public part is registered), "
        "--client-secret-stdin for a secret; a public app needs neither"
    ),
    "unauthorized_client": "the app may not use the authorization code grant (its grant types)",
    "invalid_scope": "check the --scope values and that the app may ask for them",
    "invalid_redirect_uri": (
        "register the redirect URI http://127.0.0.1/callback (any port) for the app"
    ),
    "invalid_request": (
        "check --client-id and --scope, and that the app is registered with the redirect URI "
        "http://127.0.0.1/callback (any port)"
    ),
}


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """The answer of RFC 9126 §2.2."""

    request_uri: str
    expires_in: int | None = None


def _json_object(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_pushed_response(response: httpx.Response) -> PushedRequest:
    """The `request_uri` of a successful push (201, §2.2); `PushedRequestError` with the
    OAuth error and what to do for a refusal (§2.3)."""
    data = _json_object(response)
    if response.status_code in (200, 201):
        uri = data.get("request_uri") if data is not None else None
        if not isinstance(uri, str) or not 0 < len(uri) <= _MAX_REQUEST_URI:
            raise ClientError(
                "the pushed authorization request endpoint answered without a request_uri"
            )
        expires = data.get("expires_in") if data is not None else None
        valid = isinstance(expires, int) and not isinstance(expires, bool) and expires > 0
        return PushedRequest(uri, expires if valid else None)
    if response.status_code in (404, 405):
        raise PushedRequestError(
            "not_found",
            f"HTTP {response.status_code} from the endpoint",
            status=response.status_code,
            hint="the identity domain advertises PAR but does not serve it: try --no-par",
        )
    if data is not None and isinstance(data.get("error"), str):
        error = data["error"]
        description = data.get("error_description")
        raise PushedRequestError(
            error,
            description if isinstance(description, str) else None,
            status=response.status_code,
            hint=_HINTS.get(error),
        )
    raise PushedRequestError(
        "server_error", f"HTTP {response.status_code}", status=response.status_code
    )


def with_query(endpoint: str, params: Mapping[str, str]) -> str:
    """`endpoint` with `params` added to its query (RFC 6749 §3.1: it may have one already)."""
    return endpoint + ("&" if urlsplit(endpoint).query else "?") + urlencode(params)


def pushed_authorization_url(authorization_endpoint: str, client_id: str, request_uri: str) -> str:
    """Where the browser goes: the authorization endpoint with the pushed request (§4)."""
    return with_query(authorization_endpoint, {"client_id": client_id, "request_uri": request_uri})
