"""JSON responses (orjson) with the headers every protocol response shares."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["CORS_ANY", "NO_STORE", "json_response"]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
CORS_ANY = {"Access-Control-Allow-Origin": "*"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )
