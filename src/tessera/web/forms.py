"""Reading request parameters safely (docs/security.md rule 28).

Form bodies must be `application/x-www-form-urlencoded` (RFC 6749 §3.2), UTF-8, and small;
repeated parameters are reported so that endpoints can refuse them (RFC 6749 §3.1, §3.2).
"""

from __future__ import annotations

from starlette.requests import Request

from tessera.oauth.errors import InvalidRequest
from tessera.shared.urlencoding import parse_pairs

__all__ = ["MAX_BODY", "Params", "parse_params", "read_form", "read_query"]

MAX_BODY = 64 * 1024
_MAX_FIELDS = 64


class Params(dict[str, str]):
    """Parameters with the names that were repeated."""

    duplicated: set[str]

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self.duplicated = set()
        for name, value in pairs:
            if name in self:
                self.duplicated.add(name)
            else:
                self[name] = value


def parse_params(raw: bytes | str) -> Params:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = parse_pairs(text, _MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the parameters are not valid UTF-8 form encoding") from None
    if any("\x00" in k or "\x00" in v for k, v in pairs):
        # No protocol value contains NUL, and PostgreSQL text cannot store one.
        raise InvalidRequest("the parameters contain a NUL character")
    # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    return Params([(k, v) for k, v in pairs if v != ""])


def read_query(request: Request) -> Params:
    return parse_params(request.scope.get("query_string", b""))


async def read_form(request: Request) -> Params:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise InvalidRequest("the request body is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise InvalidRequest("the request body is too large")
    return parse_params(bytes(body))
