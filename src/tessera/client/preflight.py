"""Checking an authorization request before the user is sent to the browser.

An identity domain that does not know the client, or for which the `redirect_uri` is not
registered, must not redirect back (RFC 6749 §4.1.2.1): it shows the user an error page, and the
loopback listener would wait in vain until its timeout. So the CLI first fetches the
authorization URL itself, without following redirects: the login (or consent) page, or a
redirect to it, means the request is acceptable; a 4xx/5xx error page, or a redirect carrying
`error=` back to our redirect URI, fails the login at once with what to check.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from tessera.client.errors import LoginError

__all__ = ["check_authorization_request", "preflight_error"]

_MESSAGE = re.compile(r'<p class="message">(.*?)</p>', re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _page_message(body: str) -> str | None:
    """The message of the identity domain's error page, as plain text (None if none)."""
    found = _MESSAGE.search(body[:65536])
    if found is None:
        return None
    text = " ".join(html.unescape(_TAGS.sub("", found.group(1))).split())
    return text[:300] or None


def preflight_error(
    status: int, location: str | None, body: str, *, client_id: str, redirect_uri: str
) -> LoginError | None:
    """The error of an authorization request answered with `status` (None: it is fine)."""
    if 300 <= status < 400:
        if location is None or not location.startswith(redirect_uri):
            return None  # on to the login page
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if "error" not in params:
            return None
        description = params.get("error_description")
        return LoginError(
            f"the identity domain refused the sign-in request ({params['error']}"
            + (f": {description})" if description else ")"),
            hint="check the --scope values and that the app may ask for them",
        )
    if status < 400:
        return None
    message = _page_message(body)
    return LoginError(
        f"the identity domain refused the sign-in request for client {client_id!r} "
        f"(HTTP {status}" + (f": {message})" if message else ")"),
        hint=(
            "check --client-id and --issuer, and that the app is registered there with the "
            "redirect URI http://127.0.0.1/callback (any port) and the authorization code grant"
        ),
    )


def check_authorization_request(
    http: httpx.Client | None, url: str, *, client_id: str, redirect_uri: str
) -> None:
    """Fetch the authorization URL once (no redirects followed); `LoginError` if refused."""
    client = http or httpx.Client(timeout=10.0)
    try:
        response = client.get(url, follow_redirects=False, headers={"Accept": "text/html"})
    except httpx.HTTPError as exc:
        raise LoginError(
            f"cannot reach the authorization endpoint ({exc.__class__.__name__}: {exc})",
            hint="check the --issuer URL and your network",
        ) from None
    finally:
        if http is None:
            client.close()
    error = preflight_error(
        response.status_code,
        response.headers.get("location"),
        response.text if response.status_code >= 400 else "",
        client_id=client_id,
        redirect_uri=redirect_uri,
    )
    if error is not None:
        raise error
