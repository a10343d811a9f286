"""Reading an API's step-up challenge: RFC 9470 §3.

    WWW-Authenticate: Bearer error="insufficient_user_authentication",
        error_description="…", acr_values="urn:…:mfa", max_age="300"

`WWW-Authenticate` holds one or more challenges (RFC 9110 §11.6.1): an auth-scheme (matched
case-insensitively) and comma-separated auth-params, each `name=token` or `name="quoted
string"` (§5.6.4, with `\\` escapes); several challenges may share a header or come in several
headers. The parser is lenient: whatever it cannot read is skipped, and anything but a
`Bearer` (or `DPoP`, RFC 9449 §7.1) challenge with `error="insufficient_user_authentication"`
on a 401 is not a step-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

__all__ = ["INSUFFICIENT_USER_AUTHENTICATION", "StepUp", "parse_challenges", "step_up_challenge"]

INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"
_MAX_HEADER = 16384
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A parameter `name = value`, or a bare token (a scheme, or token68 we ignore), or a comma.
_PART = re.compile(
    rf"""\s*(?:
        (?P<name>{_TOKEN})\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<value>{_TOKEN}=*))
      | (?P<word>{_TOKEN}=*)
      | (?P<comma>,)
      | (?P<junk>.)
    )""",
    re.VERBOSE | re.DOTALL,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class StepUp:
    """What the API asked for: one of `acr_values` (in its order of preference) and/or a
    sign-in at most `max_age` seconds old."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    description: str | None = None

    def describe(self) -> str:
        wanted = []
        if self.acr_values:
            wanted.append("level " + " or ".join(self.acr_values))
        if self.max_age is not None:
            wanted.append(f"a sign-in at most {self.max_age} s old")
        return ", ".join(wanted) or "a new sign-in"


def parse_challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """The challenges of `WWW-Authenticate` header values: (scheme in lower case, params with
    lower-case names; the first of a repeated name wins)."""
    out: list[tuple[str, dict[str, str]]] = []
    for value in values:
        for match in _PART.finditer(value[:_MAX_HEADER]):
            if match.group("word") is not None:
                word = match.group("word")
                if not word.endswith("="):  # a scheme; a token68 (`abc==`) belongs to one
                    out.append((word.lower(), {}))
            elif match.group("name") is not None and out:
                quoted = match.group("quoted")
                text = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else match["value"]
                out[-1][1].setdefault(match.group("name").lower(), text)
    return out


def _max_age(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 10:
        return None
    return int(raw.strip())


def step_up_challenge(response: httpx.Response) -> StepUp | None:
    """The RFC 9470 §3 challenge of a 401 answer, or None when it is not one."""
    if response.status_code != 401:
        return None
    for scheme, params in parse_challenges(response.headers.get_list("www-authenticate")):
        # A DPoP-bound token is challenged with the DPoP scheme (RFC 9449 §7.1).
        if scheme in ("bearer", "dpop") and params.get("error") == INSUFFICIENT_USER_AUTHENTICATION:
            acr = tuple(dict.fromkeys(params.get("acr_values", "").split()))
            return StepUp(acr, _max_age(params.get("max_age")), params.get("error_description"))
    return None
