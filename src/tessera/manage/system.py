"""Objects every identity domain has: the admin API's resource, the admin console's app and the
account pages' app (`/account/`, docs/mfa.md)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from datetime import datetime

from tessera.domain.admin import (
    SCIM_SCOPE,
    admin_audience,
    admin_only_scopes,
    console_client_id,
    console_redirect,
)
from tessera.domain.model import Client, ClientKind, Resource
from tessera.oauth.interaction.account import ACCOUNT_SCOPES, account_client_id, account_redirect
from tessera.store.protocols import Conflict, Store

__all__ = ["account_app", "ensure_system_objects", "system_objects"]


def system_objects(issuer: str, domain_id: str, now: datetime) -> tuple[Resource, Client]:
    """A domain's admin API resource and console app. In the default domain the admin API also
    has the operator scope (docs/domains.md); every domain's has the SCIM provisioning scope,
    for the apps administrators allow to provision (README, SCIM 2.0 provisioning)."""
    audience = admin_audience(issuer)
    only_admins = sorted(admin_only_scopes(issuer, domain_id))
    resource = Resource(
        id="admin-" + hashlib.sha256(audience.encode()).hexdigest()[:24],
        name=f"Tessera admin API ({issuer})",
        audience=audience,
        scopes=(*(s.removeprefix(audience) for s in only_admins), SCIM_SCOPE),
        created_at=now,
        access_ttl=900,
    )
    console = Client(
        client_id=console_client_id(domain_id),
        name="Tessera admin console",
        kind=ClientKind.PUBLIC,
        redirect_uris=(console_redirect(issuer),),
        grant_types=("authorization_code", "refresh_token"),
        allowed_scopes=("openid", "profile", *only_admins),
        created_at=now,
        post_logout_redirect_uris=(console_redirect(issuer),),
        access_ttl=900,
        refresh_ttl=3600,
        first_party=True,
    )
    return resource, console


def account_app(issuer: str, domain_id: str, now: datetime) -> Client:
    """The user's own account pages: first-party (no consent), public with PKCE, codes only
    (the pages consume their code and mint no token)."""
    return Client(
        client_id=account_client_id(domain_id),
        name="Your account",
        kind=ClientKind.PUBLIC,
        redirect_uris=(account_redirect(issuer),),
        grant_types=("authorization_code",),
        allowed_scopes=ACCOUNT_SCOPES,
        created_at=now,
        first_party=True,
    )


def _ensure_client(store: Store, wanted: Client) -> None:
    existing = store.clients.get(wanted.client_id)
    if existing is None:
        with contextlib.suppress(Conflict):  # another node created it first
            store.clients.add(wanted)
    elif (existing.redirect_uris, existing.allowed_scopes) != (
        wanted.redirect_uris,
        wanted.allowed_scopes,
    ):  # the issuer changed, or an older version made it
        store.clients.update(
            replace(wanted, created_at=existing.created_at, version=existing.version + 1)
        )


def ensure_system_objects(store: Store, issuer: str, now: datetime) -> None:
    """Create (idempotently, on any number of nodes) the admin resource, the console app and
    the account pages' app, and bring them up to date when the issuer or their scopes changed."""
    resource, wanted = system_objects(issuer, store.domain_id, now)
    found = store.resources.get_by_audience(resource.audience)
    if found is None:
        with contextlib.suppress(Conflict):  # another node created it first
            store.resources.add(resource)
    elif found.scopes != resource.scopes:
        store.resources.update(replace(found, scopes=resource.scopes))
    _ensure_client(store, wanted)
    _ensure_client(store, account_app(issuer, store.domain_id, now))
