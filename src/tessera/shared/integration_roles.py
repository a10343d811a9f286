"""Oracle Integration's application roles, for the identity domain (which declares them on the
integration service's resource and puts the caller's in the access token's `roles` claim, RFC
9068 §2.2.3.1) and for the integration service (which enforces them). docs/groups-and-roles.md,
"Oracle Integration's roles", is the reference for administrators.

| role | may |
|---|---|
| ServiceAdministrator | everything: manage, read, monitor, run |
| ServiceDeveloper | manage (create, replace, delete, (de)activate), read, monitor; not run |
| ServiceMonitor | read integrations and monitoring (runs); not change or run anything |
| ServiceUser | read integrations and run activated ones |
| ServiceInvoker | run activated integrations, nothing else (a machine caller's role) |
| ServiceViewer | read integrations; not monitoring, not change, not run |

A request needs any one of its action's roles, and the scope it needed before (scopes say what
an app may do for a user, roles what the user may do; both must allow it). Reading integrations
is open to every role but ServiceInvoker: an invoker calls endpoints it was given, it needs no
design-time view of the service (Oracle's invoker role has none either).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "ALLOWED",
    "INTEGRATION_ROLES",
    "SERVICE_ADMINISTRATOR",
    "SERVICE_DEVELOPER",
    "SERVICE_INVOKER",
    "SERVICE_MONITOR",
    "SERVICE_USER",
    "SERVICE_VIEWER",
    "Action",
    "IntegrationRole",
    "allows",
]

SERVICE_ADMINISTRATOR = "ServiceAdministrator"
SERVICE_DEVELOPER = "ServiceDeveloper"
SERVICE_MONITOR = "ServiceMonitor"
SERVICE_USER = "ServiceUser"
SERVICE_INVOKER = "ServiceInvoker"
SERVICE_VIEWER = "ServiceViewer"


class IntegrationRole(NamedTuple):
    name: str
    description: str


INTEGRATION_ROLES: tuple[IntegrationRole, ...] = (
    IntegrationRole(
        SERVICE_ADMINISTRATOR, "Everything: manage, read, monitor and run integrations"
    ),
    IntegrationRole(
        SERVICE_DEVELOPER, "Create, change, activate and delete integrations; read monitoring"
    ),
    IntegrationRole(SERVICE_MONITOR, "Read integrations and monitoring (runs)"),
    IntegrationRole(SERVICE_USER, "Read integrations and run activated ones"),
    IntegrationRole(SERVICE_INVOKER, "Run activated integrations, nothing else"),
    IntegrationRole(SERVICE_VIEWER, "Read integrations only"),
)


class Action(StrEnum):
    """What a request of the integration service does, for the rule table `ALLOWED`."""

    MANAGE = "manage"  # create, replace, delete, activate, deactivate integrations
    READ = "read"  # GET integrations, GET integrations/{CODE}|{VERSION}
    MONITOR = "monitor"  # GET monitoring/…
    RUN = "run"  # …/flows/rest/… (an integration's trigger)


# Each tuple lists alternatives (any one will do), ServiceAdministrator last: the denial names
# the most specific role first.
ALLOWED: dict[Action, tuple[str, ...]] = {
    Action.MANAGE: (SERVICE_DEVELOPER, SERVICE_ADMINISTRATOR),
    Action.READ: (
        SERVICE_VIEWER,
        SERVICE_USER,
        SERVICE_MONITOR,
        SERVICE_DEVELOPER,
        SERVICE_ADMINISTRATOR,
    ),
    Action.MONITOR: (SERVICE_MONITOR, SERVICE_DEVELOPER, SERVICE_ADMINISTRATOR),
    Action.RUN: (SERVICE_INVOKER, SERVICE_USER, SERVICE_ADMINISTRATOR),
}


def allows(roles: Collection[str], action: Action) -> bool:
    """Whether any of `roles` (the token's `roles` claim) allows `action`."""
    return any(role in roles for role in ALLOWED[action])
