"""`application/x-www-form-urlencoded` (the WHATWG URL standard's form encoding, which RFC 6749
§B and the authorization endpoint's query use), with a fast path for the plain values protocol
parameters mostly are.

`urllib.parse.parse_qsl` and `urlencode` unquote and quote every name and value; a login flow
parses and builds half a dozen queries. Here only the pieces that hold an escape (`%`, `+`) are
unquoted and only the values with a character outside the always-safe set are quoted: the
results are those of the standard library, which does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote_plus, unquote_plus

__all__ = ["TooManyFields", "encode_pairs", "parse_pairs"]

# quote_plus's characters that are never escaped (RFC 3986 §2.3 unreserved).
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


class TooManyFields(ValueError):
    """More fields than the caller allows."""


def parse_pairs(text: str, max_fields: int) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields, errors="strict")`.

    Raises `UnicodeDecodeError` for escapes that are not UTF-8, `TooManyFields` past the limit.
    """
    if text.count("&") + 1 > max_fields:
        raise TooManyFields(f"more than {max_fields} fields")
    pairs: list[tuple[str, str]] = []
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "%" in piece or "+" in piece:
            name = unquote_plus(name, errors="strict")
            value = unquote_plus(value, errors="strict")
        pairs.append((name, value))
    return pairs


def _quoted(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else quote_plus(value)


def encode_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """`urlencode(pairs)` for string names and values."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in pairs)
