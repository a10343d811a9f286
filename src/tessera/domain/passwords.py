"""Password hashing (argon2id at OWASP's parameters) and the password policy.

OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1. A hash made with other
parameters verifies and reports that it needs a rehash.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "WeakPassword",
    "check_policy",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024  # bounds the hashing work an attacker can ask for
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "123456789012",
        "qwertyuiop",
        "letmein",
        "welcome",
        "iloveyou",
        "administrator",
        "changeme",
        "trustno1",
        "qwerty123456",
        "111111111111",
        "000000000000",
        "abcdefghijkl",
        "1q2w3e4r5t6y",
    }
)
_PADDING = "0123456789!@#$%^&*?.,;:_- "
# Verified against when the user does not exist, so timing does not tell: a hash of a random
# password nobody kept, at `_HASHER`'s parameters (a unit test holds it to them). Written out
# rather than hashed at import, which cost every process that imports this module 20 ms.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$8i6uUnYuvuWqPm5tdOvccQ"
    "$J2+ZeFXozgdFadATI9ybfYU1RLWtWdBJYd6Fa6lPoME"
)


class WeakPassword(ValueError):
    """The password breaks the policy; the message says how."""


def check_policy(password: str, *, username: str = "", min_length: int | None = None) -> None:
    """`min_length`: the identity domain's `password_min_length` (None: `MIN_PASSWORD_LENGTH`)."""
    if min_length is None:
        min_length = MIN_PASSWORD_LENGTH
    if not password or not password.strip():
        raise WeakPassword("the password is empty")
    if len(password) < min_length:
        raise WeakPassword(f"the password must have at least {min_length} characters")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at most {_MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    # A common word padded with digits or symbols ("Password1234!") is still that word.
    if lowered in _COMMON or lowered.strip(_PADDING) in _COMMON or len(set(password)) < 4:
        raise WeakPassword("the password is too common or too repetitive")
    if username and username.lower() in lowered:
        raise WeakPassword("the password must not contain the username")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (`password_hash=None`).

    An empty hash is treated like a missing user: it never verifies (not even with the
    password of the stand-in hash, were it known).
    """
    if len(password) > _MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)
