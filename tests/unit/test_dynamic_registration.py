"""Dynamic client registration as app changes (`tessera.manage.registration`,
`tessera.manage.registration_tokens`) on the in-memory store: initial access tokens (expiry,
revocation, uses counted only for valid requests), the registration access token (RFC 7592:
rotated on read and update), replacement and deletion. Over HTTP:
tests/e2e/test_dynamic_registration.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.admin import admin_scope, operator_scope
from tessera.domain.hashing import keyed_hash
from tessera.manage import apps as app_rules
from tessera.manage import registration as dcr
from tessera.manage import registration_tokens as tokens
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import InvalidInput, NotFoundError
from tessera.manage.resources import create_resource
from tessera.oauth.errors import InvalidToken, OAuthError
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PEPPER = b"p" * 32
ISSUER = "https://id.example.test"
REDIRECT = "https://app.example.test/cb"
ORDERS = "https://api.example.test/"
READ, WRITE = f"{ORDERS}orders.read", f"{ORDERS}orders.write"  # canonical


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


@pytest.fixture
def registry(store: MemoryStore) -> dcr.Registry:
    return dcr.Registry(store, PEPPER, ISSUER, store.domain_id)


def body(**metadata: Any) -> bytes:
    metadata.setdefault("redirect_uris", [REDIRECT])
    return json.dumps(metadata).encode()


def mint(store: MemoryStore, actor: Actor, **kwargs: Any) -> str:
    return tokens.mint_token(store, PEPPER, now=T0, actor=actor, issuer=ISSUER, **kwargs)[1]


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(OAuthError) as caught:
        call(*args)
    return caught.value.error


def test_mint_stores_only_a_keyed_hash(store: MemoryStore, actor: Actor) -> None:
    token, value = tokens.mint_token(
        store,
        PEPPER,
        now=T0,
        actor=actor,
        issuer=ISSUER,
        expires_in=600,
        max_uses=2,
        description="ci",
    )
    assert token.token_hash == keyed_hash(PEPPER, value) != value
    assert token.expires_at == T0 + timedelta(seconds=600)
    view = tokens.token_view(token, T0, value)
    assert view["token"] == value and view["state"] == "active" and view["max_uses"] == 2
    assert view["allowed_scopes"] == []
    assert "token" not in tokens.token_view(token, T0)
    assert [e.type for e in store.audit.query()] == ["registration_token.created"]


@pytest.mark.parametrize(
    "kwargs",
    [{"expires_in": -1}, {"expires_in": 10**9}, {"max_uses": 0}, {"description": "a\nb"}],
)
def test_mint_refuses_bad_values(store: MemoryStore, actor: Actor, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        tokens.mint_token(store, PEPPER, now=T0, actor=actor, issuer=ISSUER, **kwargs)
    assert store.registration_tokens.list() == []


def test_register_creates_the_app(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    value = mint(store, actor)
    answer = dcr.register(registry, value, body(client_name="Orders"), T0, actor)
    client = store.clients.get(answer["client_id"])
    assert client is not None and client.name == "Orders"
    assert not client.first_party and not client.resource_server_for
    assert client.registration_token_hash == keyed_hash(
        PEPPER, answer["registration_access_token"]
    )
    assert answer["client_secret"] and answer["client_secret_expires_at"] == 0
    assert answer["registration_client_uri"] == (
        f"{ISSUER}/oauth2/v1/register/{client.client_id}"
    )
    (token,) = store.registration_tokens.list()
    assert token.uses == 1
    created = store.audit.query(type="registration.created")
    assert created[0].actor == f"registration-token:{token.id}"


def test_name_is_generated_and_a_taken_name_gets_a_suffix(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    value = mint(store, actor)
    first = dcr.register(registry, value, body(), T0, actor)
    assert first["client_name"].startswith("registered app ")
    app_rules.create_app(store, PEPPER, name="Taken", now=T0, actor=actor, redirect_uris=[REDIRECT])
    second = dcr.register(registry, value, body(client_name="Taken"), T0, actor)
    assert second["client_name"].startswith("Taken (")


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://evil.test/cb"]}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
        ({"dpop_bound_access_tokens": "true"}, "invalid_client_metadata"),
        ({"tessera_profile": "fapi2"}, "invalid_client_metadata"),
        ({"client_uri": "http://app.example.test/"}, "invalid_client_metadata"),
        ({"client_name": "x" * 300}, "invalid_client_metadata"),
    ],
)
def test_bad_metadata_creates_nothing_and_burns_no_use(
    store: MemoryStore,
    actor: Actor,
    registry: dcr.Registry,
    metadata: dict[str, Any],
    error: str,
) -> None:
    value = mint(store, actor, max_uses=1)
    before = len(store.clients.list())
    assert refusal(dcr.register, registry, value, body(**metadata), T0, actor) == error
    assert len(store.clients.list()) == before
    assert store.registration_tokens.list()[0].uses == 0
    dcr.register(registry, value, body(), T0, actor)  # the one use is still there


def test_an_app_that_always_uses_dpop_registers(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    """RFC 9449 §5.2 `dpop_bound_access_tokens`, stored and echoed (RFC 7591 §3.2.1)."""
    value = mint(store, actor)
    answer = dcr.register(registry, value, body(dpop_bound_access_tokens=True), T0, actor)
    assert answer["dpop_bound_access_tokens"] is True
    assert store.clients.get(answer["client_id"]).dpop_bound_access_tokens  # type: ignore[union-attr]


def test_unknown_expired_revoked_and_used_up_tokens_are_refused(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    before = len(store.clients.list())
    assert refusal(dcr.register, registry, "no-such-token", body(), T0, actor) == "invalid_token"
    short = mint(store, actor, expires_in=60)
    later = T0 + timedelta(seconds=60)
    assert refusal(dcr.register, registry, short, body(), later, actor) == "invalid_token"
    minted, revoked = tokens.mint_token(store, PEPPER, now=T0, actor=actor, issuer=ISSUER)
    tokens.revoke_token(store, minted.id, T0, actor)
    assert refusal(dcr.register, registry, revoked, body(), T0, actor) == "invalid_token"
    once = mint(store, actor, max_uses=1)
    dcr.register(registry, once, body(), T0, actor)
    assert refusal(dcr.register, registry, once, body(), T0, actor) == "invalid_token"
    assert len(store.clients.list()) == before + 1


def test_revoke_unknown_token(store: MemoryStore, actor: Actor) -> None:
    with pytest.raises(NotFoundError):
        tokens.revoke_token(store, "rt_nope", T0, actor)


def test_read_rotates_the_registration_access_token(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    client_id, first = answer["client_id"], answer["registration_access_token"]
    read = dcr.read_registration(registry, client_id, first, actor)
    assert read["client_id"] == client_id and "client_secret" not in read
    assert read["registration_access_token"] != first
    assert refusal(dcr.read_registration, registry, client_id, first, actor) == "invalid_token"
    dcr.read_registration(registry, client_id, read["registration_access_token"], actor)


def test_a_read_does_not_undo_an_administrators_change(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    stale = store.clients.get(client_id)
    app_rules.update_app(store, client_id, actor=actor, name="Renamed by the administrator")
    assert stale is not None
    dcr.read_registration(registry, client_id, token, actor)
    after = store.clients.get(client_id)
    assert after is not None and after.name == "Renamed by the administrator"


def test_a_long_taken_name_still_registers(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    long_name = "L" * 200
    app_rules.create_app(
        store, PEPPER, name=long_name, now=T0, actor=actor, redirect_uris=[REDIRECT]
    )
    answer = dcr.register(registry, mint(store, actor), body(client_name=long_name), T0, actor)
    assert answer["client_name"].startswith("L" * 150) and len(answer["client_name"]) == 200


def test_admin_apps_cannot_be_managed_with_any_token(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    client, _ = app_rules.create_app(
        store, PEPPER, name="Admin's", now=T0, actor=actor, redirect_uris=[REDIRECT]
    )
    assert refusal(dcr.read_registration, registry, client.client_id, "x", actor) == (
        "invalid_token"
    )
    assert refusal(dcr.read_registration, registry, "nope", "x", actor) == "invalid_token"


def test_replace_sets_every_field_and_rotates(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    answer = dcr.register(
        registry,
        mint(store, actor),
        body(post_logout_redirect_uris=["https://app.example.test/bye"], client_name="A"),
        T0,
        actor,
    )
    client_id, token = answer["client_id"], answer["registration_access_token"]
    new = "https://app.example.test/other"
    updated = dcr.replace_registration(
        registry, client_id, token, body(client_id=client_id, redirect_uris=[new]), T0, actor
    )
    assert updated["redirect_uris"] == [new]
    assert "post_logout_redirect_uris" not in updated  # left out: removed (RFC 7592 §2.2)
    assert updated["client_name"] == "A"  # left out: kept (an app needs a name)
    with pytest.raises(InvalidToken):
        dcr.read_registration(registry, client_id, token, actor)
    assert store.audit.query(type="registration.updated")


@pytest.mark.parametrize(
    "metadata",
    [
        {},  # no client_id
        {"client_id": "another"},
        {"client_secret": "not-the-secret"},
        {"token_endpoint_auth_method": "none"},
        {"redirect_uris": ["http://evil.test/"]},
    ],
)
def test_replace_refusals_change_nothing(
    store: MemoryStore, actor: Actor, registry: dcr.Registry, metadata: dict[str, Any]
) -> None:
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    if metadata.get("client_id") is None and metadata:
        metadata["client_id"] = client_id
    before = store.clients.get(client_id)
    with pytest.raises(OAuthError) as caught:
        dcr.replace_registration(registry, client_id, token, body(**metadata), T0, actor)
    assert caught.value.error in ("invalid_client_metadata", "invalid_redirect_uri")
    assert store.clients.get(client_id) == before


def test_replace_with_the_current_secret(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    dcr.replace_registration(
        registry,
        answer["client_id"],
        answer["registration_access_token"],
        body(**{k: v for k, v in answer.items() if k != "redirect_uris"}),
        T0,
        actor,
    )


def test_delete(store: MemoryStore, actor: Actor, registry: dcr.Registry) -> None:
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    assert refusal(dcr.delete_registration, registry, client_id, "wrong", T0, actor) == (
        "invalid_token"
    )
    dcr.delete_registration(registry, client_id, token, T0, actor)
    assert store.clients.get(client_id) is None
    assert refusal(dcr.delete_registration, registry, client_id, token, T0, actor) == (
        "invalid_token"
    )
    assert store.audit.query(type="registration.deleted")


@pytest.mark.parametrize(
    "metadata",
    [
        {"jwks": {"keys": "x"}, "token_endpoint_auth_method": "private_key_jwt"},
        {"jwks": {"keys": [1]}, "token_endpoint_auth_method": "private_key_jwt"},
        {"jwks": {}, "token_endpoint_auth_method": "private_key_jwt"},
        {"jwks_uri": "https://", "token_endpoint_auth_method": "private_key_jwt"},
        {"jwks_uri": "https://keys.example.test/\x00", "token_endpoint_auth_method": "private_key_jwt"},
        {"contacts": "ops@example.test"},
        {"contacts": [1]},
        {"contacts": ["a\x00b"]},
        {"client_uri": 5},
        {"logo_uri": "https://logo.example.test/\x00"},
        {"software_id": 5},
        {"software_version": ""},
        {"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_signing_alg": "none"},
        {"token_endpoint_auth_method": "tls_client_auth"},
        {"tessera_profile": "fapi1"},
        {"client_name": "a\x00b"},
        {"client_name": "x\ny"},
        {"scope": "openid\x00"},
        {"redirect_uris": ["https://app.example.test/\x00"]},
        {"post_logout_redirect_uris": "https://app.example.test/"},
    ],
)
def test_odd_metadata_is_an_rfc_7591_error(
    store: MemoryStore, actor: Actor, registry: dcr.Registry, metadata: dict[str, Any]
) -> None:
    value = mint(store, actor)
    before = len(store.clients.list())
    error = refusal(dcr.register, registry, value, body(**metadata), T0, actor)
    assert error in ("invalid_client_metadata", "invalid_redirect_uri")
    assert len(store.clients.list()) == before


# --- the scopes an initial access token allows (RFC 7591 §2 `scope`) -------------------------


@pytest.fixture
def orders(store: MemoryStore, actor: Actor) -> None:
    create_resource(
        store,
        name="Orders",
        audience=ORDERS,
        scopes=["orders.read", "orders.write"],
        now=T0,
        actor=actor,
    )


def scoped_token(store: MemoryStore, actor: Actor, *scopes: str, **kwargs: Any) -> str:
    return mint(store, actor, allowed_scopes=scopes, **kwargs)


@pytest.mark.usefixtures("orders")
def test_mint_resolves_the_allowed_scopes_to_their_canonical_form(
    store: MemoryStore, actor: Actor
) -> None:
    scoped_token(store, actor, "openid", "https://api.example.test:443/orders.read", "openid")
    (token,) = store.registration_tokens.list()
    assert token.allowed_scopes == ("openid", READ)
    assert tokens.token_view(token, T0)["allowed_scopes"] == ["openid", READ]
    (created,) = store.audit.query(type="registration_token.created")
    assert created.details["allowed_scopes"] == ["openid", READ]


@pytest.mark.parametrize(
    "scope", ["nope", admin_scope(ISSUER), operator_scope(ISSUER), "openid\x00"]
)
def test_mint_refuses_unknown_and_admin_scopes(
    store: MemoryStore, actor: Actor, scope: str
) -> None:
    with pytest.raises(InvalidInput):
        scoped_token(store, actor, "openid", scope)
    assert store.registration_tokens.list() == []


@pytest.mark.usefixtures("orders")
def test_register_within_the_token_scopes(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    value = scoped_token(store, actor, "openid", "profile", READ)
    answer = dcr.register(registry, value, body(scope=f"openid {ORDERS}orders.read"), T0, actor)
    assert answer["scope"] == f"openid {READ}"
    client = store.clients.get(answer["client_id"])
    assert client is not None and client.allowed_scopes == ("openid", READ)


@pytest.mark.usefixtures("orders")
@pytest.mark.parametrize("scope", ["openid email", WRITE, "offline_access"])
def test_a_scope_beyond_the_token_creates_nothing_and_burns_no_use(
    store: MemoryStore, actor: Actor, registry: dcr.Registry, scope: str
) -> None:
    value = scoped_token(store, actor, "openid", READ, max_uses=1)
    before = len(store.clients.list())
    with pytest.raises(OAuthError) as caught:
        dcr.register(registry, value, body(scope=scope), T0, actor)
    assert caught.value.error == "invalid_client_metadata"
    assert repr(scope.split()[-1]) in caught.value.description
    assert len(store.clients.list()) == before
    assert store.registration_tokens.list()[0].uses == 0


@pytest.mark.usefixtures("orders")
def test_an_omitted_scope_is_openid_if_allowed_else_every_allowed_scope(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    with_openid = scoped_token(store, actor, READ, "openid")
    assert dcr.register(registry, with_openid, body(), T0, actor)["scope"] == "openid"
    without = scoped_token(store, actor, READ, WRITE)
    assert dcr.register(registry, without, body(), T0, actor)["scope"] == f"{READ} {WRITE}"
    unrestricted = mint(store, actor)
    assert dcr.register(registry, unrestricted, body(), T0, actor)["scope"] == "openid"


@pytest.mark.usefixtures("orders")
def test_an_unrestricted_token_registers_any_scope_but_the_admin_api_s(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    value = mint(store, actor)
    answer = dcr.register(registry, value, body(scope=f"openid email {WRITE}"), T0, actor)
    assert answer["scope"] == f"openid email {WRITE}"
    assert refusal(
        dcr.register, registry, value, body(scope=admin_scope(ISSUER)), T0, actor
    ) == ("invalid_client_metadata")


@pytest.mark.usefixtures("orders")
def test_an_update_may_narrow_the_scopes_never_widen_them(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    answer = dcr.register(registry, mint(store, actor), body(scope=f"openid {READ}"), T0, actor)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    before = store.clients.get(client_id)
    with pytest.raises(OAuthError) as caught:
        dcr.replace_registration(
            registry, client_id, token, body(client_id=client_id, scope=f"openid {WRITE}"), T0, actor
        )
    assert caught.value.error == "invalid_client_metadata" and repr(WRITE) in caught.value.description
    assert store.clients.get(client_id) == before
    narrowed = dcr.replace_registration(
        registry, client_id, token, body(client_id=client_id, scope=READ), T0, actor
    )
    assert narrowed["scope"] == READ
    token = narrowed["registration_access_token"]
    # Omitted: `openid` is no longer among the app's scopes, so it keeps what it has.
    kept = dcr.replace_registration(registry, client_id, token, body(client_id=client_id), T0, actor)
    assert kept["scope"] == READ
    assert refusal(
        dcr.replace_registration,
        registry,
        client_id,
        kept["registration_access_token"],
        body(client_id=client_id, scope=f"openid {READ}"),
        T0,
        actor,
    ) == ("invalid_client_metadata")


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_token_exchange_is_the_administrators_to_give_and_a_replace_keeps_it(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    """RFC 8693 (docs/security.md rule 56): registration cannot ask for token exchange; an app
    an administrator gave it keeps it through an RFC 7592 replace, named or not."""
    wants = body(grant_types=["authorization_code", TOKEN_EXCHANGE])
    assert refusal(dcr.register, registry, mint(store, actor), wants, T0, actor) == (
        "invalid_client_metadata"
    )
    create_resource(store, name="Orders", audience=ORDERS, scopes=["orders.read"], now=T0,
                    actor=actor)  # fmt: skip
    answer = dcr.register(registry, mint(store, actor), body(), T0, actor)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    app_rules.set_token_exchange(store, client_id, actor, audiences=[ORDERS])
    for grants in (["authorization_code"], ["authorization_code", TOKEN_EXCHANGE]):
        replaced = dcr.replace_registration(
            registry, client_id, token, body(client_id=client_id, grant_types=grants), T0, actor
        )
        token = replaced["registration_access_token"]
        assert replaced["grant_types"] == ["authorization_code", TOKEN_EXCHANGE]
    client = store.clients.get(client_id)
    assert client is not None and client.token_exchange_audiences == (ORDERS,)


def test_an_administrator_sets_and_removes_token_exchange(
    store: MemoryStore, actor: Actor, registry: dcr.Registry
) -> None:
    create_resource(store, name="Orders", audience=ORDERS, scopes=["orders.read"], now=T0,
                    actor=actor)  # fmt: skip
    app, _ = app_rules.create_app(store, PEPPER, name="Gateway", now=T0, actor=actor,
                                  grant_types=["client_credentials"])  # fmt: skip
    with pytest.raises(InvalidInput, match="impersonation needs"):
        app_rules.set_token_exchange(store, app.client_id, actor, impersonation=True)
    with pytest.raises(InvalidInput, match="no resource"):
        app_rules.set_token_exchange(store, app.client_id, actor, audiences=["nowhere"])
    allowed = app_rules.set_token_exchange(
        store, app.client_id, actor, audiences=["Orders"], impersonation=True
    )
    assert allowed.grant_types == ("client_credentials", TOKEN_EXCHANGE)
    assert allowed.token_exchange_audiences == (ORDERS,) and allowed.token_exchange_impersonation
    # An edit listing the other grants (the console's form) keeps it.
    edited = app_rules.update_app(
        store, app.client_id, actor=actor, grant_types=["client_credentials"]
    )
    assert edited.grant_types == ("client_credentials", TOKEN_EXCHANGE)
    off = app_rules.set_token_exchange(store, app.client_id, actor, audiences=[])
    assert off.grant_types == ("client_credentials",)
    assert not off.token_exchange_audiences and not off.token_exchange_impersonation
    public, _ = app_rules.create_app(store, PEPPER, name="CLI", now=T0, actor=actor, public=True,
                                     redirect_uris=[REDIRECT])  # fmt: skip
    with pytest.raises(InvalidInput, match="public app"):
        app_rules.set_token_exchange(store, public.client_id, actor, audiences=[ORDERS])
    with pytest.raises(InvalidInput, match="public app"):
        app_rules.update_app(store, public.client_id, actor=actor,
                             grant_types=["authorization_code", TOKEN_EXCHANGE])  # fmt: skip
    assert [e.details["audiences"] for e in store.audit.query(
        type="admin.app_token_exchange_set")] == [[], [ORDERS]]  # fmt: skip
