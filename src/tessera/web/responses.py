"""JSON responses (orjson) with the headers every protocol response shares."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CORS_ANY", "CORS_PREFLIGHT", "NO_STORE", "cors_preflight", "json_response"]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
# RFC 9449 §7.1, §8: a browser app reads the DPoP challenge and the next nonce only when they
# are exposed to it.
CORS_ANY = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "WWW-Authenticate, DPoP-Nonce",
}
CORS_PREFLIGHT = {
    **CORS_ANY,
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, DPoP",
    "Access-Control-Max-Age": "600",
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )


async def cors_preflight(_: Request) -> Response:
    """The CORS preflight of the endpoints browsers' apps call (token, revoke, userinfo)."""
    return Response(status_code=204, headers=CORS_PREFLIGHT)
