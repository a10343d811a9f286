"""Dynamic client registration's protocol rules (`tessera.oauth.registration`): reading the RFC 7591
§2 metadata into the app rules' arguments, the defaults, the §2.1 consistency of response and
grant types, redirect URIs and scopes, the §3.2.2 error codes, and the §3.2.1 response."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.domain.admin import ADMIN_SCOPE, admin_audience, admin_scope, operator_scope
from tessera.domain.model import DEFAULT_DOMAIN, Client, ClientKind, Resource
from tessera.oauth.registration import (
    DEFAULT_SCOPE,
    PROFILE_FIELD,
    ClientMetadata,
    InvalidClientMetadata,
    InvalidRedirectUri,
    client_information,
    default_scopes,
    metadata_error,
    parse_metadata,
    registrable_scopes,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ISSUER = "https://id.example.test"
ORDERS = "https://orders.example.test/"
REDIRECT = "https://app.example.test/cb"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANTS = ("authorization_code", "refresh_token", "client_credentials", JWT_BEARER)
RESOURCES = [
    Resource("r-orders", "orders", ORDERS, ("read", "write"), T0),
    Resource("r-admin", "admin", admin_audience(ISSUER), (ADMIN_SCOPE,), T0),
]


def parse(
    body: dict[str, Any] | bytes | None,
    domain_id: str = DEFAULT_DOMAIN,
    ceiling: tuple[str, ...] | None = None,
) -> ClientMetadata:
    raw = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    return parse_metadata(
        raw,
        resources=RESOURCES,
        issuer=ISSUER,
        domain_id=domain_id,
        grant_types=GRANTS,
        scope_ceiling=ceiling,
    )


def refused(body: dict[str, Any] | bytes | None) -> str:
    with pytest.raises((InvalidClientMetadata, InvalidRedirectUri)) as caught:
        parse(body)
    return caught.value.error


def test_defaults_are_rfc_7591_s2() -> None:
    meta = parse({"redirect_uris": [REDIRECT]})
    assert meta.name is None
    assert not meta.public
    assert meta.fields == {
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code"],
        "allowed_scopes": list(DEFAULT_SCOPE),
        "token_endpoint_auth_method": "client_secret_basic",
        "token_endpoint_auth_signing_alg": None,
        "jwks": None,
        "jwks_uri": None,
        "require_pushed_authorization_requests": False,
        "dpop_bound_access_tokens": False,
        "id_token_signed_response_alg": "RS256",
        "profile": None,
        "details": None,
    }


def test_every_standard_member_is_read() -> None:
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}
    meta = parse(
        {
            "client_name": "  Orders app ",
            "redirect_uris": [REDIRECT, REDIRECT],
            "post_logout_redirect_uris": ["https://app.example.test/bye"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": jwks,
            "scope": f"openid {ORDERS}read offline_access",
            "require_pushed_authorization_requests": True,
            "id_token_signed_response_alg": "ES256",
            "client_uri": "https://app.example.test/",
            "contacts": ["ops@example.test"],
            "software_id": "orders",
            "software_version": "1.2",
            "frobnicate": True,  # unknown: ignored (RFC 7591 §2)
            "registration_access_token": "x",  # server-issued: ignored (RFC 7592 §2.2)
        }
    )
    assert meta.name == "Orders app"
    fields = meta.fields
    assert fields["redirect_uris"] == [REDIRECT]
    assert fields["post_logout_redirect_uris"] == ["https://app.example.test/bye"]
    assert fields["grant_types"] == ["authorization_code", "refresh_token"]
    assert fields["allowed_scopes"] == ["openid", f"{ORDERS}read", "offline_access"]
    assert fields["token_endpoint_auth_method"] == "private_key_jwt"
    assert fields["token_endpoint_auth_signing_alg"] == "ES256"
    assert fields["jwks"] == jwks
    assert fields["require_pushed_authorization_requests"] is True
    assert fields["id_token_signed_response_alg"] == "ES256"
    assert fields["details"] == {
        "client_uri": "https://app.example.test/",
        "contacts": ["ops@example.test"],
        "software_id": "orders",
        "software_version": "1.2",
    }


def test_scope_in_rfc_8707_form_is_kept_canonical() -> None:
    # A scope a resource defines, written as Oracle's concatenation, resolves to itself.
    assert parse({"grant_types": ["client_credentials"], "scope": f"{ORDERS}write"}).fields[
        "allowed_scopes"
    ] == [f"{ORDERS}write"]


def test_public_client_is_token_endpoint_auth_method_none() -> None:
    meta = parse({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert meta.public


def test_fapi2_profile_sets_the_profiles_defaults() -> None:
    meta = parse({"redirect_uris": [REDIRECT], PROFILE_FIELD: "fapi2"})
    assert meta.fields["profile"] == "fapi2"
    assert meta.fields["token_endpoint_auth_method"] == "private_key_jwt"
    assert meta.fields["id_token_signed_response_alg"] == "ES256"
    assert meta.fields["require_pushed_authorization_requests"] is True


def test_client_credentials_only_app_has_no_response_types_and_needs_no_redirect_uri() -> None:
    meta = parse({"grant_types": ["client_credentials"]})
    assert meta.fields["grant_types"] == ["client_credentials"]
    assert meta.fields["redirect_uris"] == []


def test_update_fields_client_id_and_secret_are_read() -> None:
    meta = parse({"redirect_uris": [REDIRECT], "client_id": "abc", "client_secret": "s"})
    assert (meta.client_id, meta.client_secret) == ("abc", "s")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"text"',
        None,  # not sent as application/json
        {"redirect_uris": REDIRECT},
        {"redirect_uris": [REDIRECT, 7]},
        {"redirect_uris": [REDIRECT], "grant_types": "authorization_code"},
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": 1},
        {"redirect_uris": [REDIRECT], "require_pushed_authorization_requests": "yes"},
        {"redirect_uris": [REDIRECT], "jwks": "{}"},
        {"redirect_uris": [REDIRECT], "client_name": ""},
        {"redirect_uris": [REDIRECT], "scope": ["openid"]},
    ],
)
def test_malformed_metadata_is_invalid_client_metadata(body: dict[str, Any] | bytes | None) -> None:
    assert refused(body) == "invalid_client_metadata"


def test_oversized_metadata_is_refused() -> None:
    body = json.dumps({"redirect_uris": [REDIRECT], "client_name": "x" * 70000}).encode()
    assert refused(body) == "invalid_client_metadata"


@pytest.mark.parametrize(
    "grants",
    [["implicit"], ["password"], ["urn:ietf:params:oauth:grant-type:saml2-bearer"]],
)
def test_unsupported_grant_types_are_refused(grants: list[str]) -> None:
    assert refused({"redirect_uris": [REDIRECT], "grant_types": grants}) == (
        "invalid_client_metadata"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": [REDIRECT], "response_types": ["token"]},
        {"redirect_uris": [REDIRECT], "response_types": ["code id_token"]},
        {"redirect_uris": [REDIRECT], "response_types": []},
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
    ],
)
def test_response_types_must_agree_with_grant_types(body: dict[str, Any]) -> None:
    assert refused(body) == "invalid_client_metadata"


def test_public_client_cannot_use_client_credentials() -> None:
    body = {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}
    assert refused(body) == "invalid_client_metadata"


def test_a_confidential_client_may_register_for_the_jwt_bearer_grant() -> None:
    """RFC 7523 §2.1; it still needs a trusted issuer that names it (docs/security.md rule 55)."""
    meta = parse({"grant_types": [JWT_BEARER], "scope": "openid"})
    assert meta.fields["grant_types"] == [JWT_BEARER] and meta.fields["redirect_uris"] == []
    public = {"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "none"}
    assert refused(public) == "invalid_client_metadata"


@pytest.mark.parametrize(
    "body",
    [
        {},  # the default authorization_code grant needs a redirect URI
        {"redirect_uris": ["http://app.example.test/cb"]},
        {"redirect_uris": ["https://app.example.test/cb#frag"]},
        {"redirect_uris": ["https://*.example.test/cb"]},
        {"redirect_uris": ["javascript:alert(1)"]},
        {"redirect_uris": [REDIRECT], "post_logout_redirect_uris": ["http://evil.test/"]},
    ],
)
def test_bad_redirect_uris_are_invalid_redirect_uri(body: dict[str, Any]) -> None:
    assert refused(body) == "invalid_redirect_uri"


def test_loopback_redirect_uris_are_allowed() -> None:
    meta = parse({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})
    assert meta.fields["redirect_uris"] == ["http://127.0.0.1/cb"]


@pytest.mark.parametrize("scope", ["", "   "])
def test_empty_scope_registers_openid_only(scope: str) -> None:
    assert parse({"redirect_uris": [REDIRECT], "scope": scope}).fields["allowed_scopes"] == [
        "openid"
    ]


@pytest.mark.parametrize(
    "scope",
    [
        "openid nonsense",
        f"{ORDERS}delete",
        'openid "quoted"',
        admin_scope(ISSUER),
        f"openid {operator_scope(ISSUER)}",
    ],
)
def test_unknown_and_admin_scopes_are_refused(scope: str) -> None:
    assert refused({"redirect_uris": [REDIRECT], "scope": scope}) == "invalid_client_metadata"


def test_admin_scope_refused_in_another_domain_too() -> None:
    with pytest.raises(InvalidClientMetadata):
        parse({"redirect_uris": [REDIRECT], "scope": admin_scope(ISSUER)}, domain_id="d-other")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("redirect URI 'http://x.test/': use https", "invalid_redirect_uri"),
        ("the redirect URI 'http://x.test/' is not https: FAPI 2.0 ...", "invalid_redirect_uri"),
        ("a private_key_jwt app needs its public keys", "invalid_client_metadata"),
        ("unsupported id_token_signed_response_alg 'HS256'", "invalid_client_metadata"),
    ],
)
def test_app_rule_messages_are_named_as_rfc_7591_s3_2_2(message: str, error: str) -> None:
    refusal = metadata_error(message)
    assert (refusal.error, refusal.status, refusal.description) == (error, 400, message)


def test_client_information_response() -> None:
    client = Client(
        client_id="c1",
        name="Orders app",
        kind=ClientKind.CONFIDENTIAL,
        redirect_uris=(REDIRECT,),
        grant_types=("authorization_code", "refresh_token"),
        allowed_scopes=("openid", f"{ORDERS}read"),
        created_at=T0,
        post_logout_redirect_uris=("https://app.example.test/bye",),
        token_endpoint_auth_method="private_key_jwt",
        token_endpoint_auth_signing_alg="ES256",
        jwks='{"keys":[]}',
        id_token_signed_response_alg="ES256",
        profile="fapi2",
    )
    body = client_information(
        client,
        registration_access_token="rat",
        registration_client_uri=f"{ISSUER}/oauth2/v1/register/c1",
        details={"client_uri": "https://app.example.test/", "other": "dropped"},
        client_secret=None,
    )
    assert body == {
        "client_id": "c1",
        "client_id_issued_at": int(T0.timestamp()),
        "registration_access_token": "rat",
        "registration_client_uri": f"{ISSUER}/oauth2/v1/register/c1",
        "client_name": "Orders app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": {"keys": []},
        "scope": f"openid {ORDERS}read",
        "post_logout_redirect_uris": ["https://app.example.test/bye"],
        "require_pushed_authorization_requests": True,  # FAPI 2.0 implies it
        "dpop_bound_access_tokens": False,
        "id_token_signed_response_alg": "ES256",
        PROFILE_FIELD: "fapi2",
        "client_uri": "https://app.example.test/",
    }


def test_client_information_with_a_new_secret() -> None:
    client = Client(
        client_id="c2",
        name="Worker",
        kind=ClientKind.CONFIDENTIAL,
        redirect_uris=(),
        grant_types=("client_credentials",),
        allowed_scopes=(f"{ORDERS}read",),
        created_at=T0,
    )
    body = client_information(
        client,
        registration_access_token="rat",
        registration_client_uri="u",
        details={},
        client_secret="s3cret",
    )
    assert body["client_secret"] == "s3cret"
    assert body["client_secret_expires_at"] == 0
    assert body["response_types"] == []
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "jwks" not in body and PROFILE_FIELD not in body


# --- a ceiling: the initial access token's scopes, or the app's for an update ------------------


def scopes_within(scope: str | None, ceiling: tuple[str, ...]) -> list[str]:
    body: dict[str, Any] = {"redirect_uris": [REDIRECT]}
    if scope is not None:
        body["scope"] = scope
    return list(parse(body, ceiling=ceiling).fields["allowed_scopes"])


def test_scopes_within_the_ceiling_are_kept_canonical() -> None:
    ceiling = ("openid", f"{ORDERS}read")
    assert scopes_within("https://orders.example.test:443/read openid", ceiling) == [
        f"{ORDERS}read",
        "openid",
    ]


@pytest.mark.parametrize(
    ("scope", "named"),
    [("openid profile", "profile"), (f"{ORDERS}write", f"{ORDERS}write"), ("email", "email")],
)
def test_a_scope_beyond_the_ceiling_is_invalid_client_metadata(scope: str, named: str) -> None:
    with pytest.raises(InvalidClientMetadata) as caught:
        scopes_within(scope, ("openid", f"{ORDERS}read"))
    assert repr(named) in caught.value.description


def test_an_admin_scope_is_refused_even_within_a_ceiling() -> None:
    with pytest.raises(InvalidClientMetadata):
        scopes_within(admin_scope(ISSUER), (admin_scope(ISSUER),))


@pytest.mark.parametrize(
    ("ceiling", "expected"),
    [
        (None, ["openid"]),
        (("profile", "openid"), ["openid"]),
        ((f"{ORDERS}read", "email"), [f"{ORDERS}read", "email"]),
        ((), []),
    ],
)
def test_an_omitted_scope_is_openid_when_allowed_else_the_whole_ceiling(
    ceiling: tuple[str, ...] | None, expected: list[str]
) -> None:
    assert default_scopes(ceiling) == expected
    if ceiling is not None:
        assert scopes_within(None, ceiling) == expected
        assert scopes_within("", ceiling) == expected


def test_registrable_scopes_resolve_and_drop_repeats() -> None:
    assert registrable_scopes(
        ["openid", f"{ORDERS}read", "https://orders.example.test:443/read"],
        RESOURCES,
        ISSUER,
        DEFAULT_DOMAIN,
    ) == ["openid", f"{ORDERS}read"]
    with pytest.raises(InvalidClientMetadata):
        registrable_scopes([operator_scope(ISSUER)], RESOURCES, ISSUER, DEFAULT_DOMAIN)
