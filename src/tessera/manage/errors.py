"""Errors of the administration layer, with messages meant for a person."""

__all__ = ["InvalidInput", "NotFoundError"]


class InvalidInput(ValueError):
    """The request cannot be carried out as given; nothing was written."""


class NotFoundError(LookupError):
    """The named user, app, resource or key does not exist."""
