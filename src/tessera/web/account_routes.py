"""Every route of the account pages (docs/mfa.md), for the app to mount in each domain."""

from __future__ import annotations

from tessera.web.account import ACCOUNT_ROUTES
from tessera.web.account_flow import ACCOUNT_FLOW_ROUTES
from tessera.web.account_reset import RESET_ROUTES
from tessera.web.account_security import ACCOUNT_SECURITY_ROUTES

__all__ = ["ACCOUNT_PAGE_ROUTES", "ACCOUNT_POSTS"]

ACCOUNT_PAGE_ROUTES = [
    *ACCOUNT_FLOW_ROUTES,
    *ACCOUNT_ROUTES,
    *ACCOUNT_SECURITY_ROUTES,
    *RESET_ROUTES,
]
# The forms they answer: a body too large is refused with a page, not JSON.
ACCOUNT_POSTS = frozenset(
    route.path for route in ACCOUNT_PAGE_ROUTES if route.methods and "POST" in route.methods
)
