"""The identity domain's own administration: the admin API's audience and scope, and the
console app. Only users marked administrator may hold the admin scope."""

from __future__ import annotations

__all__ = ["ADMIN_SCOPE", "CONSOLE_CLIENT_ID", "admin_audience", "admin_scope", "console_redirect"]

ADMIN_SCOPE = "urn:tessera:admin"
CONSOLE_CLIENT_ID = "tessera-console"


def admin_audience(issuer: str) -> str:
    return f"{issuer}/admin"


def admin_scope(issuer: str) -> str:
    """The canonical (Oracle-form) admin scope."""
    return f"{admin_audience(issuer)}{ADMIN_SCOPE}"


def console_redirect(issuer: str) -> str:
    return f"{issuer}/console/"
