"""CSRF tokens for the sign-in, consent and logout forms (docs/security.md rule 9).

A token is an HMAC-SHA256 (RFC 2104) of the form's purpose and a value bound to the browser:
the random browser id cookie for the sign-in form (there is no session yet), the session's own
secret for the consent and logout forms. A page of another site cannot read either, so it cannot
forge a form that passes.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Literal

from tessera.domain.hashing import new_token

__all__ = ["Purpose", "browser_id", "csrf_token", "csrf_valid"]

Purpose = Literal["login", "consent", "logout", "factor", "enroll", "account"]
_MAX_BROWSER_ID = 128


def csrf_token(key: bytes, purpose: Purpose, binding: str) -> str:
    return hmac.new(key, f"{purpose}:{binding}".encode(), sha256).hexdigest()


def csrf_valid(key: bytes, purpose: Purpose, binding: str | None, presented: str | None) -> bool:
    """Whether `presented` is the token of `purpose` for `binding`, in constant time."""
    if not binding or not presented:
        return False
    return hmac.compare_digest(csrf_token(key, purpose, binding), presented)


def browser_id(cookie: str | None) -> tuple[str, bool]:
    """The browser id the sign-in form is bound to, and whether it is new (then the caller
    sets the cookie): the cookie's value when it has a sane length, else a fresh random id."""
    if cookie and len(cookie) <= _MAX_BROWSER_ID:
        return cookie, False
    return new_token(16), True
