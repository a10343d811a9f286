"""Protocol errors as HTTP answers: RFC 6749 §5.2 JSON with the headers of
`tessera.shared.oauth_errors` (the same renderer resource servers use)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from tessera.oauth.errors import (
    InsufficientScope,
    InvalidClientAssertion,
    MissingToken,
    OAuthError,
    TooManyRequests,
)
from tessera.shared import oauth_errors
from tessera.web.responses import NO_STORE, json_response

__all__ = ["REALM", "oauth_error_response"]

REALM = "tessera"


def oauth_error_response(
    exc: OAuthError,
    *,
    bearer: bool = False,
    basic: bool = True,
    dpop_algs: Sequence[str] = (),
) -> Response:
    """The answer to `exc`; `bearer` for a protected resource (userinfo), which challenges per
    RFC 6750 §3; `basic`: the client sent an Authorization header (RFC 6749 §5.2 then asks for
    the Basic challenge with `invalid_client`); `dpop_algs`: the resource also takes DPoP
    (RFC 9449 §7.1, §7.2: a `DPoP` challenge too, alone when `exc.dpop_only`). A DPoP nonce
    of the error (`exc.dpop_nonce`, §8, §9) goes in `DPoP-Nonce`. Only the public description
    is rendered, never `exc.debug`."""
    headers = oauth_errors.error_headers(
        None if isinstance(exc, MissingToken) else exc.error,
        exc.status,
        realm=REALM,
        bearer=bearer,
        description=exc.description,
        scope=exc.scope if isinstance(exc, InsufficientScope) else "",
        basic=not isinstance(exc, InvalidClientAssertion),
        dpop_algs=dpop_algs,
        dpop_only=exc.dpop_only,
        dpop_nonce=exc.dpop_nonce,
    )
    if isinstance(exc, TooManyRequests):  # RFC 6585 §4
        headers["Retry-After"] = str(exc.retry_after)
    return json_response(exc.body(), exc.status, headers={**NO_STORE, **headers})
