"""What a token says about the caller's groups and application roles (RFC 9068 §2.2.3.1;
docs/groups-and-roles.md).

Roles are read when a token is issued, for the resource of its audience: a change of roles or
groups reaches the next token (a refresh included), never a token already issued. Removing a
role can revoke the tokens it was in (`tessera.manage.roles`).

An app's own roles may come from a node's cache of `APP_ROLES_TTL` seconds (the web layer's),
so that a client-credentials token reads no table, as apps and resources are cached: a change
reaches every node's app tokens within that time, and revoking an app's tokens after taking a
role away covers the tokens issued meanwhile (`tessera.manage.roles`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tessera.domain.model import Resource
from tessera.store.protocols import Store

__all__ = ["APP_ROLES_TTL", "DirectoryClaims", "Memberships"]

APP_ROLES_TTL = 2.0  # seconds a node may keep an app's roles (the apps' cache time)


@dataclass(frozen=True, slots=True)
class DirectoryClaims:
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None  # None: the resource does not ask for `groups`


_NONE = DirectoryClaims()


class Memberships:
    """Reads roles and groups from the domain's store (one indexed query each; none for a
    resource without roles that does not ask for groups)."""

    def __init__(
        self, store: Store, app_roles: Callable[[str, str], tuple[str, ...]] | None = None
    ) -> None:
        """`app_roles(client_id, resource_id)`: a cached reading of `roles_of_app`."""
        self._store = store
        self._app_roles = app_roles or store.roles.roles_of_app

    def group_names(self, user_id: str) -> tuple[str, ...]:
        return tuple(g.name for g in self._store.groups.groups_of(user_id))

    def for_user(self, resource: Resource | None, user_id: str) -> DirectoryClaims:
        if resource is None or not (resource.roles or resource.include_groups):
            return _NONE
        roles = self._store.roles.roles_of_user(user_id, resource.id) if resource.roles else ()
        groups = self.group_names(user_id) if resource.include_groups else None
        return DirectoryClaims(_declared(resource, roles), groups)

    def for_app(self, resource: Resource | None, client_id: str) -> DirectoryClaims:
        """An app's own token: the roles granted to the app (apps are in no group)."""
        if resource is None or not (resource.roles or resource.include_groups):
            return _NONE
        roles = self._app_roles(client_id, resource.id) if resource.roles else ()
        return DirectoryClaims(_declared(resource, roles), () if resource.include_groups else None)


def _declared(resource: Resource, roles: Sequence[str]) -> tuple[str, ...]:
    """Grants of a role the resource no longer declares stay stored but give nothing."""
    return tuple(r for r in roles if resource.declares(r))
