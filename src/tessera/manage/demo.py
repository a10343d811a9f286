"""The demo identity domain that `make run` asks for (`tessera serve --demo`; loopback only).

An administrator, a user, the integration service's resource with Oracle Integration's
application roles (docs/groups-and-roles.md), a confidential trusted app (the seed's "client
application") and a public PKCE app (the CLI). The administrator is a ServiceAdministrator; Alice
a ServiceDeveloper, ServiceInvoker and ServiceMonitor, so she can deploy, run and monitor the
README's flows; the confidential app a ServiceAdministrator (its client-credentials tokens).
Credentials are written once to `<data_dir>/demo-credentials.json` (mode 0600), because the app
secret is shown only once.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tessera.domain.model import Client, PrincipalKind, Resource, ResourceRole, User
from tessera.manage.apps import create_app
from tessera.manage.audit import Actor, store_actor
from tessera.manage.resources import create_resource
from tessera.manage.roles import Principal, grant_role
from tessera.manage.users import create_user
from tessera.shared.integration_roles import (
    INTEGRATION_ROLES,
    SERVICE_ADMINISTRATOR,
    SERVICE_DEVELOPER,
    SERVICE_INVOKER,
    SERVICE_MONITOR,
)
from tessera.shared.settings import is_loopback_host
from tessera.store.protocols import Store

__all__ = ["DEMO_AUDIENCE", "DEMO_MANAGE_SCOPE", "DEMO_SCOPE", "bootstrap_demo", "demo_refusal"]

DEMO_AUDIENCE = "https://integration.tessera.test"
DEMO_SCOPE = "urn:opc:resource:consumer::all"
# Deploying integrations (they call URLs with the service's credentials): the demo's own apps may
# ask for it; the identity domain does not yet restrict it to administrators (see README).
DEMO_MANAGE_SCOPE = "urn:tessera:integration:manage"
# Oracle's form of the demo scopes: `<audience><scope>`, the audience with its port.
_RESOURCE_SCOPE = f"{DEMO_AUDIENCE}:443{DEMO_SCOPE}"
_MANAGE_SCOPE = f"{DEMO_AUDIENCE}:443{DEMO_MANAGE_SCOPE}"
_ADMIN = ("admin", "Tessera-Demo-Root-2026")
_USER = ("alice", "Wonderland-Demo-2026")
_ALICE_ROLES = (SERVICE_DEVELOPER, SERVICE_INVOKER, SERVICE_MONITOR)


def demo_refusal(host: str, issuer: str, production: bool) -> str | None:
    """Why the demo, whose passwords are published, must not be created here; None if it may:
    only in development, listening on and named by a loopback address."""
    if production:
        return "the demo domain is never created with TESSERA_ENV=production"
    if not is_loopback_host(host):
        return (
            f"the demo domain's passwords are published: refusing it on --host {host}; "
            "serve it on 127.0.0.1, or create an administrator with "
            "`tessera admin users create <username> --admin` instead of --demo"
        )
    issuer_host = urlsplit(issuer).hostname or ""
    if not is_loopback_host(issuer_host):
        return (
            f"the demo domain's passwords are published: refusing it for the issuer {issuer}; "
            "use a loopback issuer (http://127.0.0.1:PORT) for the demo"
        )
    return None


def bootstrap_demo(
    store: Store, secret_pepper: bytes, data_dir: Path, now: datetime
) -> dict[str, Any] | None:
    """On a domain without users, create the demo and return its credentials; else None."""
    if store.users.list():
        return None
    actor = store_actor("system:demo", store, lambda: now)
    admin, alice = _demo_users(store, now, actor)
    resource = _demo_resource(store, now, actor)
    web, secret, cli = _demo_apps(store, secret_pepper, now, actor)
    grants = [
        (Principal(PrincipalKind.USER, admin.id, admin.username), (SERVICE_ADMINISTRATOR,)),
        (Principal(PrincipalKind.USER, alice.id, alice.username), _ALICE_ROLES),
        (Principal(PrincipalKind.APP, web.client_id, web.name), (SERVICE_ADMINISTRATOR,)),
    ]
    for principal, roles in grants:
        for role in roles:
            grant_role(
                store, resource=resource.id, role=role, principal=principal, now=now, actor=actor
            )
    credentials = {
        "admin": {"username": _ADMIN[0], "password": _ADMIN[1]},
        "user": {"username": _USER[0], "password": _USER[1], "sub": alice.id},
        "resource": {
            "audience": DEMO_AUDIENCE,
            "scope": _RESOURCE_SCOPE,
            "manage_scope": _MANAGE_SCOPE,
        },
        "confidential_app": {
            "client_id": web.client_id,
            "client_secret": secret,
            "redirect_uri": web.redirect_uris[0],
        },
        "public_app": {"client_id": cli.client_id, "redirect_uri": cli.redirect_uris[0]},
    }
    _write_credentials(data_dir / "demo-credentials.json", credentials)
    return credentials


def _demo_users(store: Store, now: datetime, actor: Actor) -> tuple[User, User]:
    """The administrator and Alice."""
    admin = create_user(
        store,
        username=_ADMIN[0],
        password=_ADMIN[1],
        now=now,
        actor=actor,
        display_name="Demo Administrator",
        email="admin@tessera.test",
        is_admin=True,
    )
    alice = create_user(
        store,
        username=_USER[0],
        password=_USER[1],
        now=now,
        actor=actor,
        display_name="Alice Example",
        email="alice@tessera.test",
    )
    return admin, alice


def _demo_resource(store: Store, now: datetime, actor: Actor) -> Resource:
    return create_resource(
        store,
        name="Integration service",
        audience=DEMO_AUDIENCE,
        scopes=[
            DEMO_SCOPE,
            DEMO_MANAGE_SCOPE,
            "urn:tessera:integration:monitor",
            "urn:tessera:integration:run",
        ],
        now=now,
        actor=actor,
        roles=[ResourceRole(role.name, role.description) for role in INTEGRATION_ROLES],
    )


def _demo_apps(
    store: Store, secret_pepper: bytes, now: datetime, actor: Actor
) -> tuple[Client, str | None, Client]:
    """The confidential integration client (and its secret) and the public CLI app."""
    web, secret = create_app(
        store,
        secret_pepper,
        name="Integration client (demo)",
        now=now,
        actor=actor,
        redirect_uris=["http://127.0.0.1:8080/callback"],
        post_logout_redirect_uris=["http://127.0.0.1:8080/"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        allowed_scopes=[
            "openid",
            "profile",
            "email",
            "offline_access",
            _RESOURCE_SCOPE,
            _MANAGE_SCOPE,
        ],
        # The demo's integration service runs with this app's credentials: it follows the
        # revocation feed and may introspect the integration resource's tokens.
        resource_server_for=[DEMO_AUDIENCE],
    )
    cli, _ = create_app(
        store,
        secret_pepper,
        name="Tessera CLI (demo)",
        now=now,
        actor=actor,
        public=True,
        redirect_uris=["http://127.0.0.1/callback"],
        allowed_scopes=["openid", "profile", "offline_access", _RESOURCE_SCOPE, _MANAGE_SCOPE],
    )
    return web, secret, cli


def _write_credentials(path: Path, credentials: dict[str, Any]) -> None:
    """The published demo passwords and the app's secret, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, indent=2)
