"""The rules of `tessera.manage.trusted_issuers` on the memory store: keys checked as an app's
(public only; https `jwks_uri`, http only to loopback on a development node), apps of the domain,
scopes resolved and never the admin API's; new keys replace the old; every change audited and
every refusal writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tessera.domain.admin import ADMIN_SCOPE, admin_audience
from tessera.domain.model import Client, ClientKind, Resource
from tessera.manage import trusted_issuers as rules
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ISSUER = "http://127.0.0.1:8000"
ORDERS = "https://orders.test/"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
JWKS = json.dumps({"keys": [KEY.as_dict(private=False)]})


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    s.resources.add(Resource("r1", "orders", ORDERS, ("read",), T0))
    s.resources.add(Resource("r2", "admin", admin_audience(ISSUER), (ADMIN_SCOPE,), T0))
    s.clients.add(Client("app-1", "App", ClientKind.CONFIDENTIAL, (), ("client_credentials",), (), T0))
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


def create(store: MemoryStore, actor: Actor, **kw: Any) -> Any:
    values: dict[str, Any] = {"issuer": "https://partner.test", "jwks": JWKS}
    values.update(kw)
    return rules.create_issuer(store, now=T0, actor=actor, domain_issuer=ISSUER, **values)


def refused(store: MemoryStore, actor: Actor, **kw: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        create(store, actor, **kw)
    assert store.trusted_issuers.list() == []  # nothing written
    return str(caught.value)


def test_create_resolves_scopes_and_audits(store: MemoryStore, actor: Actor) -> None:
    trusted = create(store, actor, allowed_apps=["app-1", "app-1"], allowed_scopes=[f"{ORDERS}read"])
    assert trusted.allowed_apps == ("app-1",) and trusted.allowed_scopes == (f"{ORDERS}read",)
    assert rules.find_issuer(store, "https://partner.test") == trusted
    assert rules.find_issuer(store, trusted.id) == trusted
    (event,) = store.audit.query(type="trusted_issuer.created")
    assert event.details["issuer"] == "https://partner.test" and event.actor == "admin-sub"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"jwks": json.dumps({"keys": [KEY.as_dict(private=True)]})}, "private"),
        ({"jwks": None}, "exactly one"),
        ({"jwks_uri": "https://partner.test/jwks"}, "exactly one"),
        ({"jwks": None, "jwks_uri": "http://127.0.0.1:9/jwks"}, "https"),
        ({"issuer": ""}, "1 to 1024"),
        ({"issuer": "a b"}, "printable"),
        ({"allowed_apps": ["nope"]}, "no app"),
        ({"allowed_scopes": ["nonsense"]}, "nonsense"),
        ({"allowed_scopes": [f"{admin_audience(ISSUER)}{ADMIN_SCOPE}"]}, "admin"),
        ({"description": "x" * 201}, "description"),
    ],
)
def test_bad_input_is_refused(
    store: MemoryStore, actor: Actor, changes: dict[str, Any], words: str
) -> None:
    assert words in refused(store, actor, **changes)


def test_http_loopback_jwks_uri_only_on_a_development_node(
    store: MemoryStore, actor: Actor
) -> None:
    uri = "http://127.0.0.1:9/jwks"
    trusted = create(store, actor, jwks=None, jwks_uri=uri, allow_insecure_jwks_uri=True)
    assert trusted.jwks_uri == uri and trusted.jwks is None


def test_update_replaces_keys_and_lists(store: MemoryStore, actor: Actor) -> None:
    trusted = create(store, actor, allowed_apps=["app-1"], allowed_scopes=["openid"])
    later = T0 + timedelta(seconds=5)
    updated = rules.update_issuer(
        store, trusted.id, now=later, actor=actor, domain_issuer=ISSUER,
        jwks_uri="https://partner.test/jwks", allowed_scopes=(),
    )  # fmt: skip
    assert (updated.jwks, updated.jwks_uri) == (None, "https://partner.test/jwks")
    assert updated.allowed_apps == ("app-1",) and updated.allowed_scopes == ()
    assert updated.updated_at == later and store.trusted_issuers.get(trusted.id) == updated
    with pytest.raises(InvalidInput):
        rules.update_issuer(
            store, trusted.id, now=later, actor=actor, domain_issuer=ISSUER, allowed_apps=["x"]
        )
    assert store.trusted_issuers.get(trusted.id) == updated


def test_issuers_are_unique_and_deleted_by_id_or_issuer(store: MemoryStore, actor: Actor) -> None:
    create(store, actor)
    with pytest.raises(Conflicting):
        create(store, actor)
    gone = rules.delete_issuer(store, "https://partner.test", actor)
    assert store.trusted_issuers.list() == []
    with pytest.raises(NotFoundError):
        rules.delete_issuer(store, gone.id, actor)
