"""One renderer for protocol errors: RFC 6749 §5.2 JSON, RFC 6750 §3 `WWW-Authenticate`."""

from __future__ import annotations

from starlette.responses import Response

from tessera.oauth.errors import InsufficientScope, InvalidClient, OAuthError
from tessera.web.responses import NO_STORE, json_response

__all__ = ["bearer_challenge", "oauth_error_response"]


def bearer_challenge(exc: OAuthError | None) -> str:
    """RFC 6750 §3: the `WWW-Authenticate: Bearer …` value."""
    if exc is None:
        return 'Bearer realm="tessera"'
    parts = ['Bearer realm="tessera"', f'error="{exc.error}"']
    if exc.description:
        parts.append('error_description="{}"'.format(exc.description.replace('"', "'")))
    if isinstance(exc, InsufficientScope) and exc.scope:
        parts.append(f'scope="{exc.scope}"')
    return ", ".join(parts)


def oauth_error_response(exc: OAuthError, *, bearer: bool = False) -> Response:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient):
        # RFC 6749 §5.2: 401 with the scheme the client should use.
        headers["WWW-Authenticate"] = 'Basic realm="tessera", charset="UTF-8"'
    elif bearer:
        headers["WWW-Authenticate"] = bearer_challenge(exc)
    if exc.status == 503:
        headers["Retry-After"] = "1"
    return json_response(exc.body(), exc.status, headers=headers)
