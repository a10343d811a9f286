"""The SCIM storage over a domain's store (`tessera.manage.scim`), on the memory store: scim2-
server's storage contract, and the mapping of users and groups (README, SCIM 2.0 provisioning;
docs/security.md rules 59-62)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from scim2_models import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    PreconditionFailedException,
    ResourceType,
    ScimProvider,
    UniquenessException,
)
from scim2_server.testing import ScimStorageContract

from tessera.domain.passwords import verify_password
from tessera.manage.audit import Actor
from tessera.manage.scim.provider import scim_models, scim_service
from tessera.manage.scim.storage import DomainScimStorage
from tessera.manage.users import create_user
from tessera.store.memory import MemoryStore

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PASSWORD = "Quiet-Harbour-Lamp-2026"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, type: str, **details: Any) -> None:
        self.events.append((type, details))


def _store() -> MemoryStore:
    store = MemoryStore()
    store.ensure_domain("Default", NOW)
    return store


def _storage(store: MemoryStore, recorder: Recorder | None = None) -> DomainScimStorage:
    actor = Actor("scim-test", recorder or Recorder())
    return DomainScimStorage(store, lambda: NOW, actor, scim_models())


# Usernames the domain refuses (docs/architecture.md: letters, digits and . _ @ + -): the
# contract's search fixtures use `dave_%`, which Tessera's username rule does not allow.
_USERNAME_RULE = "the contract's search users include 'dave_%', refused by the username rule"


class TestContract(ScimStorageContract):
    @pytest.fixture
    def provider(self) -> ScimProvider:
        return scim_service().provider

    @pytest.fixture
    def storage(self) -> DomainScimStorage:
        return _storage(_store())

    @pytest.mark.skip(reason=_USERNAME_RULE)
    def test_search_filters_as_the_filter_evaluator(self) -> None: ...

    @pytest.mark.skip(reason=_USERNAME_RULE)
    def test_search_sorts_as_search_request_sort(self) -> None: ...


@pytest.fixture
def store() -> MemoryStore:
    return _store()


@pytest.fixture
def user_type() -> ResourceType:
    return next(rt for rt in scim_service().provider.resource_types if rt.name == "User")


@pytest.fixture
def group_type() -> ResourceType:
    return next(rt for rt in scim_service().provider.resource_types if rt.name == "Group")


def _user(**fields: Any) -> Any:
    return scim_models()["User"].model_validate(fields)


def test_a_user_maps_to_columns_and_attributes(store: MemoryStore, user_type: ResourceType) -> None:
    created = _storage(store).create(
        user_type,
        _user(
            userName="carol",
            externalId="hr-7",
            name={"givenName": "Carol", "familyName": "Jones", "middleName": "A"},
            displayName="Carol Jones",
            title="Engineer",
            emails=[{"value": "c@home.example"}, {"value": "c@work.example", "primary": True}],
            password=PASSWORD,
            **{ENTERPRISE: {"employeeNumber": "42"}},
        ),
    )
    user = store.users.get(created.id)
    assert user is not None
    assert (user.username, user.external_id, user.display_name) == ("carol", "hr-7", "Carol Jones")
    assert (user.given_name, user.family_name, user.email) == ("Carol", "Jones", "c@work.example")
    assert verify_password(user.password_hash, PASSWORD)
    attributes = json.loads(user.attributes or "{}")
    assert attributes["title"] == "Engineer" and attributes[ENTERPRISE] == {"employeeNumber": "42"}
    assert attributes["name"] == {"middleName": "A"}
    assert "password" not in json.dumps(attributes) and PASSWORD not in (user.attributes or "")
    read = _storage(store).get(user_type, created.id).model_dump()
    assert "password" not in read
    assert read["name"] == {"givenName": "Carol", "familyName": "Jones", "middleName": "A"}
    assert read["meta"]["version"] == 'W/"1"' and read["active"] is True


def test_a_weak_password_writes_nothing(store: MemoryStore, user_type: ResourceType) -> None:
    with pytest.raises(InvalidValueException, match="password"):
        _storage(store).create(user_type, _user(userName="weak", password="short"))
    assert store.users.get_by_username("weak") is None


def test_user_names_are_unique_case_insensitively(
    store: MemoryStore, user_type: ResourceType
) -> None:
    _storage(store).create(user_type, _user(userName="Erin"))
    with pytest.raises(UniquenessException):
        _storage(store).create(user_type, _user(userName="erin"))


def test_deactivating_revokes_every_token_of_the_user(
    store: MemoryStore, user_type: ResourceType
) -> None:
    recorder = Recorder()
    storage = _storage(store, recorder)
    created = storage.create(user_type, _user(userName="frank"))
    replaced = created.model_copy(update={"active": False})
    updated = storage.update(user_type, replaced, expected_version=created.meta.version)
    assert updated.active is False and updated.meta.version == 'W/"2"'
    user = store.users.get(created.id)
    assert user is not None and user.disabled_at == NOW
    cut_offs = [e for e in store.revocations.since(0, 100) if e.key == created.id and e.kind == "subject"]
    assert cut_offs, "no subject cut-off event for resource servers"
    assert "admin.user_disabled" in [t for t, _ in recorder.events]
    # An update that leaves `active` out does not enable the user again.
    again = updated.model_copy(update={"active": None, "title": "x"})
    assert storage.update(user_type, again).active is False


def test_a_stale_version_writes_nothing(store: MemoryStore, user_type: ResourceType) -> None:
    storage = _storage(store)
    created = storage.create(user_type, _user(userName="gina"))
    storage.update(user_type, created.model_copy(update={"title": "first"}))
    with pytest.raises(PreconditionFailedException):
        storage.update(
            user_type,
            created.model_copy(update={"title": "second"}),
            expected_version=created.meta.version,
        )
    assert json.loads(store.users.get(created.id).attributes or "{}")["title"] == "first"


def test_the_last_administrator_is_kept(store: MemoryStore, user_type: ResourceType) -> None:
    admin = create_user(
        store, username="root", password=PASSWORD, now=NOW, actor=Actor("t", Recorder()),
        is_admin=True,
    )
    storage = _storage(store)
    current = storage.get(user_type, admin.id)
    with pytest.raises(ConflictException):
        storage.update(user_type, current.model_copy(update={"active": False}))
    with pytest.raises(ConflictException):
        storage.delete(user_type, admin.id)
    assert store.users.get(admin.id) is not None and store.users.get(admin.id).active


def test_groups_hold_users_only(
    store: MemoryStore, user_type: ResourceType, group_type: ResourceType
) -> None:
    storage = _storage(store)
    user = storage.create(user_type, _user(userName="hank"))
    model = scim_models()["Group"]
    group = storage.create(
        group_type, model.model_validate({"displayName": "Ops", "members": [{"value": user.id}]})
    )
    assert [m.display for m in group.members] == ["hank"]
    assert [g.value for g in storage.get(user_type, user.id).groups] == [group.id]
    for member in ({"value": group.id}, {"value": group.id, "type": "Group"}, {"value": "nobody"}):
        with pytest.raises(InvalidValueException):
            storage.create(
                group_type, model.model_validate({"displayName": "Nested", "members": [member]})
            )
    assert store.groups.get_by_name("Nested") is None


def test_an_equality_on_the_username_is_an_indexed_lookup(
    store: MemoryStore, user_type: ResourceType
) -> None:
    storage = _storage(store)
    storage.create(user_type, _user(userName="ivy"))
    calls: list[str] = []
    real = store.users.list
    store.users.list = lambda: calls.append("list") or real()  # type: ignore[method-assign]
    found = ScimStorageContract.search(
        storage,
        [user_type],
        ScimStorageContract.search_request([scim_models()["User"]], filter='userName eq "IVY"'),
    )
    assert [u.user_name for u in found.resources] == ["ivy"] and calls == []


def test_a_provisioning_app_leaves_administrators_alone(
    store: MemoryStore, user_type: ResourceType
) -> None:
    admin = create_user(
        store, username="boss", password=PASSWORD, now=NOW, actor=Actor("t", Recorder()),
        is_admin=True,
    )
    app = DomainScimStorage(store, lambda: NOW, Actor("app", Recorder()), scim_models(),
                            admins=False)
    current = app.get(user_type, admin.id)
    with pytest.raises(ForbiddenException):
        app.update(user_type, current.model_copy(update={"password": "Another-Secret-2026"}))
    with pytest.raises(ForbiddenException):
        app.delete(user_type, admin.id)
    assert verify_password(store.users.get(admin.id).password_hash, PASSWORD)


def test_group_names_are_unique_case_insensitively(
    store: MemoryStore, group_type: ResourceType
) -> None:
    storage = _storage(store)
    model = scim_models()["Group"]
    storage.create(group_type, model.model_validate({"displayName": "alpha"}))
    with pytest.raises(UniquenessException):
        storage.create(group_type, model.model_validate({"displayName": "ALPHA"}))
    beta = storage.create(group_type, model.model_validate({"displayName": "beta"}))
    with pytest.raises(UniquenessException):
        storage.update(group_type, model.model_validate({"id": beta.id, "displayName": "Alpha"}))
    assert sorted(g.name for g in store.groups.list()) == ["alpha", "beta"]
