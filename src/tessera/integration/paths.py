"""Path templates of REST triggers (`/orders/{id}`) and the URL templates of `invoke` steps.

A template is `/`-separated segments, each a literal or one `{name}` parameter that matches a
whole non-empty segment. URL templates use the same `{name}` placeholders, filled with the
trigger's path parameters, percent-encoded so a value cannot add path segments or a query.
A parameter that is a dot segment (`.`, `..`, RFC 3986 §5.2.4) or holds `/` or `\\`, also once
percent-decoded (`%2e%2e`, `.%2E`, `%2F`), is refused before it reaches a backend: the backend
(or a proxy before it) would resolve it and the integration's credentials would reach another
resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

__all__ = [
    "PathTemplate",
    "TemplateError",
    "fill_url",
    "parse_path",
    "unsafe_parameter",
    "url_placeholders",
]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]{0,63})\}$")
_LITERAL = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$")  # RFC 3986 pchar, unreserved-ish
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


class TemplateError(ValueError):
    """A template that is not well formed."""


@dataclass(frozen=True, slots=True)
class PathTemplate:
    template: str
    params: tuple[str, ...]
    _pattern: re.Pattern[str]

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` matches, else None."""
        found = self._pattern.match(path or "/")
        return None if found is None else found.groupdict()


@lru_cache(maxsize=1024)
def parse_path(template: str) -> PathTemplate:
    """Parse a path template; raise `TemplateError` saying what is wrong."""
    if not template.startswith("/"):
        raise TemplateError("a path template starts with /")
    if len(template) > 500:
        raise TemplateError("a path template has at most 500 characters")
    segments = template.strip("/").split("/") if template != "/" else []
    parts: list[str] = []
    params: list[str] = []
    for segment in segments:
        match = _PARAM.match(segment)
        if match:
            name = match.group(1)
            if name in params:
                raise TemplateError(f"the parameter {{{name}}} appears twice")
            params.append(name)
            parts.append(f"(?P<{name}>[^/]+)")
        elif _LITERAL.match(segment):
            parts.append(re.escape(segment))
        else:
            raise TemplateError(
                f"bad segment {segment!r}: use literal text or one {{name}} per segment"
            )
    pattern = re.compile("^/" + "/".join(parts) + "/?$" if parts else "^/?$")
    return PathTemplate(template, tuple(params), pattern)


def url_placeholders(url: str) -> set[str]:
    return set(_PLACEHOLDER.findall(url))


def fill_url(url: str, params: dict[str, str]) -> str:
    """Replace `{name}` with the percent-encoded path parameter (`/`, `?`, `#` encoded too)."""
    return _PLACEHOLDER.sub(lambda m: quote(params.get(m.group(1), ""), safe=""), url)


def unsafe_parameter(value: str) -> bool:
    """Whether a path parameter is, or decodes to, a dot segment or holds a path separator.

    Decoded until stable (at most a few rounds), so double encoding (`%252e`) is seen through.
    """
    for _ in range(4):
        if value in (".", "..") or "/" in value or "\\" in value:
            return True
        decoded = unquote(value)
        if decoded == value:
            return False
        value = decoded
    return True  # encoded more deeply than any honest client does
