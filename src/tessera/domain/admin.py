"""The identity domain's own administration: the admin API's audience and scope, and the
console app. Only users marked administrator may hold the admin scope."""

from __future__ import annotations

from tessera.domain.model import DEFAULT_DOMAIN

__all__ = [
    "ADMIN_SCOPE",
    "CONSOLE_CLIENT_ID",
    "OPERATOR_SCOPE",
    "SCIM_SCOPE",
    "admin_audience",
    "admin_only_scopes",
    "admin_scope",
    "console_client_id",
    "console_redirect",
    "is_console",
    "operator_scope",
    "scim_scope",
]

ADMIN_SCOPE = "urn:tessera:admin"
# Held by administrators of the default domain: manage domains and act inside any of them.
OPERATOR_SCOPE = "urn:tessera:operator"
# SCIM 2.0 provisioning (/scim/v2, /admin/v1/Users…) for an app of the domain's
# administrators, in client-credentials tokens only: administrators use the admin scope.
SCIM_SCOPE = "urn:tessera:scim"
CONSOLE_CLIENT_ID = "tessera-console"


def console_client_id(domain_id: str) -> str:
    """The console app's client id in a domain (client ids are unique across domains)."""
    return CONSOLE_CLIENT_ID if domain_id == DEFAULT_DOMAIN else f"{CONSOLE_CLIENT_ID}-{domain_id}"


def is_console(client_id: str) -> bool:
    return client_id == CONSOLE_CLIENT_ID or client_id.startswith(CONSOLE_CLIENT_ID + "-")


def operator_scope(issuer: str) -> str:
    """The canonical (Oracle-form) operator scope, of the default domain's admin API."""
    return f"{admin_audience(issuer)}{OPERATOR_SCOPE}"


def admin_only_scopes(issuer: str, domain_id: str) -> frozenset[str]:
    """The scopes only administrators may hold: the admin scope, and in the default domain the
    operator scope."""
    if domain_id == DEFAULT_DOMAIN:
        return frozenset((admin_scope(issuer), operator_scope(issuer)))
    return frozenset((admin_scope(issuer),))


def admin_audience(issuer: str) -> str:
    return f"{issuer}/admin"


def admin_scope(issuer: str) -> str:
    """The canonical (Oracle-form) admin scope."""
    return f"{admin_audience(issuer)}{ADMIN_SCOPE}"


def scim_scope(issuer: str) -> str:
    """The canonical (Oracle-form) provisioning scope of the domain's admin API."""
    return f"{admin_audience(issuer)}{SCIM_SCOPE}"


def console_redirect(issuer: str) -> str:
    return f"{issuer}/console/"
