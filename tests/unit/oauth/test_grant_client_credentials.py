"""The client credentials grant (RFC 6749 §4.4, RFC 8707; docs/security.md rule 22) through the
token endpoint on the memory store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tessera.domain.admin import ADMIN_SCOPE, admin_audience
from tessera.domain.model import Client
from tessera.oauth import errors
from tessera.oauth.grants.response import TokenResponse
from tests.unit.oauth.conftest import ISSUER, Core

ORDERS = "https://orders.test/"
REPORTS = "https://reports.test/"
CC = ("client_credentials",)


def issue(core: Core, app: Client, secret: str | None, **form: str) -> TokenResponse:
    values = {"grant_type": "client_credentials", "client_id": app.client_id, **form}
    if secret is not None:
        values["client_secret"] = secret
    return core.token_endpoint().handle(None, values, set())


def refused(core: Core, app: Client, secret: str | None, **form: str) -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as caught:
        issue(core, app, secret, **form)
    return caught.value


@pytest.fixture
def service(core: Core) -> tuple[Client, str | None]:
    core.add_resource(ORDERS, ("read", "write"))
    core.add_resource(REPORTS, ("view",))
    return core.add_app(
        grant_types=CC, allowed_scopes=(f"{ORDERS}read", f"{ORDERS}write", f"{REPORTS}view")
    )


def test_the_token_is_the_apps_own_for_one_audience(
    core: Core, service: tuple[Client, str | None]
) -> None:
    app, secret = service
    issued = issue(core, app, secret, scope=f"{ORDERS}read")
    assert issued.body["scope"] == "read" and issued.body["token_type"] == "Bearer"
    assert "refresh_token" not in issued.body and "id_token" not in issued.body
    claims = core.issuer.verify_own(issued.body["access_token"], int(core.clock().timestamp()))
    assert (claims["sub"], claims["sub_type"], claims["aud"]) == (app.client_id, "client", ORDERS)
    assert (issued.claims.sub, issued.claims.sub_type, issued.claims.jti) == (
        app.client_id,
        "client",
        claims["jti"],
    )
    assert issued.claims.grant_type == "client_credentials"


def test_the_resource_parameter_names_the_audience(
    core: Core, service: tuple[Client, str | None]
) -> None:
    app, secret = service
    issued = issue(core, app, secret, scope="read write", resource=ORDERS)
    assert issued.body["scope"] == "read write"
    error = refused(core, app, secret, scope="read", resource="https://elsewhere.test/")
    assert isinstance(error, errors.InvalidTarget)


def test_without_scope_an_app_of_one_resource_gets_all_its_scopes(core: Core) -> None:
    core.add_resource(ORDERS, ("read", "write"))
    app, secret = core.add_app(grant_types=CC, allowed_scopes=(f"{ORDERS}read", f"{ORDERS}write"))
    assert issue(core, app, secret).body["scope"] == "read write"


def test_scopes_of_two_resources_at_once_are_invalid_target(
    core: Core, service: tuple[Client, str | None]
) -> None:
    app, secret = service
    error = refused(core, app, secret, scope=f"{ORDERS}read {REPORTS}view")
    assert isinstance(error, errors.InvalidTarget)
    assert isinstance(refused(core, app, secret), errors.InvalidTarget)  # two resources, no scope


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("openid", "OpenID scopes need a user; use the authorization code flow"),
        ("https://nowhere.test/read", "unknown scope"),
        ("", "scope is empty"),
    ],
)
def test_scopes_the_grant_cannot_give_are_invalid_scope(
    core: Core, service: tuple[Client, str | None], scope: str, reason: str
) -> None:
    app, secret = service
    error = refused(core, app, secret, scope=scope)
    assert isinstance(error, errors.InvalidScope) and error.description == reason


def test_a_scope_the_app_may_not_ask_for_is_invalid_scope(core: Core) -> None:
    core.add_resource(ORDERS, ("read", "write"))
    app, secret = core.add_app(grant_types=CC, allowed_scopes=(f"{ORDERS}read",))
    error = refused(core, app, secret, scope=f"{ORDERS}write")
    assert isinstance(error, errors.InvalidScope)
    assert error.description == "the app may not ask for this scope"


def test_a_malformed_scope_is_invalid_scope(core: Core, service: tuple[Client, str | None]) -> None:
    app, secret = service
    assert isinstance(refused(core, app, secret, scope='read"'), errors.InvalidScope)


def test_the_admin_scope_needs_an_administrator(core: Core) -> None:
    admin = core.admin_scope
    core.add_resource(admin_audience(ISSUER), (ADMIN_SCOPE,))
    app, secret = core.add_app(grant_types=CC, allowed_scopes=(admin,))
    error = refused(core, app, secret, scope=admin)
    assert isinstance(error, errors.InvalidScope)
    assert error.description == "the admin scope needs an administrator, not an app"


def test_a_public_app_cannot_use_it(core: Core) -> None:
    core.add_resource(ORDERS, ("read",))
    app, _ = core.add_app(public=True, grant_types=CC, allowed_scopes=(f"{ORDERS}read",))
    error = refused(core, app, None, scope=f"{ORDERS}read")
    assert isinstance(error, errors.UnauthorizedClient)


def test_the_lifetime_is_the_apps_capped_by_the_resources(core: Core) -> None:
    resource = core.add_resource(ORDERS, ("read",))
    app, secret = core.add_app(grant_types=CC, allowed_scopes=(f"{ORDERS}read",), access_ttl=600)
    assert issue(core, app, secret).body["expires_in"] == 600
    core.store.resources.update(replace(resource, access_ttl=120))
    assert issue(core, app, secret).body["expires_in"] == 120
