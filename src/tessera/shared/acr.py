"""Authentication levels (`acr`) and methods (`amr`), shared by the identity domain and the
resource-server library (docs/mfa.md).

`amr` values are RFC 8176's: `pwd` a password, `otp` a one-time code (an authenticator app or
a recovery code), `hwk` / `swk` a passkey kept in hardware / synced between devices, `user` the
authenticator's user verification, `mfa` more than one factor; and ours, `fed`, a sign-in
through an upstream provider. The `acr` of a sign-in follows
from its methods, on three ordered levels; a request for a level is met by it or a higher one.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ACR_LEVELS",
    "ACR_MFA",
    "ACR_PASSWORD",
    "ACR_PHISHING_RESISTANT",
    "PASSKEY_METHODS",
    "acr_for",
    "level_of",
    "meets",
    "with_methods",
]

ACR_PASSWORD = "urn:tessera:acr:password"  # one factor: a password (or a recovery path)
ACR_MFA = "urn:tessera:acr:mfa"  # two factors, one of them may be phished (a TOTP code)
ACR_PHISHING_RESISTANT = "urn:tessera:acr:phishing-resistant"  # a passkey took part

ACR_LEVELS: dict[str, int] = {ACR_PASSWORD: 1, ACR_MFA: 2, ACR_PHISHING_RESISTANT: 3}
PASSKEY_METHODS = frozenset({"hwk", "swk"})
# Methods that are a factor of their own (what `mfa` counts). `fed` (ours, docs/federation.md)
# is a sign-in at an upstream provider: one factor, as a password here is, so a second factor
# after it makes two.
_FACTORS = frozenset({"pwd", "fed", "otp", "hwk", "swk"})


def acr_for(amr: Iterable[str]) -> str:
    """The level a sign-in with these methods reached."""
    methods = set(amr)
    if "mfa" not in methods:
        return ACR_PASSWORD
    # A passkey signs the origin it is used on: with user verification (a passwordless
    # sign-in) or after a password it is two factors, and phishing-resistant.
    return ACR_PHISHING_RESISTANT if methods & PASSKEY_METHODS else ACR_MFA


def with_methods(amr: Iterable[str], *methods: str) -> tuple[str, ...]:
    """`amr` with `methods` added (in order, once each), and `mfa` when two factors were used."""
    out = [m for m in dict.fromkeys((*amr, *methods)) if m != "mfa"]
    factors = _FACTORS.intersection(out)
    if len(factors) >= 2 or ("user" in out and factors & PASSKEY_METHODS):
        out.append("mfa")
    return tuple(out)


def level_of(acr: str | None) -> int:
    """0 for an unknown or missing value."""
    return ACR_LEVELS.get(acr or "", 0)


def meets(acr: str | None, wanted: Iterable[str]) -> bool:
    """Whether a sign-in of level `acr` satisfies one of the `wanted` values (a known level at
    or above it; an unknown value is met only by itself)."""
    have = level_of(acr)
    for value in wanted:
        need = level_of(value)
        if (need and have >= need) or value == acr:
            return True
    return False
