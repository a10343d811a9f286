"""Errors of the administration layer, with messages meant for a person."""

__all__ = [
    "Conflicting",
    "InvalidInput",
    "NotFoundError",
    "checked_description",
    "checked_external_id",
    "checked_name",
]


class InvalidInput(ValueError):
    """The request cannot be carried out as given; nothing was written."""


class Conflicting(InvalidInput):
    """The change conflicts with what exists (a taken name, a resource still in use)."""


class NotFoundError(LookupError):
    """The named user, app, resource or key does not exist."""


def checked_name(value: str, what: str = "the name") -> str:
    """A name for people: 1 to 200 characters, no control characters (nor NUL, which no
    database text column stores)."""
    value = value.strip()
    if not value or len(value) > 200:
        raise InvalidInput(f"{what} must be 1 to 200 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput(f"{what} must not contain control characters")
    return value


def checked_description(value: str, limit: int = 200, *, lines: bool = False) -> str:
    """A free-text description: at most `limit` characters, no control characters (but line
    breaks and tabs with `lines`)."""
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"the description must be at most {limit} characters")
    allowed = "\n\t" if lines else ""
    if any((ord(c) < 0x20 and c not in allowed) or ord(c) == 0x7F for c in value):
        raise InvalidInput("the description must not contain control characters")
    return value


def checked_external_id(value: str | None) -> str | None:
    """An identifier a provisioning system keeps for a user or group (SCIM `externalId`)."""
    if value is not None and not 0 < len(value) <= 255:
        raise InvalidInput("the external id must be 1 to 255 characters")
    return value
