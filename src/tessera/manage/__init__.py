"""Administration of an identity domain: the rules shared by the CLI and the admin API.

Each function validates its input (raising `InvalidInput` with a message for a person), then
writes through the store. Nothing here knows about HTTP or terminals.
"""

from tessera.manage.errors import InvalidInput, NotFoundError

__all__ = ["InvalidInput", "NotFoundError"]
