"""How federated sign-in says no (docs/federation.md): `UpstreamError` for what the upstream
provider or its answer got wrong (raised), `Refused` for what our rules do not allow (returned).

Both carry a `reason`, a short sentence safe to show the person signing in (written by us,
never copied from the upstream's answer, so no upstream-controlled text or HTML reaches the
page), and a `detail` for the audit log, the administrator's test page and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_DETAIL", "Refused", "UpstreamError", "clipped"]

MAX_DETAIL = 500


def clipped(value: object, limit: int = 200) -> str:
    """An upstream-supplied value for a `detail`: printable, at most `limit` characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UpstreamError(Exception):
    """The upstream provider, or what came back from it, cannot be accepted."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail[:MAX_DETAIL]


@dataclass(frozen=True, slots=True)
class Refused:
    """Our rules refuse the sign-in or the link; nothing was written."""

    reason: str
    detail: str
