"""The SCIM server's storage (scim2-server's `ScimStorage` contract) over one identity
domain's store: Users and Groups (RFC 7644 §3).

Searches evaluate the parsed filter in Python (`ScimFilter.match`, RFC 7644 §3.4.2.2) over
the domain's users or groups; a filter is never turned into SQL. An equality on `id`,
`userName` or a group's `displayName` first narrows the candidates through the store's indexed
lookups. Writes go through `manage.scim.users` and `manage.scim.groups`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Union, cast

from scim2_models import (
    NotFoundException,
    NotImplementedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    SearchRequest,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage

from tessera.domain.model import Group, User
from tessera.manage.audit import Actor
from tessera.manage.scim.documents import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    group_document,
    group_fields,
    parse_version,
    user_document,
    user_fields,
)
from tessera.manage.scim.groups import create_scim_group, delete_scim_group, update_scim_group
from tessera.manage.scim.users import create_scim_user, delete_scim_user, update_scim_user
from tessera.store.protocols import Store

__all__ = ["DomainScimStorage"]

Document = dict[str, Any]
# Equalities answered by an indexed lookup: (resource type, attribute URN) → lookup.
_LOOKUPS: dict[tuple[str, str], Callable[[Store, str], User | Group | None]] = {
    ("User", f"{USER_SCHEMA}:id"): lambda store, v: store.users.get(v),
    ("User", f"{USER_SCHEMA}:userName"): lambda store, v: store.users.get_by_username(v),
    ("Group", f"{GROUP_SCHEMA}:id"): lambda store, v: store.groups.get(v),
    ("Group", f"{GROUP_SCHEMA}:displayName"): lambda store, v: store.groups.get_by_name(v),
}


class DomainScimStorage(ScimStorage):
    """One request's view: the domain's store, the clock and the audit actor; `models` are
    the SCIM models of the served resource types, by name (`User`, `Group`); `admins`: the
    caller is an administrator, who may change administrators' accounts (a provisioning
    app may not)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        actor: Actor,
        models: Mapping[str, type[Resource[Any]]],
        *,
        admins: bool = True,
    ) -> None:
        self._admins = admins
        self._store = store
        self._clock = clock
        self._actor = actor
        self._models = models

    # -- reads -------------------------------------------------------------------------

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        kind = str(resource_type.name)
        return self._resource(kind, self._document(kind, resource_id))

    def _document(self, kind: str, resource_id: str) -> Document:
        store = self._store
        if kind == "User":
            user = store.users.get(resource_id)
            if user is None:
                raise NotFoundException(detail=f"no user {resource_id!r}")
            return user_document(user, store.groups.groups_of(user.id))
        group = store.groups.get(resource_id) if kind == "Group" else None
        if group is None:
            raise NotFoundException(detail=f"no {kind} {resource_id!r}")
        users = (store.users.get(user_id) for user_id in store.groups.members(group.id))
        return group_document(group, [u for u in users if u is not None])

    def _resource(self, kind: str, document: Document) -> Resource[Any]:
        return self._models[kind].model_validate(document)

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        if search_request.cursor is not None:
            raise NotImplementedException(detail="cursor pagination is not supported")
        names = list(dict.fromkeys(cast(str, rt.name) for rt in resource_types))
        scim_filter = search_request.filter
        candidates = [
            self._resource(name, doc)
            for name in names
            for doc in self._candidates(name, scim_filter if len(names) == 1 else None)
        ]
        if scim_filter is not None and not scim_filter.models and candidates:
            # A search at the root: the filter meets the models of every type searched.
            models = tuple(dict.fromkeys(type(r) for r in candidates))
            scim_filter = ScimFilter[Union[models]](str(scim_filter))  # type: ignore[valid-type]  # noqa: UP007
        found = [r for r in candidates if scim_filter is None or scim_filter.match(r)]
        return _page(search_request, found)

    def _candidates(self, kind: str, scim_filter: ScimFilter[Any] | None) -> list[Document]:
        lookup = _indexed_equality(kind, scim_filter)
        if lookup is not None:
            entry = _LOOKUPS[(kind, lookup[0])](self._store, lookup[1])
            return [] if entry is None else [self._document(kind, entry.id)]
        if kind in ("User", "Group"):
            return self._all(kind)
        return []

    def _all(self, kind: str) -> list[Document]:
        """Every user (with its groups) or every group (with its members), from one read of
        users, groups and memberships."""
        store = self._store
        users = {u.id: u for u in store.users.list()}
        groups = {g.id: g for g in store.groups.list()}
        of_user: dict[str, list[Group]] = defaultdict(list)
        members: dict[str, list[User]] = defaultdict(list)
        for group_id, user_id in store.groups.memberships():
            if group_id in groups and user_id in users:
                of_user[user_id].append(groups[group_id])
                members[group_id].append(users[user_id])
        if kind == "User":
            return [user_document(u, of_user.get(u.id, [])) for u in users.values()]
        return [group_document(g, members.get(g.id, [])) for g in groups.values()]

    # -- writes ------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        store, now, actor = self._store, self._clock(), self._actor
        doc = resource.model_dump()
        created: User | Group
        if resource_type.name == "User":
            created = create_scim_user(store, user_fields(doc), now, actor)
        else:
            created = create_scim_group(store, group_fields(doc), now, actor)
        return self.get(resource_type, created.id)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        store, now, actor = self._store, self._clock(), self._actor
        doc, version = resource.model_dump(), parse_version(expected_version)
        resource_id = cast(str, resource.id)
        if resource_type.name == "User":
            fields = user_fields(doc)
            update_scim_user(
                store,
                resource_id,
                fields,
                now,
                actor,
                expected_version=version,
                admins=self._admins,
            )
        else:
            update_scim_group(
                store, resource_id, group_fields(doc), now, actor, expected_version=version
            )
        return self.get(resource_type, resource_id)

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        store, now, actor = self._store, self._clock(), self._actor
        version = parse_version(expected_version)
        if resource_type.name == "User":
            delete_scim_user(
                store, resource_id, now, actor, expected_version=version, admins=self._admins
            )
        else:
            delete_scim_group(store, resource_id, now, actor, expected_version=version)


def _indexed_equality(kind: str, scim_filter: ScimFilter[Any] | None) -> tuple[str, str] | None:
    """(attribute URN, value) of a filter that is one `eq` on an indexed attribute."""
    if scim_filter is None or scim_filter.model is None:
        return None
    node = scim_filter.ast
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq:
        return None
    if not isinstance(node.value, str):
        return None
    binding = scim_filter.resolve_comparison(node.attr_path, strict=False)
    if binding is None or (kind, binding.urn) not in _LOOKUPS:
        return None
    return binding.urn, node.value


def _page(search_request: SearchRequest[Any], found: list[Resource[Any]]) -> SearchPage:
    """Sorted by the sort value (missing values last) then the id; one page by index
    (RFC 7644 §3.4.2.3, §3.4.2.4)."""
    descending = (
        search_request.sort_by is not None
        and search_request.sort_order == SearchRequest.SortOrder.descending
    )

    def key(resource: Resource[Any]) -> tuple[bool, Any, str]:
        value = search_request.sort_value(resource) if search_request.sort_by else None
        return value is None, value if value is not None else "", cast(str, resource.id)

    ordered = sorted(found, key=key, reverse=descending)
    start = search_request.start_index_0 or 0
    stop = None if search_request.count is None else start + search_request.count
    return SearchPage(len(ordered), ordered[start:stop])
