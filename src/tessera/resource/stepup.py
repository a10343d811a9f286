"""Per-route authentication requirements: RFC 9470 (OAuth 2.0 Step Up Authentication
Challenge Protocol) on the resource-server side.

A route may require an authentication level (`acr`, §3 `acr_values`) and a maximum age of the
user's sign-in (§3 `max_age`, compared with the token's `auth_time`, §5). A token that carries
the route's scopes but not this answers 401 `insufficient_user_authentication` with a challenge
naming the whole requirement, so that the client's new authorization request (§4) can meet all
of it at once.

Levels: a known Tessera level (`tessera.shared.acr`) is met by itself or a higher one; any other
value only by itself. A token without `auth_time` never meets a `max_age`. A client's own token
(`sub_type` "client", the client credentials grant) has no user authentication at all, so a
route with a requirement refuses it with the same challenge: RFC 9470 concerns user sign-in,
and no user signed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tessera.resource.errors import InsufficientUserAuthenticationError
from tessera.resource.validator import AccessToken
from tessera.shared.acr import meets

__all__ = ["AuthRequirement", "requirement"]

# An acr value is sent in a quoted auth-param and a space-separated list (§3): printable ASCII,
# no space, no `"` or `\`.
_ACR_VALUE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,512}$")
_MAX_AGE_LIMIT = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)
class AuthRequirement:
    """What a route asks of the user's sign-in: any one of `acr_values` (in order of
    preference), and a sign-in at most `max_age` seconds old."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None

    def __post_init__(self) -> None:
        for value in self.acr_values:
            if not isinstance(value, str) or not _ACR_VALUE.match(value):
                raise ValueError(f"not an acr value: {value!r} (printable ASCII, no spaces)")
        age = self.max_age
        if age is not None and (
            not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= _MAX_AGE_LIMIT
        ):
            raise ValueError(f"max_age must be a whole number of seconds >= 0, not {age!r}")

    def __bool__(self) -> bool:
        return bool(self.acr_values) or self.max_age is not None

    def unmet(self, token: AccessToken, now: float, leeway: float) -> str | None:
        """Why `token` does not meet the requirement (a description), or None."""
        if not self:
            return None
        if not token.is_user:
            return "this request needs a signed-in user; a client's own token has none"
        if self.acr_values and not meets(token.acr, self.acr_values):
            return "this request needs a stronger sign-in"
        if self.max_age is not None:
            if token.auth_time is None:
                return "this request needs a recent sign-in; the token does not say when"
            # The leeway covers clock skew and the seconds the new sign-in itself takes.
            if now - token.auth_time > self.max_age + leeway:
                return "this request needs a more recent sign-in"
        return None

    def check(self, token: AccessToken, now: float, leeway: float) -> None:
        """Raise the RFC 9470 §3 error (401) unless `token` meets the requirement."""
        reason = self.unmet(token, now, leeway)
        if reason is not None:
            raise InsufficientUserAuthenticationError(
                reason, acr_values=self.acr_values, max_age=self.max_age
            )


def requirement(
    acr: str | Iterable[str] | None = None, max_age: int | None = None
) -> AuthRequirement:
    """An `AuthRequirement` from the adapters' arguments: `acr` one value, a space-separated
    list, or an iterable of values; `ValueError` for a value that cannot be sent."""
    if acr is None:
        values: tuple[str, ...] = ()
    elif isinstance(acr, str):
        values = tuple(acr.split())
    else:
        values = tuple(item for value in acr for item in str(value).split())
    return AuthRequirement(tuple(dict.fromkeys(values)), max_age)
