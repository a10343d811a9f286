"""The rules of `tessera.manage.providers` on the memory store: names, issuers (https; http
only on loopback on a development node), client ids, auth methods and their credentials
(a sealed secret, or a key of ours for private_key_jwt), scopes, claims and e-mail domains
(unique across the domain's providers) checked with clear messages; the view never shows a
secret; every change audited and every refusal writes nothing; deleting a provider removes
its links, not its users; the "try sign-in" ticket (docs/federation.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tessera.domain.model import FederatedIdentity, User
from tessera.manage import providers as rules
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.oauth.federation.flow import open_test_ticket
from tessera.oauth.federation.secrets import open_secret
from tessera.store.memory import MemoryStore
from tessera.web.admin.providers import ProviderOut
from tests.unit.manage.conftest import T0

ISSUER = "https://id.example.test"
UPSTREAM = "https://login.partner.test"
SECRET = "s3cret-from-the-upstream"


def _subkey(purpose: str) -> bytes:
    return purpose.encode().ljust(32, b"k")[:32]


SETUP = rules.provider_setup(ISSUER, _subkey)




def create(store: MemoryStore, actor: Actor, setup: Any = SETUP, **kw: Any) -> Any:
    values: dict[str, Any] = {
        "name": "partner",
        "issuer": UPSTREAM,
        "client_id": "tessera-at-partner",
        "client_secret": SECRET,
        "check": False,
    }
    values.update(kw)
    return rules.create_provider(store, setup, now=T0, actor=actor, **values)


def update(store: MemoryStore, actor: Actor, ref: str, **kw: Any) -> Any:
    return rules.update_provider(store, SETUP, ref, now=T0 + timedelta(hours=1), actor=actor, **kw)


def nothing_written(store: MemoryStore) -> None:
    assert store.upstream_providers.list() == []
    assert store.audit.query(type="provider.created") == []


def test_create_seals_the_secret_and_shows_what_to_register(
    store: MemoryStore, actor: Actor
) -> None:
    provider = create(store, actor, display_name="Partner Inc.", email_domains=["Partner.TEST"])
    assert provider.secret_sealed is not None and SECRET.encode() not in provider.secret_sealed
    assert open_secret(SETUP.secret_key, provider.id, provider.secret_sealed) == SECRET
    assert provider.private_key_sealed is None and provider.key_id is None
    assert provider.scopes == ("openid", "email", "profile")
    assert provider.email_domains == ("partner.test",)
    view = rules.provider_view(store, SETUP, provider)
    assert view["redirect_uri"] == f"{ISSUER}/oauth2/v1/federation/partner/callback"
    assert view["has_client_secret"] is True and view["jwks"] == {"keys": []}
    assert view["jwks_uri"] is None and view["linked_accounts"] == 0
    assert view["display_name"] == "Partner Inc." and view["created_by"] == "admin-sub"
    assert SECRET not in repr(view)
    (event,) = store.audit.query(type="provider.created")
    assert event.actor == "admin-sub" and event.details["issuer"] == UPSTREAM
    assert SECRET not in repr(event.details)
    assert rules.find_provider(store, provider.id) == provider
    assert rules.find_provider(store, "partner") == provider


def test_private_key_jwt_gets_a_key_of_ours(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor, auth_method="private_key_jwt", client_secret=None)
    assert provider.secret_sealed is None and provider.private_key_sealed is not None
    view = rules.provider_view(store, SETUP, provider)
    # The admin API's response model keeps every field of the view (FastAPI drops the rest).
    assert ProviderOut.model_validate(view).model_dump(mode="json") == view
    (key,) = view["jwks"]["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == provider.key_id and "d" not in key
    assert view["jwks_uri"] == f"{ISSUER}/oauth2/v1/federation/partner/jwks"
    assert view["has_client_secret"] is False


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "Partner"}, "lower-case"),
        ({"name": "-partner"}, "starting with a letter or a digit"),
        ({"name": "a" * 64}, "1 to 63"),
        ({"name": "part_ner"}, "hyphens"),
        ({"issuer": "http://login.partner.test"}, "https"),
        ({"issuer": "http://127.0.0.1:9000"}, "https"),  # not a development node
        ({"issuer": "https://login.partner.test?tenant=1"}, "no query"),
        ({"issuer": "https://login.partner.test?"}, "no query"),
        ({"issuer": "https://login.partner.test#x"}, "fragment"),
        ({"issuer": "https://user@login.partner.test"}, "no user info"),
        ({"issuer": "login.partner.test"}, "needs a host"),
        ({"issuer": "https://login.partner.test/a b"}, "spaces"),
        ({"client_id": ""}, "1 to 255"),
        ({"client_id": "id\n"}, "printable"),
        ({"auth_method": "client_secret_jwt"}, "one of"),
        ({"client_secret": None}, "needs the client secret"),
        ({"client_secret": ""}, "1 to 1024"),
        ({"auth_method": "private_key_jwt"}, "give no client secret"),
        ({"scopes": ["openid", "two words"]}, "not a scope"),
        ({"scopes": [f"s{i}" for i in range(40)]}, "at most 30"),
        ({"username_claim": "user name"}, "username claim"),
        ({"email_claim": ""}, "e-mail claim"),
        ({"groups_claim": "x" * 256}, "groups claim"),
        ({"email_domains": ["partner"]}, "DNS name"),
        ({"email_domains": ["bad_domain.test"]}, "DNS name"),
        ({"email_domains": ["-x.test"]}, "DNS name"),
        ({"display_name": "x" * 101}, "1 to 100"),
        ({"display_name": " "}, "display name"),
        ({"display_name": "a\x00b"}, "control"),
        ({"description": "x" * 201}, "description"),
        ({"sync_groups": True}, "sync_groups needs a groups claim"),
        ({"sync_groups": True, "groups_claim": ""}, "sync_groups needs a groups claim"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    store: MemoryStore, actor: Actor, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        create(store, actor, **changes)
    assert words in str(caught.value)
    nothing_written(store)


def test_http_issuers_on_loopback_only_on_a_development_node(
    store: MemoryStore, actor: Actor
) -> None:
    development = rules.provider_setup("http://127.0.0.1:8000", _subkey)
    assert development.allow_insecure
    provider = create(store, actor, development, issuer="http://127.0.0.1:9000/domains/up")
    assert provider.issuer == "http://127.0.0.1:9000/domains/up"
    with pytest.raises(InvalidInput, match="https"):
        create(store, actor, development, name="other", issuer="http://partner.test")


def test_scopes_start_with_openid_once(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor, scopes=["email", "openid", "groups", "email"])
    assert provider.scopes == ("openid", "email", "groups")


def test_names_and_email_domains_are_unique(store: MemoryStore, actor: Actor) -> None:
    first = create(store, actor, email_domains=["partner.test"])
    with pytest.raises(Conflicting, match="already exists"):
        create(store, actor, email_domains=["other.test"])
    with pytest.raises(Conflicting, match="partner.test already sends users to the provider"):
        create(store, actor, name="second", email_domains=["other.test", "PARTNER.test"])
    assert store.upstream_providers.list() == [first]
    second = create(store, actor, name="second", email_domains=["other.test"])
    with pytest.raises(Conflicting, match="other.test"):
        update(store, actor, first.id, email_domains=["partner.test", "other.test"])
    with pytest.raises(Conflicting, match="already exists"):
        update(store, actor, second.id, name="partner")
    assert rules.find_provider(store, "second") == second


def test_the_stores_refusal_of_a_shared_email_domain_says_what_to_do(
    store: MemoryStore, actor: Actor
) -> None:
    """Two rows sharing a domain (written before the store held the rule, by a race the old
    check allowed): enabling or disabling one is refused with the reason, not a server error."""
    first = create(store, actor, email_domains=["partner.test"])
    twin = replace(first, id="up_twin", name="twin")
    store.upstream_providers._s.upstream_providers[twin.id] = twin  # type: ignore[attr-defined]
    with pytest.raises(Conflicting, match="partner.test already sends users to the provider"):
        rules.disable_provider(store, "twin", now=T0, actor=actor)


def test_a_check_needs_the_upstream_client(store: MemoryStore, actor: Actor) -> None:
    with pytest.raises(TypeError, match="upstream client"):
        create(store, actor, check=True)
    nothing_written(store)


def test_update_changes_what_is_given_and_audits_it(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor, groups_claim="groups")
    updated = update(
        store,
        actor,
        "partner",
        display_name="Partner",
        jit=False,
        link_existing=True,
        scopes=["profile"],
        username_claim="upn",
    )
    assert updated.display_name == "Partner" and not updated.jit and updated.link_existing
    assert updated.scopes == ("openid", "profile") and updated.username_claim == "upn"
    assert updated.groups_claim == "groups" and updated.client_id == provider.client_id
    assert updated.secret_sealed == provider.secret_sealed
    assert updated.version == provider.version + 1
    assert updated.updated_at == T0 + timedelta(hours=1) and updated.created_at == T0
    (event,) = store.audit.query(type="provider.updated")
    assert event.details["changed"] == [
        "display_name",
        "jit",
        "link_existing",
        "scopes",
        "username_claim",
    ]
    assert update(store, actor, "partner", groups_claim="").groups_claim is None
    renamed = update(store, actor, "partner", name="partner-eu")
    assert rules.provider_view(store, SETUP, renamed)["redirect_uri"].endswith(
        "/federation/partner-eu/callback"
    )
    with pytest.raises(NotFoundError):
        rules.find_provider(store, "partner")
    with pytest.raises(TypeError, match="not fields"):
        update(store, actor, "partner-eu", colour="red")


def test_secrets_rotate_and_methods_switch(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor)
    rotated = update(store, actor, provider.id, client_secret="the-new-one")
    assert open_secret(SETUP.secret_key, provider.id, rotated.secret_sealed) == "the-new-one"
    assert store.audit.query(type="provider.updated")[0].details["changed"] == ["client_secret"]
    with pytest.raises(InvalidInput, match="not a key of ours"):
        update(store, actor, provider.id, rotate_key=True)

    keyed = update(store, actor, provider.id, auth_method="private_key_jwt")
    assert keyed.secret_sealed is None and keyed.private_key_sealed is not None
    again = update(store, actor, provider.id, rotate_key=True)
    assert again.key_id != keyed.key_id
    assert "private_key" in store.audit.query(type="provider.updated")[0].details["changed"]
    kept = update(store, actor, provider.id, display_name="Same key")
    assert kept.key_id == again.key_id

    with pytest.raises(InvalidInput, match="needs the client secret"):
        update(store, actor, provider.id, auth_method="client_secret_post")
    assert rules.find_provider(store, provider.id).auth_method == "private_key_jwt"
    back = update(store, actor, provider.id, auth_method="client_secret_post", client_secret="x")
    assert back.private_key_sealed is None and back.key_id is None


def test_enable_and_disable_are_audited(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor, enabled=False)
    assert not provider.enabled
    assert rules.enable_provider(store, "partner", now=T0, actor=actor).enabled
    assert not rules.disable_provider(store, provider.id, now=T0, actor=actor).enabled
    types = [e.type for e in store.audit.query()]
    assert "provider.enabled" in types and "provider.disabled" in types
    with pytest.raises(NotFoundError, match="no provider 'nope'"):
        rules.enable_provider(store, "nope", now=T0, actor=actor)


def test_delete_removes_the_links_not_the_users(store: MemoryStore, actor: Actor) -> None:
    provider = create(store, actor)
    user = User("u1", "ann", "", "Ann", "ann@partner.test", False, T0, T0)
    store.users.add(user)
    store.federated_identities.link(FederatedIdentity(provider.id, "sub-1", user.id, T0))
    assert rules.provider_view(store, SETUP, provider)["linked_accounts"] == 1
    gone, links = rules.delete_provider(store, "partner", actor)
    assert gone.id == provider.id and links == 1
    assert store.upstream_providers.list() == []
    assert store.federated_identities.get(provider.id, "sub-1") is None
    assert store.users.get(user.id) is not None
    (event,) = store.audit.query(type="provider.deleted")
    assert event.details == {"provider_id": provider.id, "name": "partner", "links": 1}
    with pytest.raises(NotFoundError):
        rules.delete_provider(store, provider.id, actor)


def test_the_try_sign_in_url_carries_a_ticket_for_ten_minutes(
    store: MemoryStore, actor: Actor
) -> None:
    provider = create(store, actor)
    url = rules.try_sign_in_url(SETUP, provider, "admin-sub", T0)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"{ISSUER}/oauth2/v1/federation/partner/test"
    )
    (ticket,) = parse_qs(parts.query)["ticket"]
    assert open_test_ticket(SETUP.ticket_key, ticket, T0) == (provider.id, "admin-sub")
    assert open_test_ticket(SETUP.ticket_key, ticket, T0 + timedelta(minutes=9)) is not None
    assert open_test_ticket(SETUP.ticket_key, ticket, T0 + timedelta(minutes=10)) is None
    assert open_test_ticket(SETUP.secret_key, ticket, T0) is None  # another key
    assert open_test_ticket(SETUP.ticket_key, ticket[:-2] + "AA", T0) is None
    assert open_test_ticket(SETUP.ticket_key, "not a ticket", T0) is None
