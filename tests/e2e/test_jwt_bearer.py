"""The JWT bearer grant over real HTTP (RFC 7523 §2.1, §3; Oracle's "JWT user assertion"): the
test acts as a partner system with its own key pair, served from a JWKS endpoint on loopback (and
given inline to a second trusted issuer); an app it allows gets a token for a user of the domain
and calls userinfo and introspection with it. Each broken rule is refused with the right error;
`tessera admin trusted-issuers` and the admin API refuse bad input and write nothing. Runs on
SQLite and, with TESSERA_TEST_DB=postgresql, on PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.support.admin import admin_client, console_token
from tests.support.domains import create_domain, domain_cli
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.support.jwks import JwksEndpoint, public_jwks, serving_jwks
from tests.support.server import Server

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PARTNER = "https://partner.example.test"
INLINE_PARTNER = "partner-inline"  # an issuer need not be a URL
ADMIN_PASSWORD = "Tessera-Demo-Root-2026"


@dataclass
class Partner:
    """The domain as the partner sees it: the apps, the issuers, the keys, a disabled user."""

    server: Server
    key: ECKey
    app: dict[str, Any]  # allowed by both issuers, client_secret_basic
    key_app: dict[str, Any]  # allowed, authenticates with private_key_jwt
    app_key: ECKey
    stranger: dict[str, Any]  # has the grant type, allowed by no issuer
    no_grant: dict[str, Any]  # allowed by the issuer, without the grant type
    disabled_user: str

    @property
    def token_url(self) -> str:
        return f"{self.server.issuer}/oauth2/v1/token"

    def assertion(self, key: Any = None, alg: str = "ES256", **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": PARTNER,
            "sub": self.server.demo["user"]["username"],
            "aud": self.token_url,
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
            **changes,
        }
        signer = key or self.key
        header = {"alg": alg, "kid": signer.kid}
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, signer)

    def token(
        self, assertion: str, app: dict[str, Any] | None = None, **form: Any
    ) -> httpx.Response:
        app = app or self.app
        body = {
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "scope": f"openid profile {self.server.demo['resource']['scope']}",
            **form,
        }
        auth = (app["client_id"], app["client_secret"])
        return httpx.post(self.token_url, data=body, auth=auth, timeout=30)


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksEndpoint]:
    with serving_jwks() as served:
        yield served


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.issuer, token) as client:
        yield client


def _app(admin: httpx.Client, name: str, grants: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": f"{name} {uuid.uuid4().hex[:6]}", "grant_types": grants, **extra}
    response = admin.post("/apps", json=body)
    assert response.status_code == 201, response.text
    app: dict[str, Any] = response.json()
    return app


@pytest.fixture(scope="module")
def partner(server: Server, admin: httpx.Client, jwks: JwksEndpoint) -> Partner:
    key = ECKey.generate_key("P-256", parameters={"kid": "partner-1"})
    jwks.document = public_jwks(key)
    scopes = ["openid", "profile", server.demo["resource"]["scope"]]
    app = _app(admin, "Partner app", [JWT_BEARER], allowed_scopes=scopes)
    app_key = ECKey.generate_key("P-256", parameters={"kid": "app-1"})
    key_app = _app(
        admin,
        "Partner key app",
        [JWT_BEARER],
        allowed_scopes=scopes,
        token_endpoint_auth_method="private_key_jwt",
        jwks=public_jwks(app_key),
    )
    stranger = _app(admin, "Stranger", [JWT_BEARER], allowed_scopes=scopes)
    no_grant = _app(admin, "No grant", ["client_credentials"], allowed_scopes=scopes[2:])
    allowed = [app["client_id"], key_app["client_id"], no_grant["client_id"]]
    # The CLI, as the issue names it: a jwks_uri on loopback (a development node fetches http).
    trusted = server.cli_json(
        *("admin", "trusted-issuers", "create", "--issuer", PARTNER, "--jwks-uri", jwks.url),
        *(arg for client_id in allowed for arg in ("--allowed-app", client_id)),
    )
    assert trusted["issuer"] == PARTNER and trusted["allowed_apps"] == allowed
    assert trusted["allowed_scopes"] == [] and trusted["jwks"] is None
    # The admin API: the same key inline, and a narrower scope list.
    inline = admin.post(
        "/trusted-issuers",
        json={
            "issuer": INLINE_PARTNER,
            "jwks": public_jwks(key),
            "allowed_apps": [app["client_id"]],
            "allowed_scopes": ["openid"],
        },
    )
    assert inline.status_code == 201, inline.text
    user = admin.post(
        "/users", json={"username": f"gone-{uuid.uuid4().hex[:6]}", "password": ADMIN_PASSWORD}
    )
    assert user.status_code == 201, user.text
    username = user.json()["username"]
    assert admin.patch(f"/users/{username}", json={"disabled": True}).status_code == 200
    return Partner(server, key, app, key_app, app_key, stranger, no_grant, username)


def _server_keys(server: Server) -> KeySet:
    return KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())


def test_discovery_advertises_the_grant(server: Server) -> None:
    doc = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert JWT_BEARER in doc["grant_types_supported"]


def test_a_partner_gets_a_user_token_for_userinfo_and_introspection(
    server: Server, partner: Partner, jwks: JwksEndpoint
) -> None:
    response = partner.token(partner.assertion())
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body  # RFC 7523 §3.1 style
    claims = jwt.decode(body["access_token"], _server_keys(server)).claims
    assert claims["sub"] == server.demo["user"]["sub"] and claims["sub_type"] == "user"
    assert claims["client_id"] == partner.app["client_id"]
    assert not {"acr", "amr", "auth_time"} & claims.keys()  # nobody signed in here
    assert jwks.hits >= 1  # the partner's keys came from its JWKS endpoint
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    info = httpx.get(f"{server.base_url}/oauth2/v1/userinfo", headers=bearer)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"] and info.json()["preferred_username"]
    auth = (partner.app["client_id"], partner.app["client_secret"])
    answer = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect", data={"token": body["access_token"]}, auth=auth
    ).json()
    assert answer["active"] is True and answer["sub"] == claims["sub"]
    assert answer["client_id"] == partner.app["client_id"]


def test_an_inline_jwks_issuer_and_its_narrower_scopes(partner: Partner) -> None:
    response = partner.token(partner.assertion(iss=INLINE_PARTNER), scope="openid")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid"
    wider = partner.token(partner.assertion(iss=INLINE_PARTNER), scope="openid profile")
    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")


def test_aud_may_be_the_issuer_and_sub_the_user_id(server: Server, partner: Partner) -> None:
    value = partner.assertion(aud=server.issuer, sub=server.demo["user"]["sub"])
    assert partner.token(value).status_code == 200


def test_the_app_may_authenticate_with_its_own_client_assertion(
    server: Server, partner: Partner
) -> None:
    """Oracle's combination: RFC 7523 §2.2 client authentication and the §2.1 grant in one
    request (two JWTs: the app's about itself, the partner's about the user)."""
    client_id = partner.key_app["client_id"]
    now = int(time.time())
    client_claims = {"iss": client_id, "sub": client_id, "aud": server.issuer, "iat": now}
    client_claims.update(exp=now + 60, jti=uuid.uuid4().hex)
    client_assertion = jwt.encode({"alg": "ES256", "kid": "app-1"}, client_claims, partner.app_key)
    response = httpx.post(
        partner.token_url,
        data={
            "grant_type": JWT_BEARER,
            "assertion": partner.assertion(),
            "scope": "openid",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
        },
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], _server_keys(server)).claims
    assert claims["client_id"] == client_id and claims["sub_type"] == "user"


def test_a_dpop_proof_binds_the_token(server: Server, partner: Partner) -> None:
    key = new_key()
    proof = make_proof(key, "POST", partner.token_url)
    auth = (partner.app["client_id"], partner.app["client_secret"])
    response = httpx.post(
        partner.token_url,
        data={"grant_type": JWT_BEARER, "assertion": partner.assertion(), "scope": "openid"},
        auth=auth,
        headers={"DPoP": proof},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    claims = jwt.decode(response.json()["access_token"], _server_keys(server)).claims
    assert claims["cnf"] == {"jkt": thumbprint(key)}


def _unsigned(partner: Partner) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    return f"{header}.{partner.assertion().split('.')[1]}."


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("wrong issuer", lambda p: p.assertion(iss="https://unknown.example.test")),
        ("wrong aud", lambda p: p.assertion(aud="https://elsewhere.example.test/token")),
        ("expired", lambda p: p.assertion(exp=int(time.time()) - 600, iat=int(time.time()) - 660)),
        ("exp too far ahead", lambda p: p.assertion(exp=int(time.time()) + 3600)),
        ("unknown user", lambda p: p.assertion(sub="nobody-here")),
        ("disabled user", lambda p: p.assertion(sub=p.disabled_user)),
        ("alg none", _unsigned),
        (
            "a key not in the JWKS",
            lambda p: p.assertion(ECKey.generate_key("P-256", parameters={"kid": "partner-1"})),
        ),
        (
            "an RSA key the partner never published",
            lambda p: p.assertion(
                RSAKey.generate_key(2048, parameters={"kid": "rsa-x"}), alg="RS256"
            ),
        ),
    ],
)
def test_a_bad_assertion_is_invalid_grant(partner: Partner, name: str, make: Any) -> None:
    response = partner.token(make(partner))
    assert response.status_code == 400, (name, response.text)
    assert response.json()["error"] == "invalid_grant", name


def test_a_replayed_jti_is_invalid_grant(partner: Partner) -> None:
    value = partner.assertion()
    assert partner.token(value).status_code == 200
    replay = partner.token(value)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_apps_not_allowed_are_unauthorized_client(partner: Partner) -> None:
    for app in (partner.stranger, partner.no_grant):
        response = partner.token(partner.assertion(), app, scope="openid")
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "unauthorized_client"


def test_a_scope_wider_than_allowed_is_invalid_scope(partner: Partner) -> None:
    response = partner.token(partner.assertion(), scope="openid email")  # not the app's
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


def test_an_issuer_of_another_domain_is_unknown_here(server: Server, partner: Partner) -> None:
    name = f"p{uuid.uuid4().hex[:6]}"
    create_domain(server, name, admin=None)
    other = "https://other-domain-partner.example.test"
    trusted = domain_cli(
        server, name, "trusted-issuers", "create", "--issuer", other,
        "--jwks", json.dumps(public_jwks(partner.key)),
    )  # fmt: skip
    assert trusted["issuer"] == other
    response = partner.token(partner.assertion(iss=other))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_revoking_the_user_revokes_the_token(
    server: Server, partner: Partner, admin: httpx.Client
) -> None:
    created = admin.post(
        "/users", json={"username": f"rev-{uuid.uuid4().hex[:6]}", "password": ADMIN_PASSWORD}
    ).json()
    response = partner.token(partner.assertion(sub=created["username"]), scope="openid")
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    auth = (partner.app["client_id"], partner.app["client_secret"])
    introspect = f"{server.base_url}/oauth2/v1/introspect"
    grants = admin.get(f"/users/{created['id']}/grants").json()
    assert [g["client_id"] for g in grants] == [partner.app["client_id"]]
    assert admin.post(f"/users/{created['id']}/revoke-tokens").status_code == 200
    assert httpx.post(introspect, data={"token": access}, auth=auth).json() == {"active": False}


# --- administering trusted issuers -------------------------------------------------------------


def _issuers(server: Server) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.cli_json("admin", "trusted-issuers", "list")
    return found


def test_cli_create_show_update_delete(server: Server, partner: Partner) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "cli-1"})
    issuer = f"https://cli-{uuid.uuid4().hex[:6]}.example.test"
    created = server.cli_json(
        "admin", "trusted-issuers", "create", "--issuer", issuer,
        "--jwks", json.dumps(public_jwks(key)), "--allowed-app", partner.app["client_id"],
        "--allowed-scope", "openid", "--description", "CLI partner",
    )  # fmt: skip
    assert created["jwks"]["keys"][0]["kid"] == "cli-1" and created["allowed_scopes"] == ["openid"]
    assert server.cli_json("admin", "trusted-issuers", "show", issuer)["id"] == created["id"]
    assert issuer in {i["issuer"] for i in _issuers(server)}
    updated = server.cli_json(
        "admin", "trusted-issuers", "update", created["id"], "--no-allowed-scopes",
        "--jwks-uri", "https://keys.example.test/jwks.json",
    )  # fmt: skip
    assert updated["allowed_scopes"] == [] and updated["jwks"] is None
    assert updated["jwks_uri"] == "https://keys.example.test/jwks.json"
    assert updated["allowed_apps"] == [partner.app["client_id"]]
    gone = server.cli_json("admin", "trusted-issuers", "delete", created["id"])
    assert gone == {"deleted": created["id"], "issuer": issuer}
    assert issuer not in {i["issuer"] for i in _issuers(server)}
    again = server.cli("admin", "trusted-issuers", "show", created["id"], "--json", check=False)
    assert again.returncode != 0 and "no trusted issuer" in again.stderr


def test_cli_refuses_bad_input_and_writes_nothing(server: Server, partner: Partner) -> None:
    before = _issuers(server)
    private = ECKey.generate_key("P-256").as_dict(private=True)
    issuer = f"https://bad-{uuid.uuid4().hex[:6]}.example.test"
    cases = [
        (["--jwks", json.dumps({"keys": [private]})], "private"),
        (["--jwks-uri", "http://partner.example.test/jwks"], "https"),
        (["--jwks", "not json"], "not JSON"),
        ([], "exactly one of jwks"),
        (["--jwks-uri", "https://a.test/k", "--jwks", json.dumps(public_jwks(partner.key))], "one"),
        (["--jwks-uri", "https://a.test/k", "--allowed-app", "no-such-app"], "no app"),
        (["--jwks-uri", "https://a.test/k", "--allowed-scope", "nonsense"], "scope"),
    ]
    for args, words in cases:
        result = server.cli(
            "admin", "trusted-issuers", "create", "--issuer", issuer, *args, "--json", check=False
        )
        assert result.returncode != 0, args
        assert words in json.loads(result.stderr)["error"], (args, result.stderr)
    taken = server.cli(
        "admin", "trusted-issuers", "create", "--issuer", PARTNER, "--jwks-uri",
        "https://a.test/k", "--json", check=False,
    )  # fmt: skip
    assert taken.returncode != 0 and "trusted already" in taken.stderr
    assert _issuers(server) == before


def test_admin_api_refuses_bad_input_and_writes_nothing(
    admin: httpx.Client, partner: Partner
) -> None:
    before = admin.get("/trusted-issuers").json()
    for body, status in [
        ({"issuer": PARTNER, "jwks_uri": "https://a.test/k"}, 409),
        ({"issuer": "", "jwks_uri": "https://a.test/k"}, 400),
        ({"issuer": "has space", "jwks_uri": "https://a.test/k"}, 400),
        ({"issuer": "x", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, 400),
        ({"issuer": "x", "jwks_uri": "https://a.test/k", "allowed_apps": ["nope"]}, 400),
        ({"issuer": "x", "jwks_uri": "https://a.test/k", "unknown": 1}, 400),
    ]:
        response = admin.post("/trusted-issuers", json=body)
        assert response.status_code == status, (body, response.text)
    assert admin.get("/trusted-issuers").json() == before
    target = next(i for i in before if i["issuer"] == INLINE_PARTNER)
    bad = admin.patch(f"/trusted-issuers/{target['id']}", json={"allowed_scopes": ["nonsense"]})
    assert bad.status_code == 400
    assert admin.get(f"/trusted-issuers/{target['id']}").json() == target
    assert admin.delete("/trusted-issuers/ti_nope").status_code == 404
    by_issuer = admin.get(f"/trusted-issuers/{PARTNER}")  # an issuer URL names it too
    assert by_issuer.status_code == 200 and by_issuer.json()["issuer"] == PARTNER
