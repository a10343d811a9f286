"""Token introspection, RFC 7662: §2.1 (the request, `token_type_hint`), §2.2 (the answer), §4
(only the token's own app or a resource server of its audience learns anything);
docs/security.md rules 18, 25 and 30, and the revocation events of docs/architecture.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import Client, RevocationKind, User
from tessera.manage.revocation import revoke_client, revoke_subject
from tessera.oauth import errors
from tessera.oauth.introspection import introspect
from tessera.oauth.tokens import AccessTokenSpec, TokenIssuer
from tests.unit.oauth.conftest import ISSUER, ORDERS, Core

INACTIVE = {"active": False}
HOUR = timedelta(hours=1)
REPORTS = "https://reports.test/"
SCOPES = ("openid", "profile", f"{ORDERS}read", f"{REPORTS}read")


@pytest.fixture(autouse=True)
def resources(core: Core) -> None:
    core.add_resource()
    core.add_resource(REPORTS, ("read",))


@pytest.fixture
def user(core: Core) -> User:
    return core.add_user()


@pytest.fixture
def app(core: Core) -> Client:
    """The web app of the code flow."""
    return core.add_app(allowed_scopes=SCOPES)[0]


@pytest.fixture
def service(core: Core) -> Client:
    """A client-credentials app."""
    return core.add_app(grant_types=("client_credentials",), allowed_scopes=SCOPES)[0]


@pytest.fixture
def stranger(core: Core) -> Client:
    """Another confidential app, neither the tokens' client nor a resource server."""
    return core.add_app(allowed_scopes=SCOPES)[0]


@pytest.fixture
def orders_api(core: Core) -> Client:
    """The resource server registered for the orders audience."""
    return core.add_app(grant_types=("client_credentials",), resource_server_for=(ORDERS,))[0]


@pytest.fixture
def reports_api(core: Core) -> Client:
    return core.add_app(grant_types=("client_credentials",), resource_server_for=(REPORTS,))[0]


def ts(when: datetime) -> int:
    return int(when.timestamp())


# --- the request -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [{}, {"token": ""}, {"token_type_hint": "access_token"}])
def test_a_request_without_a_token_is_invalid_request(
    core: Core, service: Client, form: dict[str, str]
) -> None:
    with pytest.raises(errors.InvalidRequest):
        introspect(service, form, core.store, core.issuer, core.revocations(), core.clock())


# --- access tokens (§2.2) ----------------------------------------------------------------------


def test_an_active_client_credentials_token_is_described_by_its_claims(
    core: Core, service: Client
) -> None:
    body = core.client_credentials(service)
    answer = core.introspect(service, body["access_token"])
    jti = answer.pop("jti")
    assert isinstance(jti, str) and jti
    assert answer == {
        "active": True,
        "token_type": "Bearer",
        "scope": "read",
        "client_id": service.client_id,
        "sub": service.client_id,
        "sub_type": "client",  # rule 22
        "aud": ORDERS,
        "iss": ISSUER,
        "iat": ts(core.clock()),
        "nbf": ts(core.clock()),
        "exp": ts(core.clock()) + body["expires_in"],
    }


def test_an_active_user_token_names_the_user_the_grant_and_the_sign_in(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user, f"openid {ORDERS}read")
    answer = core.introspect(app, body["access_token"])
    assert answer["active"] is True
    assert answer["sub"] == answer["user_id"] == user.id
    assert answer["sub_type"] == "user" and answer["user_displayname"] == user.display_name
    assert (answer["client_id"], answer["aud"], answer["scope"]) == (
        app.client_id,
        ORDERS,
        "openid read",
    )
    assert answer["auth_time"] == ts(core.clock())
    refresh = core.introspect(app, body["refresh_token"])
    assert answer["sid"] == refresh["sid"]  # the grant, also the refresh family


def test_an_access_token_is_active_until_its_exp(core: Core, service: Client) -> None:
    body = core.client_credentials(service)
    core.clock.advance(body["expires_in"] - 1)
    assert core.introspect(service, body["access_token"])["active"] is True
    core.clock.advance(1)  # now == exp
    assert core.introspect(service, body["access_token"]) == INACTIVE


def test_the_answer_for_an_expired_token_says_nothing_else(core: Core, service: Client) -> None:
    body = core.client_credentials(service)
    core.clock.advance(body["expires_in"] + 86400)
    assert core.introspect(service, body["access_token"]) == INACTIVE


# --- revocation events -------------------------------------------------------------------------


def test_a_revoked_jti_is_inactive_and_other_tokens_stay_active(
    core: Core, service: Client
) -> None:
    first, second = core.client_credentials(service), core.client_credentials(service)
    jti = core.introspect(service, first["access_token"])["jti"]
    now = core.clock()
    core.store.revocations.append(RevocationKind.JTI, jti, now, now + HOUR, now)
    assert core.introspect(service, first["access_token"]) == INACTIVE
    assert core.introspect(service, second["access_token"])["active"] is True


def test_a_revoked_grant_ends_its_access_and_refresh_tokens(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user)
    other = core.code_flow(app, user)  # another grant of the same user and app
    sid = core.introspect(app, body["access_token"])["sid"]
    core.store.grants.revoke(sid, core.clock(), core.clock() + HOUR)
    assert core.introspect(app, body["access_token"]) == INACTIVE
    assert core.introspect(app, body["refresh_token"]) == INACTIVE
    assert core.introspect(app, other["access_token"])["active"] is True
    assert core.introspect(app, other["refresh_token"])["active"] is True


def test_a_subject_cut_off_ends_the_users_earlier_tokens_but_not_later_ones(
    core: Core, app: Client, user: User
) -> None:
    """An administrator's revocation (rule 18): every token of the user issued up to the
    cut-off, also in its second (`iat` has 1 s resolution); a sign-in after it works."""
    bob = core.add_user("bob")
    before = core.code_flow(app, user)
    bobs = core.code_flow(app, bob)
    core.clock.advance(0.5)
    revoke_subject(core.store, user.id, core.clock())
    assert core.introspect(app, before["access_token"]) == INACTIVE
    assert core.introspect(app, before["refresh_token"]) == INACTIVE
    assert core.introspect(app, bobs["access_token"])["active"] is True
    core.clock.advance(1)
    after = core.code_flow(app, user)
    assert core.introspect(app, after["access_token"])["active"] is True


def test_revoking_an_app_ends_its_client_credentials_tokens(core: Core, service: Client) -> None:
    other, _ = core.add_app(grant_types=("client_credentials",), allowed_scopes=SCOPES)
    token, others = core.client_credentials(service), core.client_credentials(other)
    revoke_client(core.store, service.client_id, core.clock())
    assert core.introspect(service, token["access_token"]) == INACTIVE
    assert core.introspect(other, others["access_token"])["active"] is True


def test_a_revocation_made_a_moment_ago_is_seen_by_a_long_lived_state(
    core: Core, service: Client
) -> None:
    """The node's one `RevocationState` syncs from the store before answering."""
    state = core.revocations()
    token = core.client_credentials(service)["access_token"]

    def answer() -> dict[str, Any]:
        form = {"token": token}
        return introspect(service, form, core.store, core.issuer, state, core.clock())

    assert answer()["active"] is True
    core.revoke(service, token)
    assert answer() == INACTIVE


# --- who may learn about a token (§2.1, §4; rule 30) -------------------------------------------


def test_another_app_learns_nothing_about_a_token(
    core: Core, app: Client, service: Client, stranger: Client, user: User
) -> None:
    user_tokens = core.code_flow(app, user)
    client_token = core.client_credentials(service)["access_token"]
    for token in (user_tokens["access_token"], user_tokens["refresh_token"], client_token):
        assert core.introspect(stranger, token) == INACTIVE


def test_the_resource_server_of_the_audience_may_introspect(
    core: Core, app: Client, service: Client, user: User, orders_api: Client, reports_api: Client
) -> None:
    user_tokens = core.code_flow(app, user, f"openid {ORDERS}read")
    client_token = core.client_credentials(service)["access_token"]
    for token in (user_tokens["access_token"], user_tokens["refresh_token"], client_token):
        assert core.introspect(orders_api, token)["active"] is True
        assert core.introspect(reports_api, token) == INACTIVE


def test_a_token_without_a_resource_is_only_for_its_own_app(
    core: Core, app: Client, user: User, orders_api: Client
) -> None:
    body = core.code_flow(app, user, "openid profile")  # audience: the issuer itself
    for token in (body["access_token"], body["refresh_token"]):
        assert core.introspect(app, token)["active"] is True
        assert core.introspect(orders_api, token) == INACTIVE


# --- refresh tokens ----------------------------------------------------------------------------


def test_an_unused_refresh_token_is_active_and_described(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user, f"openid {ORDERS}read")
    answer = core.introspect(app, body["refresh_token"])
    sid = answer.pop("sid")
    assert sid == core.introspect(app, body["access_token"])["sid"]
    assert answer == {
        "active": True,
        "token_type": "refresh_token",
        "client_id": app.client_id,
        "sub": user.id,
        "scope": f"openid {ORDERS}read",
        "iat": ts(core.clock()),
        "exp": ts(core.clock()) + core.policy.refresh_ttl,
    }


def test_a_used_refresh_token_is_inactive_and_its_successor_active(
    core: Core, app: Client, user: User
) -> None:
    first = core.code_flow(app, user)
    second = core.refresh(app, first["refresh_token"])
    assert core.introspect(app, first["refresh_token"]) == INACTIVE
    assert core.introspect(app, second["refresh_token"])["active"] is True
    # The access tokens of the family stay valid: rotation is not revocation.
    assert core.introspect(app, first["access_token"])["active"] is True


def test_a_replayed_refresh_token_makes_the_whole_family_inactive(
    core: Core, app: Client, user: User
) -> None:
    first = core.code_flow(app, user)
    second = core.refresh(app, first["refresh_token"])
    core.clock.advance(core.policy.refresh_grace_seconds + 1)
    with pytest.raises(errors.InvalidGrant):
        core.refresh(app, first["refresh_token"])
    for token in (second["refresh_token"], second["access_token"], first["access_token"]):
        assert core.introspect(app, token) == INACTIVE


def test_a_refresh_token_ends_after_its_inactivity_lifetime(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user)
    core.clock.advance(core.policy.refresh_ttl - 1)
    assert core.introspect(app, body["refresh_token"])["active"] is True
    core.clock.advance(1)
    assert core.introspect(app, body["refresh_token"]) == INACTIVE


def test_a_refresh_token_ends_at_the_grants_absolute_expiry(
    core: Core, app: Client, user: User
) -> None:
    body = core.code_flow(app, user)
    refreshed = body["refresh_token"]
    step, elapsed = core.policy.refresh_ttl - 86400, 0  # each a day before it would idle out
    while elapsed + step < core.policy.refresh_absolute_ttl:
        core.clock.advance(step)
        elapsed += step
        refreshed = core.refresh(app, refreshed)["refresh_token"]
    core.clock.advance(core.policy.refresh_absolute_ttl - elapsed - 1)
    assert core.introspect(app, refreshed)["active"] is True
    core.clock.advance(1)  # the grant's absolute expiry, before the token's inactivity one
    assert core.introspect(app, refreshed) == INACTIVE


# --- anything else is inactive (§2.2) ----------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "a.b.c",
        "..",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # alg none
        "é" * 10,
        "a" * 257,  # longer than any refresh token
        "a" * 5000 + "." + "b" * 5000 + "." + "c" * 5000,
        "\x00",
    ],
)
def test_garbage_and_overlong_tokens_are_inactive(core: Core, service: Client, token: str) -> None:
    assert core.introspect(service, token) == INACTIVE
    assert core.introspect(service, token, token_type_hint="refresh_token") == INACTIVE


def test_an_id_token_a_token_of_another_issuer_or_a_broken_signature_is_inactive(
    core: Core, app: Client, service: Client, user: User
) -> None:
    assert core.introspect(app, core.code_flow(app, user)["id_token"]) == INACTIVE
    spec = AccessTokenSpec(service.client_id, "client", service.client_id, ORDERS, "read", 3600)
    # Signed with our own keys, but naming another issuer.
    foreign, _ = TokenIssuer("https://elsewhere.test", core.keys).access_token(
        spec, ts(core.clock())
    )
    assert core.introspect(service, foreign) == INACTIVE
    ours, _ = core.issuer.access_token(spec, ts(core.clock()))
    assert core.introspect(service, ours)["active"] is True
    header, payload, signature = ours.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert core.introspect(service, f"{header}.{payload}.{flipped}") == INACTIVE


# --- token_type_hint (§2.1) --------------------------------------------------------------------


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "id_token", "bogus", ""])
def test_the_hint_never_hides_a_token(core: Core, app: Client, user: User, hint: str) -> None:
    """§2.1: a server that cannot find the token by the hint MUST search every type."""
    body = core.code_flow(app, user)
    for token in (body["access_token"], body["refresh_token"]):
        assert core.introspect(app, token, token_type_hint=hint)["active"] is True
