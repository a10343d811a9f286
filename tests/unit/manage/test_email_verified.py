"""Who makes a user's e-mail address verified (docs/federation.md, "Accounts"; docs/security.md
rule 66), on the memory store: an administrator (`manage.users`, which the CLI, the admin API,
domain creation and the demo use), the provisioning directory (SCIM), and nobody else; the
admin views show it."""

from __future__ import annotations

from dataclasses import replace

from tessera.manage.account import update_profile
from tessera.manage.audit import Actor
from tessera.manage.scim.documents import UserFields
from tessera.manage.scim.users import create_scim_user, update_scim_user
from tessera.manage.users import create_user
from tessera.manage.views import user_view
from tessera.store.memory import MemoryStore
from tessera.web.admin.schemas import UserOut
from tests.unit.manage.conftest import T0

PASSWORD = "a long enough passphrase"




def fields(**changes: object) -> UserFields:
    given = UserFields(
        username="ada",
        display_name="Ada",
        active=None,
        password=None,
        email="ada@corp.example",
        external_id=None,
        given_name=None,
        family_name=None,
        attributes=None,
    )
    return replace(given, **changes)  # type: ignore[arg-type]


def test_an_administrator_s_address_is_verified(store: MemoryStore, actor: Actor) -> None:
    ada = create_user(
        store, username="ada", password=PASSWORD, now=T0, actor=actor, email="ada@corp.example"
    )
    bob = create_user(store, username="bob", password=PASSWORD, now=T0, actor=actor)
    assert ada.email_verified and not bob.email_verified  # no address: nothing verified
    stored = store.users.get(ada.id)
    assert stored is not None and stored.email_verified


def test_the_views_show_it(store: MemoryStore, actor: Actor) -> None:
    ada = create_user(
        store, username="ada", password=PASSWORD, now=T0, actor=actor, email="ada@corp.example"
    )
    view = user_view(ada)
    assert view["email_verified"] is True
    assert UserOut.model_validate(view).email_verified
    typed, _ = update_profile(store, ada, display_name="Ada", email="a@home.example", actor=actor)
    assert user_view(typed)["email_verified"] is False


def test_a_provisioned_address_is_verified(store: MemoryStore, actor: Actor) -> None:
    ada = create_scim_user(store, fields(), T0, actor)
    bob = create_scim_user(store, fields(username="bob", email=None), T0, actor)
    assert ada.email_verified and not bob.email_verified


def test_the_directory_verifies_what_it_sets_and_never_what_the_user_typed(
    store: MemoryStore, actor: Actor
) -> None:
    ada = create_scim_user(store, fields(), T0, actor)
    typed, _ = update_profile(
        store, ada, display_name="Ada", email="ada@typed.example", actor=actor
    )
    assert not typed.email_verified
    # Another attribute changes: the typed address stays unverified.
    kept = update_scim_user(
        store,
        ada.id,
        fields(email="ada@typed.example", family_name="Lovelace"),
        T0,
        actor,
        expected_version=None,
    )
    assert not kept.email_verified
    # The directory sets its own address: verified again.
    restored = update_scim_user(store, ada.id, fields(), T0, actor, expected_version=None)
    assert restored.email_verified
    stored = store.users.get(ada.id)
    assert stored is not None and stored.email_verified
    # And an unrelated change keeps it verified; removing the address clears it.
    same = update_scim_user(
        store, ada.id, fields(given_name="Ada"), T0, actor, expected_version=None
    )
    assert same.email_verified
    gone = update_scim_user(store, ada.id, fields(email=None), T0, actor, expected_version=None)
    assert not gone.email_verified
