"""The demo domain (`tessera serve --demo`) declares Oracle Integration's roles on the integration
resource and grants them so that `make run`'s documented flows work: the administrator and the
confidential app are ServiceAdministrators, Alice a ServiceDeveloper, ServiceInvoker and
ServiceMonitor (docs/groups-and-roles.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tessera.manage.demo import DEMO_AUDIENCE, bootstrap_demo
from tessera.oauth.memberships import Memberships
from tessera.shared.integration_roles import INTEGRATION_ROLES
from tessera.store.memory import MemoryStore


def test_the_demo_declares_and_grants_the_integration_roles(tmp_path: Path) -> None:
    store = MemoryStore()
    demo = bootstrap_demo(store, b"p" * 32, tmp_path, datetime(2026, 12, 6, tzinfo=UTC))
    assert demo is not None
    resource = next(r for r in store.resources.list() if r.audience == DEMO_AUDIENCE)
    assert [(r.name, r.description) for r in resource.roles] == [
        (role.name, role.description) for role in INTEGRATION_ROLES
    ]
    users = {user.username: user.id for user in store.users.list()}
    memberships = Memberships(store)
    assert memberships.for_user(resource, users["admin"]).roles == ("ServiceAdministrator",)
    assert memberships.for_user(resource, users["alice"]).roles == (
        "ServiceDeveloper",
        "ServiceInvoker",
        "ServiceMonitor",
    )
    app = demo["confidential_app"]["client_id"]
    assert memberships.for_app(resource, app).roles == ("ServiceAdministrator",)
    # The public CLI app acts for users only: no role of its own.
    assert memberships.for_app(resource, demo["public_app"]["client_id"]).roles == ()
