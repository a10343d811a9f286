"""The rule for usernames (docs/architecture.md, "Data model"): what the CLI, the admin API,
SCIM provisioning and just-in-time accounts of federated sign-in (docs/federation.md) accept."""

from __future__ import annotations

import re

__all__ = ["MAX_USERNAME", "USERNAME_RULE", "valid_username"]

MAX_USERNAME = 200
# A letter or digit first, then letters, digits and . _ @ + -; at most 200 characters.
USERNAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199}")


def valid_username(value: str) -> bool:
    """Whether `value` is a username the domain accepts (the whole string: no trailing
    newline slips through as it would with `re.match` and `$`)."""
    return isinstance(value, str) and USERNAME_RULE.fullmatch(value) is not None
