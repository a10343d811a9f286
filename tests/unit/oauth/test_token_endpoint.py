"""The token endpoint's dispatcher (RFC 6749 §2.3, §3.2, §3.2.1, §5.2): the checks every token
request passes before its grant, in their order; docs/security.md rules 15 and 21."""

from __future__ import annotations

import base64
from dataclasses import replace
from urllib.parse import quote_plus

import pytest

from tessera.domain.hashing import keyed_hash
from tessera.domain.model import Client, SecretHash
from tessera.oauth import errors
from tests.unit.oauth.conftest import PEPPER, Core

ORDERS = "https://orders.test/"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def handle(
    core: Core, form: dict[str, str], authorization: str | None = None, dup: set[str] | None = None
) -> object:
    return core.token_endpoint().handle(authorization, form, dup or set())


@pytest.fixture
def service(core: Core) -> tuple[Client, str]:
    core.add_resource(ORDERS, ("read",))
    app, secret = core.add_app(
        grant_types=("client_credentials",), allowed_scopes=(f"{ORDERS}read",)
    )
    assert secret is not None
    return app, secret


def cc(app: Client, **more: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": app.client_id, **more}


def test_basic_and_post_authentication_both_work(core: Core, service: tuple[Client, str]) -> None:
    app, secret = service
    handle(core, {"grant_type": "client_credentials"}, basic(app.client_id, secret))
    handle(core, cc(app, client_secret=secret))


def test_a_repeated_parameter_is_refused_before_anything_else(core: Core) -> None:
    with pytest.raises(errors.InvalidRequest, match="repeated parameter: scope"):
        handle(core, {}, None, {"scope"})
    with pytest.raises(errors.InvalidRequest, match="repeated parameter: grant_type"):
        handle(core, {"grant_type": "password"}, None, {"grant_type"})


def test_a_missing_grant_type_is_invalid_request(core: Core, service: tuple[Client, str]) -> None:
    app, secret = service
    with pytest.raises(errors.InvalidRequest, match="grant_type is required"):
        handle(core, {"client_id": app.client_id, "client_secret": secret})


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x:unknown", "x" * 300])
def test_an_unsupported_grant_type_is_refused_before_client_authentication(
    core: Core, grant_type: str
) -> None:
    # No credentials at all: the grant type is refused first (RFC 9700 §2.4: no password grant).
    with pytest.raises(errors.UnsupportedGrantType) as caught:
        handle(core, {"grant_type": grant_type})
    assert len(caught.value.description) < 100


def test_no_client_authentication_is_invalid_client(core: Core) -> None:
    with pytest.raises(errors.InvalidClient):
        handle(core, {"grant_type": "client_credentials"})


def test_an_unknown_client_is_invalid_client(core: Core) -> None:
    with pytest.raises(errors.InvalidClient):
        handle(core, {"grant_type": "client_credentials"}, basic("app-nobody", "secret"))
    with pytest.raises(errors.InvalidClient):
        handle(core, {"grant_type": "client_credentials", "client_id": "app-nobody",
                      "client_secret": "secret"})  # fmt: skip


def test_a_wrong_secret_is_invalid_client_by_basic_and_by_post(
    core: Core, service: tuple[Client, str]
) -> None:
    app, secret = service
    with pytest.raises(errors.InvalidClient):
        handle(core, {"grant_type": "client_credentials"}, basic(app.client_id, secret + "x"))
    with pytest.raises(errors.InvalidClient):
        handle(core, cc(app, client_secret=secret + "x"))
    with pytest.raises(errors.InvalidClient):  # a confidential app without its secret
        handle(core, cc(app))


def test_two_authentication_methods_are_invalid_request(
    core: Core, service: tuple[Client, str]
) -> None:
    app, secret = service
    with pytest.raises(errors.InvalidRequest):
        handle(core, cc(app, client_secret=secret), basic(app.client_id, secret))
    with pytest.raises(errors.InvalidRequest):  # the body names another client than Basic
        handle(core, cc(app, client_id="app-other"), basic(app.client_id, secret))


def test_malformed_basic_credentials_are_invalid_client(core: Core) -> None:
    for header in ("Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"no-colon").decode()):
        with pytest.raises(errors.InvalidClient):
            handle(core, {"grant_type": "client_credentials"}, header)


def test_a_public_app_identifies_itself_but_may_not_send_a_secret(core: Core) -> None:
    app, _ = core.add_app(public=True)
    with pytest.raises(errors.InvalidClient, match="public app has no secret"):
        handle(core, {"grant_type": "authorization_code", "code": "c",
                      "client_id": app.client_id, "client_secret": "anything"})  # fmt: skip
    # Without a secret it gets as far as its grant (here: an unknown code).
    with pytest.raises(errors.InvalidGrant):
        handle(core, {"grant_type": "authorization_code", "code": "c", "client_id": app.client_id})


def test_a_secret_past_its_rotation_expiry_is_invalid_client(
    core: Core, service: tuple[Client, str]
) -> None:
    app, secret = service
    old = "the-previous-secret"
    expiring = SecretHash(keyed_hash(PEPPER, old), core.clock(), expires_at=core.clock())
    core.store.clients.update(replace(app, secret_hashes=(*app.secret_hashes, expiring)))
    with pytest.raises(errors.InvalidClient):
        handle(core, cc(app, client_secret=old))
    handle(core, cc(app, client_secret=secret))


def test_a_grant_the_app_may_not_use_is_unauthorized_client(
    core: Core, service: tuple[Client, str]
) -> None:
    app, secret = service
    with pytest.raises(errors.UnauthorizedClient, match="refresh_token"):
        handle(core, {"grant_type": "refresh_token", "refresh_token": "r",
                      "client_id": app.client_id, "client_secret": secret})  # fmt: skip
    with pytest.raises(errors.UnauthorizedClient, match="authorization_code"):
        handle(
            core, {"grant_type": "authorization_code", "code": "c"}, basic(app.client_id, secret)
        )
