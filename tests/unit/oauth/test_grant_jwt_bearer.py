"""The JWT bearer grant (RFC 7523 §2.1, §3, §3.1) through the token endpoint on the memory
store and the injected clock: a trusted partner's assertion gets an app a user's token, and
every rule refuses on its own (`invalid_grant`, `unauthorized_client`, `invalid_scope`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, Key, RSAKey

from tessera.domain.model import Client, TrustedIssuer
from tessera.manage.revocation import revoke_client, revoke_subject
from tessera.oauth import errors
from tessera.oauth.client_auth import AssertionCheck
from tessera.oauth.client_jwks import JwksFetcher
from tessera.oauth.grants.jwt_bearer import JWT_BEARER
from tessera.oauth.grants.response import TokenResponse
from tests.unit.oauth.conftest import ISSUER, Core

ORDERS = "https://orders.test/"
PARTNER = "https://partner.example"
TOKEN_URL = f"{ISSUER}/oauth2/v1/token"
PARTNER_KEY = ECKey.generate_key("P-256", parameters={"kid": "p-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "p-1"})  # same kid, another key
_jtis = iter(range(10**9))


def jwks_of(*keys: Key) -> str:
    return json.dumps({"keys": [k.as_dict(private=False) for k in keys]})


def assertion(
    core: Core, key: Key = PARTNER_KEY, alg: str = "ES256", **changes: Any
) -> str:
    now = int(core.clock().timestamp())
    claims = {
        "iss": PARTNER,
        "sub": "alice",
        "aud": TOKEN_URL,
        "exp": now + 120,
        "iat": now,
        "jti": f"jti-{next(_jtis)}",
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    header = {"alg": alg, "kid": key.kid}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key, algorithms=[alg])


@pytest.fixture
def fetcher() -> Iterator[JwksFetcher]:
    fetcher = JwksFetcher()
    yield fetcher
    fetcher.close()


class Partner:
    """The domain with a trusted partner, one app it allows and the user alice."""

    def __init__(self, core: Core, fetcher: JwksFetcher) -> None:
        self.core = core
        core.add_resource(ORDERS, ("read", "write"))
        self.user = core.add_user("alice")
        self.app, _ = core.add_app(
            grant_types=(JWT_BEARER,),
            allowed_scopes=("openid", "profile", f"{ORDERS}read", f"{ORDERS}write"),
        )
        now = core.clock()
        self.trusted = TrustedIssuer(
            "ti-1", PARTNER, now, now, jwks=jwks_of(PARTNER_KEY), allowed_apps=(self.app.client_id,)
        )
        core.store.trusted_issuers.add(self.trusted)
        self.endpoint = core.token_endpoint(
            assertions=AssertionCheck(
                ISSUER, frozenset({ISSUER}), core.store.nonces.use_once, fetcher
            )
        )

    def issue(self, value: str, app: Client | None = None, **form: str) -> TokenResponse:
        app = app or self.app
        body = {
            "grant_type": JWT_BEARER,
            "assertion": value,
            "scope": f"openid {ORDERS}read",
            **self.core.credentials(app),
            **form,
        }
        return self.endpoint.handle(None, body, set())

    def refused(self, value: str, app: Client | None = None, **form: str) -> errors.OAuthError:
        with pytest.raises(errors.OAuthError) as caught:
            self.issue(value, app, **form)
        return caught.value

    def trust(self, **changes: Any) -> None:
        self.trusted = replace(self.trusted, updated_at=self.core.clock(), **changes)
        self.core.store.trusted_issuers.update(self.trusted)


@pytest.fixture
def partner(core: Core, fetcher: JwksFetcher) -> Partner:
    return Partner(core, fetcher)


def test_an_assertion_gets_the_app_a_token_for_the_user(partner: Partner, core: Core) -> None:
    issued = partner.issue(assertion(core))
    body = issued.body
    assert body["scope"] == "openid read" and body["token_type"] == "Bearer"
    # RFC 7523 §3.1 style: no refresh token, and no ID token (nobody signed in here).
    assert "refresh_token" not in body and "id_token" not in body
    claims = core.issuer.verify_own(body["access_token"], int(core.clock().timestamp()))
    assert (claims["sub"], claims["sub_type"], claims["client_id"], claims["aud"]) == (
        partner.user.id,
        "user",
        partner.app.client_id,
        ORDERS,
    )
    # No sign-in here: nothing that meets a resource server's level or max_age (rule 46).
    assert not {"acr", "amr", "auth_time"} & claims.keys()
    assert issued.claims.grant_type == JWT_BEARER
    grant = core.store.grants.get(claims["sid"])  # an ordinary grant record
    assert grant is not None and grant.user_id == partner.user.id
    assert grant.absolute_expiry == core.clock() + timedelta(seconds=body["expires_in"])


def test_sub_may_be_the_user_id(partner: Partner, core: Core) -> None:
    body = partner.issue(assertion(core, sub=partner.user.id)).body
    claims = core.issuer.verify_own(body["access_token"], int(core.clock().timestamp()))
    assert claims["sub"] == partner.user.id


def test_aud_may_be_the_issuer(partner: Partner, core: Core) -> None:
    assert partner.issue(assertion(core, aud=ISSUER)).body["access_token"]
    assert partner.issue(assertion(core, aud=["https://x.test", ISSUER])).body["access_token"]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"iss": "https://unknown.example"}, "unknown issuer"),
        ({"iss": "https://p.example/" + "x" * 2000}, "an issuer too long to be trusted"),
        ({"iss": 7}, "iss not a string"),
        ({"aud": "https://other.example/token"}, "another audience"),
        ({"aud": None}, "no aud"),
        ({"exp": -31}, "expired (past the leeway)"),
        ({"exp": 331}, "exp more than five minutes ahead"),
        ({"exp": None}, "no exp"),
        ({"iat": 120}, "iat in the future"),
        ({"nbf": 120}, "not valid yet"),
        ({"jti": None}, "no jti"),
        ({"sub": None}, "no sub"),
        ({"sub": "mallory"}, "unknown user"),
    ],
)
def test_a_bad_assertion_is_invalid_grant(
    partner: Partner, core: Core, changes: dict[str, Any], why: str
) -> None:
    now = int(core.clock().timestamp())
    changes = {k: now + v if k in ("exp", "iat", "nbf") and v else v for k, v in changes.items()}
    error = partner.refused(assertion(core, **changes))
    assert isinstance(error, errors.InvalidGrant), why
    assert error.description == "the assertion is not valid"  # the reason is for the audit log


def test_a_jti_is_used_once(partner: Partner, core: Core) -> None:
    value = assertion(core)
    partner.issue(value)
    error = partner.refused(value)
    assert isinstance(error, errors.InvalidGrant) and "replay" in (error.debug or "")


def test_a_refused_request_burns_no_jti(partner: Partner, core: Core) -> None:
    value = assertion(core)
    assert isinstance(partner.refused(value, scope=f"{ORDERS}delete"), errors.InvalidScope)
    partner.trust(allowed_apps=())
    assert isinstance(partner.refused(value), errors.UnauthorizedClient)
    partner.trust(allowed_apps=(partner.app.client_id,))
    core.store.users.update(replace(partner.user, disabled_at=core.clock()))
    assert isinstance(partner.refused(value), errors.InvalidGrant)
    core.store.users.update(partner.user)
    assert partner.issue(value).body["access_token"]


def test_a_disabled_user_gets_nothing(partner: Partner, core: Core) -> None:
    core.store.users.update(replace(partner.user, disabled_at=core.clock()))
    assert isinstance(partner.refused(assertion(core)), errors.InvalidGrant)


def test_alg_none_hmac_and_foreign_keys_are_refused(partner: Partner, core: Core) -> None:
    good = assertion(core)
    head, body, _ = good.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    unsigned = f"{none_header}.{body}."
    assert isinstance(partner.refused(unsigned), errors.InvalidGrant)
    assert isinstance(partner.refused(f"{head}.{body}.AAAA"), errors.InvalidGrant)
    # A key that is not in the issuer's JWK Set (the same kid), and an RSA key it lacks.
    assert isinstance(partner.refused(assertion(core, OTHER_KEY)), errors.InvalidGrant)
    rsa = RSAKey.generate_key(2048, parameters={"kid": "r-1"})
    assert isinstance(partner.refused(assertion(core, rsa, "RS256")), errors.InvalidGrant)


def test_an_app_the_issuer_does_not_name_is_unauthorized_client(
    partner: Partner, core: Core
) -> None:
    other, _ = core.add_app(grant_types=(JWT_BEARER,), allowed_scopes=("openid", f"{ORDERS}read"))
    assert isinstance(partner.refused(assertion(core), other), errors.UnauthorizedClient)


def test_an_app_without_the_grant_type_is_unauthorized_client(
    partner: Partner, core: Core
) -> None:
    core.store.clients.update(replace(partner.app, grant_types=("client_credentials",)))
    assert isinstance(partner.refused(assertion(core)), errors.UnauthorizedClient)


def test_a_public_app_is_unauthorized_client(partner: Partner, core: Core) -> None:
    app, _ = core.add_app(public=True, grant_types=(JWT_BEARER,), allowed_scopes=("openid",))
    partner.trust(allowed_apps=(partner.app.client_id, app.client_id))
    error = partner.refused(assertion(core), app, scope="openid")
    assert isinstance(error, errors.UnauthorizedClient)


def test_scopes_are_what_the_app_and_the_issuer_both_allow(partner: Partner, core: Core) -> None:
    partner.trust(allowed_scopes=("openid", f"{ORDERS}read"))
    assert partner.issue(assertion(core)).body["scope"] == "openid read"
    error = partner.refused(assertion(core), scope=f"{ORDERS}write")  # the app's, not the issuer's
    assert isinstance(error, errors.InvalidScope)
    error = partner.refused(assertion(core), scope="email")  # neither's
    assert isinstance(error, errors.InvalidScope)
    assert isinstance(partner.refused(assertion(core), scope=""), errors.InvalidScope)


def test_the_admin_scope_is_never_granted(partner: Partner, core: Core) -> None:
    core.store.clients.update(
        replace(partner.app, allowed_scopes=(*partner.app.allowed_scopes, core.admin_scope))
    )
    core.store.users.update(replace(partner.user, is_admin=True))
    error = partner.refused(assertion(core), scope=core.admin_scope)
    assert isinstance(error, errors.InvalidScope)


def test_keys_change_with_the_issuer(partner: Partner, core: Core) -> None:
    core.clock.advance(1)
    partner.trust(jwks=jwks_of(OTHER_KEY))
    assert isinstance(partner.refused(assertion(core)), errors.InvalidGrant)
    assert partner.issue(assertion(core, OTHER_KEY)).body["access_token"]


def test_revoking_the_user_or_the_app_reaches_the_token(partner: Partner, core: Core) -> None:
    first = partner.issue(assertion(core)).body["access_token"]
    assert core.introspect(partner.app, first)["active"] is True
    core.clock.advance(1)
    revoke_subject(core.store, partner.user.id, core.clock())
    assert core.introspect(partner.app, first)["active"] is False
    core.clock.advance(1)
    second = partner.issue(assertion(core)).body["access_token"]
    assert core.introspect(partner.app, second)["active"] is True
    revoke_client(core.store, partner.app.client_id, core.clock())
    assert core.introspect(partner.app, second)["active"] is False


def test_an_assertion_expires_with_the_clock(partner: Partner, core: Core) -> None:
    value = assertion(core)  # exp 120 s ahead, accepted up to 30 s later
    core.clock.advance(149)
    assert partner.issue(value).body["access_token"]
    late = assertion(core)
    core.clock.advance(151)
    assert isinstance(partner.refused(late), errors.InvalidGrant)
