"""Recovery codes: single-use codes a user writes down, for when the other factors are lost.

A code is 12 characters of Crockford's base32 alphabet (digits and lower-case letters without
i, l, o and u: 5 bits each, 60 bits a code), shown as `xxxx-xxxx-xxxx`. Reading it back
ignores case, spaces and dashes, and takes `o` for `0` and `i`/`l` for `1`, as Crockford's
decoding does, so a code copied by hand still works.

Codes are stored as HMAC-SHA256 under a server-side key (RFC 2104): 60 bits is beyond an
online search, and the key keeps a database dump alone from being searched offline.
"""

from __future__ import annotations

import secrets

from tessera.domain.hashing import keyed_hash

__all__ = ["ALPHABET", "CODE_LENGTH", "code_hash", "new_codes", "normalize"]

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
CODE_LENGTH = 12  # 12 x 5 = 60 bits
_GROUP = 4
_MAX_INPUT = 64  # a code with generous spacing; anything longer is not one (bounded work)
_MAX_CODES = 100
# Crockford's decoding of look-alikes, and the separators people type.
_READ = str.maketrans({"o": "0", "i": "1", "l": "1", " ": None, "-": None, "\t": None})


def new_codes(n: int = 10) -> list[str]:
    """`n` distinct new codes, `xxxx-xxxx-xxxx`, from `secrets`."""
    if not 1 <= n <= _MAX_CODES:
        raise ValueError(f"between 1 and {_MAX_CODES} recovery codes")
    codes: dict[str, None] = {}
    while len(codes) < n:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        codes[_grouped(raw)] = None
    return list(codes)


def _grouped(raw: str) -> str:
    return "-".join(raw[i : i + _GROUP] for i in range(0, len(raw), _GROUP))


def normalize(code: str) -> str:
    """The canonical form of a typed code (12 characters of `ALPHABET`), or "" when `code`
    cannot be a recovery code (wrong length or characters, or over-long input)."""
    if len(code) > _MAX_INPUT or not code.isascii():
        return ""
    canonical = code.lower().translate(_READ)
    if len(canonical) != CODE_LENGTH or any(c not in ALPHABET for c in canonical):
        return ""
    return canonical


def code_hash(key: bytes, code: str) -> str:
    """HMAC-SHA256 under `key` of the normalized code, base64url without padding: the stored
    form, and what a typed code is looked up by. `ValueError` when `code` cannot be a recovery
    code (check with `normalize` first to answer such input as a wrong code)."""
    canonical = normalize(code)
    if not canonical:
        raise ValueError("not a recovery code")
    if not key:
        raise ValueError("a recovery code key is required")
    return keyed_hash(key, f"recovery-code|{canonical}")
