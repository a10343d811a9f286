"""The rules of an app's client metadata (`tessera.manage.apps`, `tessera.manage.app_metadata`,
`tessera.oauth.fapi2`) on the in-memory store: authentication methods and the public/confidential
split (RFC 7591 §2), keys for `private_key_jwt` (`jwks` xor `jwks_uri`, https only), signing
algorithms per method, ID token algorithms, DPoP (RFC 9449 §5.2), FAPI 2.0 (Security Profile §5.3.2.1,
§5.3.2.2, §5.4.1), the sealed secret of `client_secret_jwt` apps, switching methods, and
informational details. The CLI and the admin API: tests/e2e/test_app_metadata.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from tessera.domain.client_secrets import open_secret
from tessera.domain.hashing import keyed_hash
from tessera.domain.model import Client
from tessera.manage import apps as app_rules
from tessera.manage.audit import Actor, store_actor
from tessera.manage.errors import InvalidInput
from tessera.manage.views import app_view
from tessera.oauth import fapi2
from tessera.oauth.client_jwks import allows_insecure_jwks_uri
from tessera.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PEPPER = b"p" * 32
REDIRECT = "https://app.example.test/cb"
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
JWKS = {"keys": [EC_KEY.as_dict(private=False)]}
JWKS_URI = "https://app.example.test/jwks.json"


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.ensure_domain("Default", T0)
    return s


@pytest.fixture
def actor(store: MemoryStore) -> Actor:
    return store_actor("admin-sub", store, lambda: T0)


def create(store: MemoryStore, actor: Actor, **kwargs: Any) -> tuple[Client, str | None]:
    kwargs.setdefault("name", "app")
    kwargs.setdefault("redirect_uris", [REDIRECT])
    return app_rules.create_app(store, PEPPER, now=T0, actor=actor, **kwargs)


def refused(store: MemoryStore, actor: Actor, **kwargs: Any) -> str:
    before = store.clients.list()
    with pytest.raises(InvalidInput) as caught:
        create(store, actor, **kwargs)
    assert store.clients.list() == before  # nothing half-written
    return str(caught.value)


def pkjwt(store: MemoryStore, actor: Actor, **kwargs: Any) -> Client:
    kwargs.setdefault("jwks_uri", JWKS_URI)
    client, secret = create(store, actor, token_endpoint_auth_method="private_key_jwt", **kwargs)
    assert secret is None
    return client


# --- methods -----------------------------------------------------------------------------------


def test_defaults_keep_todays_apps() -> None:
    store = MemoryStore()
    store.ensure_domain("Default", T0)
    actor = store_actor("a", store, lambda: T0)
    client, secret = create(store, actor)
    assert secret is not None and client.auth_method == "client_secret_basic"
    assert client.token_endpoint_auth_method is None
    assert client.id_token_signed_response_alg == "RS256"
    assert client.secret_hashes[0].sealed is None
    assert not client.requires_par and client.profile is None and client.details is None
    public, none = create(store, actor, name="spa", public=True)
    assert none is None and public.auth_method == "none" and public.secret_hashes == ()


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_secret_methods_are_stored(store: MemoryStore, actor: Actor, method: str) -> None:
    client, secret = create(store, actor, token_endpoint_auth_method=method)
    assert secret is not None
    assert client.token_endpoint_auth_method == method
    assert client.secret_hashes[0].hash == keyed_hash(PEPPER, secret)


def test_an_unknown_method_is_refused(store: MemoryStore, actor: Actor) -> None:
    message = refused(store, actor, token_endpoint_auth_method="tls_client_auth")
    assert "unsupported token_endpoint_auth_method 'tls_client_auth'" in message
    assert "private_key_jwt" in message


def test_none_is_for_public_apps_only(store: MemoryStore, actor: Actor) -> None:
    assert "none is for public apps" in refused(store, actor, token_endpoint_auth_method="none")
    message = refused(store, actor, public=True, token_endpoint_auth_method="client_secret_post")
    assert "a public app has no secret and no keys" in message
    client, _ = create(store, actor, public=True, token_endpoint_auth_method="none")
    assert client.auth_method == "none"


# --- private_key_jwt ---------------------------------------------------------------------------


def test_private_key_jwt_with_a_jwks_uri_has_no_secret(store: MemoryStore, actor: Actor) -> None:
    client = pkjwt(store, actor)
    assert client.jwks_uri == JWKS_URI and client.jwks is None
    assert client.secret_hashes == ()
    assert app_view(client)["secrets"] == []


@pytest.mark.parametrize("as_text", [False, True])
def test_private_key_jwt_with_inline_keys(store: MemoryStore, actor: Actor, as_text: bool) -> None:
    client = pkjwt(store, actor, jwks_uri=None, jwks=json.dumps(JWKS) if as_text else JWKS)
    assert client.jwks is not None and json.loads(client.jwks) == JWKS
    assert app_view(client)["jwks"] == JWKS


def test_private_key_jwt_needs_exactly_one_key_source(store: MemoryStore, actor: Actor) -> None:
    method = {"token_endpoint_auth_method": "private_key_jwt"}
    assert "give exactly one of jwks" in refused(store, actor, **method)
    both = refused(store, actor, **method, jwks=JWKS, jwks_uri=JWKS_URI)
    assert "give exactly one of jwks" in both


@pytest.mark.parametrize(
    ("jwks", "why"),
    [
        ("{not json", "jwks is not JSON"),
        ({"keys": []}, "not a JWK Set"),
        ({"keys": [EC_KEY.as_dict(private=True)]}, "private or symmetric"),
        ({"keys": [OctKey.generate_key(256).as_dict()]}, "private or symmetric"),
    ],
)
def test_bad_inline_keys_are_refused(
    store: MemoryStore, actor: Actor, jwks: object, why: str
) -> None:
    message = refused(store, actor, token_endpoint_auth_method="private_key_jwt", jwks=jwks)
    assert why in message


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_short_rsa_keys_are_refused(store: MemoryStore, actor: Actor) -> None:
    short = RSAKey.generate_key(1024, private=True).as_dict(private=False)
    message = refused(
        store, actor, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [short]}
    )
    assert "an RSA key is shorter than 2048 bits" in message


@pytest.mark.parametrize(
    "uri", ["http://app.example.test/jwks", "http://127.0.0.1:8000/jwks", "ftp://x.test/j", ""]
)
def test_jwks_uri_is_https(store: MemoryStore, actor: Actor, uri: str) -> None:
    message = refused(store, actor, token_endpoint_auth_method="private_key_jwt", jwks_uri=uri)
    assert "jwks_uri" in message


def test_http_loopback_jwks_uri_only_for_a_loopback_issuer(
    store: MemoryStore, actor: Actor
) -> None:
    uri = "http://127.0.0.1:8000/jwks"
    client = pkjwt(store, actor, jwks_uri=uri, allow_insecure_jwks_uri=True)
    assert client.jwks_uri == uri
    message = refused(
        store,
        actor,
        name="other",
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri="http://app.example.test/jwks",
        allow_insecure_jwks_uri=True,
    )
    assert "the jwks_uri must be an https URL" in message


@pytest.mark.parametrize(
    ("issuer", "allowed"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000/domains/x", True),
        ("http://[::1]:9000", True),
        ("https://127.0.0.1", False),
        ("http://id.example.test", False),
        ("https://id.example.test", False),
    ],
)
def test_insecure_loopback_follows_the_issuer(issuer: str, allowed: bool) -> None:
    assert allows_insecure_jwks_uri(issuer) is allowed


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_jwt"])
def test_keys_are_refused_for_other_methods(store: MemoryStore, actor: Actor, method: str) -> None:
    message = refused(store, actor, token_endpoint_auth_method=method, jwks_uri=JWKS_URI)
    assert "jwks and jwks_uri are the keys of private_key_jwt apps" in message
    assert "keys of private_key_jwt" in refused(store, actor, jwks=JWKS)


# --- signing algorithms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "alg", "ok"),
    [
        ("private_key_jwt", "PS256", True),
        ("private_key_jwt", "ES256", True),
        ("private_key_jwt", "EdDSA", True),
        ("private_key_jwt", "HS256", False),
        ("private_key_jwt", "none", False),
        ("client_secret_jwt", "HS512", True),
        ("client_secret_jwt", "RS256", False),
        ("client_secret_basic", "HS256", False),
        ("client_secret_post", "ES256", False),
    ],
)
def test_signing_alg_fits_the_method(
    store: MemoryStore, actor: Actor, method: str, alg: str, ok: bool
) -> None:
    kwargs: dict[str, Any] = {"token_endpoint_auth_method": method}
    if method == "private_key_jwt":
        kwargs["jwks_uri"] = JWKS_URI
    if ok:
        client, _ = create(store, actor, token_endpoint_auth_signing_alg=alg, **kwargs)
        assert client.token_endpoint_auth_signing_alg == alg
    else:
        message = refused(store, actor, token_endpoint_auth_signing_alg=alg, **kwargs)
        assert "token_endpoint_auth_signing_alg" in message


def test_id_token_alg(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, id_token_signed_response_alg="ES256")
    assert client.id_token_signed_response_alg == "ES256"
    message = refused(store, actor, name="b", id_token_signed_response_alg="HS256")
    assert "unsupported id_token_signed_response_alg 'HS256': use one of RS256, ES256" in message
    assert "none" in refused(store, actor, name="c", id_token_signed_response_alg="none")


def test_par_per_app(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, require_pushed_authorization_requests=True)
    assert client.require_pushed_authorization_requests and client.requires_par
    assert app_view(client)["require_pushed_authorization_requests"] is True


def test_dpop_bound_access_tokens_per_app(store: MemoryStore, actor: Actor) -> None:
    """RFC 9449 §5.2: off by default; on, every token request needs a DPoP proof."""
    client, _ = create(store, actor, dpop_bound_access_tokens=True)
    assert client.dpop_bound_access_tokens and app_view(client)["dpop_bound_access_tokens"]
    plain, _ = create(store, actor, name="plain")
    assert not plain.dpop_bound_access_tokens
    off = app_rules.update_app(
        store, client.client_id, actor=actor, dpop_bound_access_tokens=False
    )
    assert not off.dpop_bound_access_tokens
    assert "dpop_bound_access_tokens must be true or false" in refused(
        store, actor, name="c", dpop_bound_access_tokens="yes"
    )


# --- FAPI 2.0 ----------------------------------------------------------------------------------


def test_fapi2_defaults(store: MemoryStore, actor: Actor) -> None:
    """§5.3.2.1 private_key_jwt and DPoP-bound tokens, §5.4.1 ES256 ID tokens, §5.3.2.2 PAR:
    filled in when left out."""
    client, secret = create(store, actor, profile="fapi2", jwks_uri=JWKS_URI)
    assert secret is None and client.secret_hashes == ()
    assert client.profile == "fapi2" and client.auth_method == "private_key_jwt"
    assert client.id_token_signed_response_alg == "ES256"
    assert client.require_pushed_authorization_requests is True
    assert client.dpop_bound_access_tokens is True
    assert client.token_endpoint_auth_signing_alg is None
    assert fapi2.client_violations(client) == []


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"public": True, "grant_types": ["authorization_code"]}, "FAPI 2.0 has no public apps"),
        (
            {"token_endpoint_auth_method": "client_secret_basic", "jwks_uri": None},
            "FAPI 2.0 apps authenticate with private_key_jwt, not client_secret_basic",
        ),
        ({"token_endpoint_auth_signing_alg": "RS256"}, "not RS256 (Security Profile §5.4.1)"),
        ({"token_endpoint_auth_signing_alg": "ES384"}, "not ES384"),
        ({"id_token_signed_response_alg": "RS256"}, "FAPI 2.0 forbids RS256 ID tokens"),
        (
            {"require_pushed_authorization_requests": False},
            "FAPI 2.0 requires pushed authorization requests",
        ),
        (
            {"dpop_bound_access_tokens": False},
            "FAPI 2.0 requires sender-constrained access tokens (Security Profile §5.3.2.1)",
        ),
        ({"redirect_uris": ["http://127.0.0.1:5000/cb"]}, "FAPI 2.0 allows https redirect URIs"),
        ({"redirect_uris": ["com.example.app:/cb"]}, "FAPI 2.0 allows https redirect URIs"),
    ],
)
def test_fapi2_refusals(store: MemoryStore, actor: Actor, kwargs: dict[str, Any], why: str) -> None:
    kwargs = {"profile": "fapi2", "jwks_uri": JWKS_URI, **kwargs}
    if kwargs.get("public"):
        kwargs.pop("jwks_uri")
    assert why in refused(store, actor, **kwargs)


def test_fapi2_loopback_redirect_only_for_a_loopback_issuer(
    store: MemoryStore, actor: Actor
) -> None:
    uri = "http://127.0.0.1:5000/cb"
    client, _ = create(
        store,
        actor,
        profile="fapi2",
        jwks_uri=JWKS_URI,
        redirect_uris=[uri],
        allow_insecure_jwks_uri=True,
    )
    assert client.redirect_uris == (uri,)


def test_an_unknown_profile_is_refused(store: MemoryStore, actor: Actor) -> None:
    assert "unsupported profile 'fapi1': use one of fapi2" in refused(store, actor, profile="fapi1")


def test_fapi2_profile_violations_are_plain_functions() -> None:
    ok = {
        "public": False,
        "auth_method": "private_key_jwt",
        "signing_alg": "PS256",
        "id_token_alg": "ES256",
        "requires_par": True,
        "redirect_uris": [REDIRECT],
    }
    assert fapi2.profile_violations(**ok) == []  # type: ignore[arg-type]
    bad = {**ok, "public": True, "auth_method": "none", "requires_par": False}
    assert len(fapi2.profile_violations(**bad)) == 3  # type: ignore[arg-type]
    assert len(fapi2.profile_violations(**ok, dpop_bound=False)) == 1  # type: ignore[arg-type]
    assert {"PS256", "ES256", "EdDSA"} == fapi2.FAPI2_SIGNING_ALGS
    assert fapi2.FAPI2_CODE_TTL == 60


# --- client_secret_jwt: the sealed secret ------------------------------------------------------


def test_client_secret_jwt_keeps_the_secret_sealed(store: MemoryStore, actor: Actor) -> None:
    client, secret = create(store, actor, token_endpoint_auth_method="client_secret_jwt")
    assert secret is not None
    sealed = client.secret_hashes[0].sealed
    assert sealed is not None and secret.encode() not in sealed
    assert open_secret(PEPPER, client.client_id, sealed) == secret.encode()
    assert open_secret(PEPPER, "another-app", sealed) is None
    view = json.dumps(app_view(client))
    assert secret not in view and "sealed" not in view


def test_rotation_of_a_client_secret_jwt_app_seals_both(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, token_endpoint_auth_method="client_secret_jwt")
    rotated, secret = app_rules.rotate_secret(store, PEPPER, client.client_id, 600, T0, actor)
    fresh, previous = rotated.secret_hashes
    assert fresh.sealed is not None and previous.sealed is not None
    assert open_secret(PEPPER, client.client_id, fresh.sealed) == secret.encode()
    assert previous.expires_at == T0 + timedelta(seconds=600)


def test_switching_to_client_secret_jwt_needs_a_sealed_secret(
    store: MemoryStore, actor: Actor
) -> None:
    client, _ = create(store, actor)
    with pytest.raises(InvalidInput) as caught:
        app_rules.update_app(
            store, client.client_id, actor=actor, token_endpoint_auth_method="client_secret_jwt"
        )
    message = str(caught.value)
    assert "kept only as a hash, and client_secret_jwt needs it recoverable" in message
    assert "rotate the secret with --token-endpoint-auth-method client_secret_jwt" in message
    assert store.clients.get(client.client_id) == client
    rotated, secret = app_rules.rotate_secret(
        store,
        PEPPER,
        client.client_id,
        0,
        T0,
        actor,
        token_endpoint_auth_method="client_secret_jwt",
    )
    assert rotated.auth_method == "client_secret_jwt" and len(rotated.secret_hashes) == 1
    sealed = rotated.secret_hashes[0].sealed
    assert sealed is not None and open_secret(PEPPER, client.client_id, sealed) == secret.encode()


def test_switching_away_from_client_secret_jwt_drops_the_sealed_forms(
    store: MemoryStore, actor: Actor
) -> None:
    client, _ = create(store, actor, token_endpoint_auth_method="client_secret_jwt")
    app_rules.rotate_secret(store, PEPPER, client.client_id, 600, T0, actor)
    updated = app_rules.update_app(
        store, client.client_id, actor=actor, token_endpoint_auth_method="client_secret_post"
    )
    assert updated.auth_method == "client_secret_post"
    assert len(updated.secret_hashes) == 2
    assert all(s.sealed is None for s in updated.secret_hashes)
    # ... and back needs a new secret.
    with pytest.raises(InvalidInput, match="rotate the secret"):
        app_rules.update_app(
            store, client.client_id, actor=actor, token_endpoint_auth_method="client_secret_jwt"
        )


def test_rotation_to_another_secret_method_unseals(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, token_endpoint_auth_method="client_secret_jwt")
    rotated, _ = app_rules.rotate_secret(
        store,
        PEPPER,
        client.client_id,
        600,
        T0,
        actor,
        token_endpoint_auth_method="client_secret_basic",
    )
    assert rotated.auth_method == "client_secret_basic"
    assert all(s.sealed is None for s in rotated.secret_hashes)


# --- switching methods -------------------------------------------------------------------------


def test_switching_to_private_key_jwt_drops_the_secret(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor)
    updated = app_rules.update_app(
        store,
        client.client_id,
        actor=actor,
        token_endpoint_auth_method="private_key_jwt",
        jwks=JWKS,
    )
    assert updated.auth_method == "private_key_jwt" and updated.jwks is not None
    assert updated.secret_hashes == ()  # the old, maybe leaked, secret never comes back
    assert updated.version == client.version + 1
    # Back to a secret method: only with a new secret (rotate-secret).
    with pytest.raises(InvalidInput, match="rotate-secret|rotate the secret"):
        app_rules.update_app(
            store, client.client_id, actor=actor, token_endpoint_auth_method="client_secret_basic"
        )

def test_a_private_key_jwt_app_gets_a_secret_only_by_rotation(
    store: MemoryStore, actor: Actor
) -> None:
    client = pkjwt(store, actor, token_endpoint_auth_signing_alg="ES256")
    with pytest.raises(InvalidInput) as caught:
        app_rules.update_app(
            store, client.client_id, actor=actor, token_endpoint_auth_method="client_secret_basic"
        )
    assert "has no secret to use with client_secret_basic" in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        app_rules.rotate_secret(store, PEPPER, client.client_id, 0, T0, actor)
    assert "authenticates with private_key_jwt, without a secret" in str(caught.value)
    rotated, secret = app_rules.rotate_secret(
        store,
        PEPPER,
        client.client_id,
        0,
        T0,
        actor,
        token_endpoint_auth_method="client_secret_post",
    )
    assert rotated.auth_method == "client_secret_post"
    assert rotated.jwks_uri is None and rotated.token_endpoint_auth_signing_alg is None
    assert rotated.secret_hashes[0].hash == keyed_hash(PEPPER, secret)


def test_rotation_cannot_switch_to_a_keyless_method(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor)
    for method in ("private_key_jwt", "none"):
        with pytest.raises(InvalidInput, match="without a secret"):
            app_rules.rotate_secret(
                store, PEPPER, client.client_id, 0, T0, actor, token_endpoint_auth_method=method
            )


def test_replacing_the_keys(store: MemoryStore, actor: Actor) -> None:
    client = pkjwt(store, actor)
    inline = app_rules.update_app(store, client.client_id, actor=actor, jwks=JWKS)
    assert inline.jwks is not None and inline.jwks_uri is None
    uri = app_rules.update_app(store, client.client_id, actor=actor, jwks_uri=JWKS_URI)
    assert uri.jwks is None and uri.jwks_uri == JWKS_URI
    with pytest.raises(InvalidInput, match="give exactly one of jwks"):
        app_rules.update_app(store, client.client_id, actor=actor, jwks_uri=None)


def test_update_checks_like_create(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"token_endpoint_auth_method": "none"}, "none is for public apps"),
        ({"dpop_bound_access_tokens": 1}, "dpop_bound_access_tokens must be true or false"),
        ({"token_endpoint_auth_signing_alg": "HS256"}, "applies to private_key_jwt"),
        ({"id_token_signed_response_alg": "PS256"}, "use one of RS256, ES256"),
        ({"profile": "fapi2"}, "FAPI 2.0 apps authenticate with private_key_jwt"),
        ({"jwks_uri": JWKS_URI}, "keys of private_key_jwt apps"),
    ]
    for kwargs, why in cases:
        with pytest.raises(InvalidInput) as caught:
            app_rules.update_app(store, client.client_id, actor=actor, **kwargs)
        assert why in str(caught.value), kwargs
    assert store.clients.get(client.client_id) == client


def test_turning_fapi2_on_and_off(store: MemoryStore, actor: Actor) -> None:
    client = pkjwt(store, actor)
    on = app_rules.update_app(store, client.client_id, actor=actor, profile="fapi2")
    assert on.profile == "fapi2" and on.id_token_signed_response_alg == "ES256"
    assert on.require_pushed_authorization_requests and on.dpop_bound_access_tokens
    with pytest.raises(InvalidInput, match="sender-constrained"):
        app_rules.update_app(store, client.client_id, actor=actor, dpop_bound_access_tokens=False)
    with pytest.raises(InvalidInput, match="forbids RS256"):
        app_rules.update_app(
            store, client.client_id, actor=actor, id_token_signed_response_alg="RS256"
        )
    with pytest.raises(InvalidInput, match="allows https redirect URIs only"):
        app_rules.update_app(
            store, client.client_id, actor=actor, redirect_uris=["http://127.0.0.1:1/cb"]
        )
    off = app_rules.update_app(store, client.client_id, actor=actor, profile=None)
    assert off.profile is None and off.require_pushed_authorization_requests
    plain = app_rules.update_app(
        store,
        client.client_id,
        actor=actor,
        require_pushed_authorization_requests=False,
        id_token_signed_response_alg=None,
    )
    assert not plain.requires_par and plain.id_token_signed_response_alg == "RS256"


def test_fapi2_apps_have_no_secret_to_rotate(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, profile="fapi2", jwks_uri=JWKS_URI)
    with pytest.raises(InvalidInput, match="FAPI 2.0 apps authenticate with private_key_jwt"):
        app_rules.rotate_secret(
            store,
            PEPPER,
            client.client_id,
            0,
            T0,
            actor,
            token_endpoint_auth_method="client_secret_basic",
        )


def test_metadata_changes_are_audited_by_name(store: MemoryStore, actor: Actor) -> None:
    client = pkjwt(store, actor)
    app_rules.update_app(store, client.client_id, actor=actor, jwks=JWKS)
    (event,) = store.audit.query(type="admin.app_updated")
    assert event.details["changed"] == ["jwks", "jwks_uri"]


# --- details and the registration token --------------------------------------------------------

DETAILS = {
    "client_uri": "https://app.example.test/",
    "logo_uri": "https://app.example.test/logo.png",
    "tos_uri": "https://app.example.test/tos",
    "policy_uri": "https://app.example.test/privacy",
    "contacts": ["ops@example.test", "ops@example.test", "sec@example.test"],
    "software_id": "4NRB1-0XZABZI9E6-5SM3R",
    "software_version": "2.1",
}


def test_details_are_stored_and_shown(store: MemoryStore, actor: Actor) -> None:
    client, _ = create(store, actor, details=DETAILS, registration_token_hash="h" * 43)
    view = app_view(client)
    assert view["contacts"] == ["ops@example.test", "sec@example.test"]
    assert view["logo_uri"] == DETAILS["logo_uri"] and view["software_version"] == "2.1"
    assert view["dynamically_registered"] is True
    assert "h" * 43 not in json.dumps(view)
    cleared = app_rules.update_app(store, client.client_id, actor=actor, details=None)
    assert cleared.details is None and app_view(cleared)["contacts"] == []


@pytest.mark.parametrize(
    ("details", "why"),
    [
        ({"logo_uri": "http://app.example.test/l.png"}, "logo_uri must be an https URL"),
        ({"client_uri": "javascript:alert(1)"}, "client_uri must be an https URL"),
        ({"contacts": "ops@example.test"}, "contacts must be a list"),
        ({"contacts": ["a\nb"]}, "control characters"),
        ({"software_id": ""}, "software_id must be text"),
        ({"color": "red"}, "unknown app details ['color']"),
    ],
)
def test_bad_details_are_refused(
    store: MemoryStore, actor: Actor, details: dict[str, Any], why: str
) -> None:
    assert why in refused(store, actor, details=details)


def test_the_view_shows_the_metadata(store: MemoryStore, actor: Actor) -> None:
    client = pkjwt(store, actor, token_endpoint_auth_signing_alg="PS256")
    view = app_view(client)
    assert view["token_endpoint_auth_method"] == "private_key_jwt"
    assert view["token_endpoint_auth_signing_alg"] == "PS256"
    assert view["jwks_uri"] == JWKS_URI and view["jwks"] is None
    assert view["id_token_signed_response_alg"] == "RS256"
    assert view["profile"] is None and view["dpop_bound_access_tokens"] is False
    assert view["dynamically_registered"] is False


def test_a_jwks_with_an_integer_beyond_64_bits_is_invalid_input(
    store: MemoryStore, actor: Actor
) -> None:
    """The admin API's JSON parser keeps big integers; they must not reach the store as a 500."""
    key = {"keys": [{**JWKS["keys"][0], "ext": 10**30}]}
    with pytest.raises(InvalidInput, match="not plain JSON"):
        create(store, actor, token_endpoint_auth_method="private_key_jwt", jwks=key)


def test_apps_take_the_jwt_bearer_grant_but_public_apps_do_not(
    store: MemoryStore, actor: Actor
) -> None:
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
    app, secret = create(store, actor, grant_types=[grant], redirect_uris=[])
    assert app.grant_types == (grant,) and secret
    updated = app_rules.update_app(store, app.client_id, actor=actor, grant_types=[grant, "client_credentials"])
    assert updated.grant_types == (grant, "client_credentials")
    assert "public app" in refused(store, actor, name="p", public=True, grant_types=[grant])
