"""Objects every identity domain has: the admin API's resource and the admin console's app."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from datetime import datetime

from tessera.domain.admin import (
    ADMIN_SCOPE,
    CONSOLE_CLIENT_ID,
    admin_audience,
    admin_scope,
    console_redirect,
)
from tessera.domain.model import Client, ClientKind, Resource
from tessera.store.protocols import Conflict, Store

__all__ = ["ensure_system_objects"]


def ensure_system_objects(store: Store, issuer: str, now: datetime) -> None:
    """Create (idempotently, on any number of nodes) the admin resource and the console app."""
    audience = admin_audience(issuer)
    if store.resources.get_by_audience(audience) is None:
        resource = Resource(
            id="admin-" + hashlib.sha256(audience.encode()).hexdigest()[:24],
            name=f"Tessera admin API ({issuer})",
            audience=audience,
            scopes=(ADMIN_SCOPE,),
            created_at=now,
            access_ttl=900,
        )
        with contextlib.suppress(Conflict):  # another node created it first
            store.resources.add(resource)
    wanted = Client(
        client_id=CONSOLE_CLIENT_ID,
        name="Tessera admin console",
        kind=ClientKind.PUBLIC,
        redirect_uris=(console_redirect(issuer),),
        grant_types=("authorization_code", "refresh_token"),
        allowed_scopes=("openid", "profile", admin_scope(issuer)),
        created_at=now,
        post_logout_redirect_uris=(console_redirect(issuer),),
        access_ttl=900,
        refresh_ttl=3600,
        first_party=True,
    )
    existing = store.clients.get(CONSOLE_CLIENT_ID)
    if existing is None:
        with contextlib.suppress(Conflict):
            store.clients.add(wanted)
    elif existing.redirect_uris != wanted.redirect_uris:  # the issuer changed
        store.clients.update(
            replace(wanted, created_at=existing.created_at, version=existing.version + 1)
        )
