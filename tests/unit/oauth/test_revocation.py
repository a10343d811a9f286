"""Token revocation, RFC 7009: §2.1 (a refresh token revokes its grant and the grant's access
tokens; only the client the token was issued to may revoke it; `token_type_hint`), §2.2 (200
for unknown tokens; invalid hints are ignored); docs/security.md rules 16 and 25.

The web layer answers 200 whenever `revoke` returns, and the error's status when it raises.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from tessera.domain.model import Client, User
from tessera.oauth import errors
from tessera.oauth.revocation import revoke
from tessera.store.protocols import StoreUnavailable
from tests.unit.oauth.conftest import ORDERS, Core

INACTIVE = {"active": False}


@pytest.fixture(autouse=True)
def resources(core: Core) -> None:
    core.add_resource()


@pytest.fixture
def user(core: Core) -> User:
    return core.add_user()


@pytest.fixture
def app(core: Core) -> Client:
    return core.add_app()[0]


@pytest.fixture
def service(core: Core) -> Client:
    return core.add_app(grant_types=("client_credentials",))[0]


def events(core: Core) -> int:
    """How many revocation events were ever appended."""
    return core.store.revocations.last_seq()


# --- the request -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [{}, {"token": ""}, {"token_type_hint": "refresh_token"}])
def test_a_request_without_a_token_is_invalid_request(
    core: Core, app: Client, form: dict[str, str]
) -> None:
    with pytest.raises(errors.InvalidRequest):
        revoke(app, form, core.store, core.issuer, core.clock(), core.clock())


# --- refresh tokens revoke their grant (§2.1) --------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_family_and_the_grants_access_tokens(
    core: Core, app: Client, user: User
) -> None:
    first = core.code_flow(app, user)
    second = core.refresh(app, first["refresh_token"])
    other_grant = core.code_flow(app, user)
    core.revoke(app, second["refresh_token"])
    for token in (
        second["refresh_token"],
        second["access_token"],
        first["access_token"],  # the same grant, before the rotation
    ):
        assert core.introspect(app, token) == INACTIVE
    with pytest.raises(errors.InvalidGrant):
        core.refresh(app, second["refresh_token"])
    assert core.introspect(app, other_grant["refresh_token"])["active"] is True
    assert core.introspect(app, other_grant["access_token"])["active"] is True


def test_revoking_an_already_rotated_refresh_token_still_revokes_the_family(
    core: Core, app: Client, user: User
) -> None:
    first = core.code_flow(app, user)
    second = core.refresh(app, first["refresh_token"])
    core.revoke(app, first["refresh_token"])
    assert core.introspect(app, second["refresh_token"]) == INACTIVE
    with pytest.raises(errors.InvalidGrant):
        core.refresh(app, second["refresh_token"])


def test_a_public_app_revokes_its_own_refresh_token(core: Core, user: User) -> None:
    native, _ = core.add_app(public=True, redirect_uris=("http://127.0.0.1/cb",))
    body = core.code_flow(native, user)
    core.revoke(native, body["refresh_token"])
    with pytest.raises(errors.InvalidGrant):
        core.refresh(native, body["refresh_token"])


def test_revoking_twice_is_fine_and_stays_revoked(core: Core, app: Client, user: User) -> None:
    body = core.code_flow(app, user)
    core.revoke(app, body["refresh_token"])
    core.clock.advance(60)
    core.revoke(app, body["refresh_token"])
    assert core.introspect(app, body["access_token"]) == INACTIVE


# --- access tokens revoke their jti ------------------------------------------------------------


def test_revoking_an_access_token_revokes_that_token_only(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user)
    sibling = core.refresh(app, body["refresh_token"])  # the same grant
    core.revoke(app, body["access_token"])
    assert core.introspect(app, body["access_token"]) == INACTIVE
    assert core.introspect(app, sibling["access_token"])["active"] is True
    assert core.refresh(app, sibling["refresh_token"])["token_type"] == "Bearer"


def test_a_client_credentials_token_is_revoked_by_its_jti_until_it_expires(
    core: Core, service: Client
) -> None:
    body = core.client_credentials(service)
    claims = core.introspect(service, body["access_token"])
    before = events(core)
    core.revoke(service, body["access_token"])
    [event] = core.store.revocations.since(before)
    assert (event.kind.value, event.key) == ("jti", claims["jti"])
    # Kept as long as the token could be presented, no longer.
    assert event.expires_at == datetime.fromtimestamp(claims["exp"], event.expires_at.tzinfo)
    assert core.introspect(service, body["access_token"]) == INACTIVE


def test_an_expired_access_token_needs_no_event(core: Core, service: Client) -> None:
    body = core.client_credentials(service)
    core.clock.advance(body["expires_in"])
    before = events(core)
    core.revoke(service, body["access_token"])
    assert events(core) == before


# --- another app's, unknown and invalid tokens: 200, nothing revoked (§2.1, §2.2) -------------


def test_another_apps_tokens_are_ignored(
    core: Core, app: Client, service: Client, user: User
) -> None:
    """§2.1: the server verifies the token was issued to the client making the request."""
    stranger, _ = core.add_app()
    orders_api, _ = core.add_app(resource_server_for=(ORDERS,))
    user_tokens = core.code_flow(app, user)
    client_token = core.client_credentials(service)["access_token"]
    before = events(core)
    for caller in (stranger, orders_api):  # not even the resource server of the audience
        for token in (user_tokens["refresh_token"], user_tokens["access_token"], client_token):
            core.revoke(caller, token)
    assert events(core) == before
    assert core.introspect(app, user_tokens["refresh_token"])["active"] is True
    assert core.introspect(app, user_tokens["access_token"])["active"] is True
    assert core.introspect(service, client_token)["active"] is True


@pytest.mark.parametrize(
    "token",
    [
        "unknown-refresh-token",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.",
        "a" * 257,
        "a" * 5000 + ".b.c",
        "é",
    ],
)
def test_unknown_or_invalid_tokens_are_accepted_and_revoke_nothing(
    core: Core, app: Client, token: str
) -> None:
    before = events(core)
    core.revoke(app, token)
    assert events(core) == before


# --- token_type_hint (§2.1, §2.2) --------------------------------------------------------------


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "id_token", "bogus", ""])
def test_the_hint_neither_hides_a_token_nor_fails_the_request(
    core: Core, app: Client, user: User, hint: str
) -> None:
    """§2.1: a token not found by its hint is searched among every type; §2.2: an invalid
    hint value is ignored and does not influence the response."""
    first, second = core.code_flow(app, user), core.code_flow(app, user)
    core.revoke(app, first["refresh_token"], token_type_hint=hint)
    core.revoke(app, second["access_token"], token_type_hint=hint)
    assert core.introspect(app, first["refresh_token"]) == INACTIVE
    assert core.introspect(app, second["access_token"]) == INACTIVE
    assert core.introspect(app, second["refresh_token"])["active"] is True


# --- failures are not hidden behind the 200 ----------------------------------------------------


class FailingGrants:
    def __init__(self, inner: Any) -> None:
        self.get = inner.get

    def revoke(self, grant_id: str, now: datetime, expires: datetime) -> bool:
        raise StoreUnavailable("the database is down")


def test_a_failed_write_raises_instead_of_answering_200(
    core: Core, app: Client, user: User
) -> None:
    """fosite CVE-2020-15223: a storage error propagates (the web layer answers 503), so the
    client never believes a token is dead while it still works (rule 26)."""
    body = core.code_flow(app, user)
    store = SimpleNamespace(
        refresh_tokens=core.store.refresh_tokens,
        grants=FailingGrants(core.store.grants),
        revocations=core.store.revocations,
    )
    with pytest.raises(StoreUnavailable):
        revoke(
            app,
            {"token": body["refresh_token"]},
            store,  # type: ignore[arg-type]
            core.issuer,
            core.clock(),
            core.clock(),
        )
