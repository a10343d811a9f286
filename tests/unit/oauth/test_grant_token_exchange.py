"""Token exchange (RFC 8693; docs/security.md rule 56) through the token endpoint on the memory
store, with the injected clock: delegation and nested `act` (§4.1), impersonation, `may_act`
(§4.4), scope narrowing, targets (§2.1, §2.2.2), the apps allowed, and subject tokens that are
revoked, expired, of another issuer or not meant for the app."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tessera.domain.model import Client, User
from tessera.manage.revocation import revoke_subject
from tessera.oauth import errors
from tessera.oauth.grants.token_exchange import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tessera.oauth.tokens import TokenIssuer
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.unit.oauth.conftest import ISSUER, Core

ORDERS = "https://orders.test/"
REPORTS = "https://reports.test/"
ARCHIVE = "https://archive.test/"
TOKEN_URL = ISSUER + "/oauth2/v1/token"


@pytest.fixture
def alice(core: Core) -> User:
    core.add_resource(ORDERS, ("read", "write"))
    core.add_resource(REPORTS, ("read", "view"))
    core.add_resource(ARCHIVE, ("read",))
    return core.add_user("alice")


@pytest.fixture
def web(core: Core, alice: User) -> Client:
    """The app the user signed in to: its tokens are for ORDERS."""
    return core.add_app(allowed_scopes=("openid", f"{ORDERS}read", f"{ORDERS}write"))[0]


@pytest.fixture
def subject(core: Core, web: Client, alice: User) -> str:
    """Alice's token for ORDERS (read and write), from the code flow of `web`."""
    return user_token(core, web, alice)


def exchanger(core: Core, **kw: Any) -> Client:
    """The resource server of ORDERS, allowed to exchange ORDERS tokens for REPORTS."""
    settings: dict[str, Any] = {
        "grant_types": (TOKEN_EXCHANGE,),
        "allowed_scopes": (f"{REPORTS}read", f"{REPORTS}view"),
        "resource_server_for": (ORDERS,),
        "token_exchange_audiences": (REPORTS,),
        **kw,
    }
    return core.add_app(redirect_uris=(), **settings)[0]


def user_token(core: Core, web: Client, alice: User) -> str:
    body = core.code_flow(web, alice, f"openid {ORDERS}read {ORDERS}write")
    return str(body["access_token"])


def exchange(
    core: Core, app: Client, subject: str, proof: str | None = None, **form: str
) -> dict[str, Any]:
    """The token endpoint's body for an exchange by `app` (client_secret_post); `proof`: a
    DPoP proof; `form` overrides the parameters (an empty value leaves one out)."""
    values = {
        **core.credentials(app),
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **({} if "audience" in form or "resource" in form else {"audience": REPORTS}),
        **form,
    }
    sent = {k: v for k, v in values.items() if v}
    return core.token_endpoint().handle(None, sent, set(), proof).body


def dpop_proof(core: Core, key: Any) -> str:
    return make_proof(key, "POST", TOKEN_URL, iat=core.clock().timestamp())


def allowed_own_app(core: Core, web: Client) -> Client:
    """The user's app itself, allowed to exchange its users' tokens for REPORTS."""
    own = replace(
        web,
        grant_types=(*web.grant_types, TOKEN_EXCHANGE),
        allowed_scopes=(*web.allowed_scopes, f"{REPORTS}read"),
        token_exchange_audiences=(REPORTS,),
        version=web.version + 1,
    )
    core.store.clients.update(own)
    return own


def refused(core: Core, app: Client, subject: str, **form: str) -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as caught:
        exchange(core, app, subject, **form)
    return caught.value


def claims_of(core: Core, token: str) -> dict[str, Any]:
    return core.issuer.verify_own(token, int(core.clock().timestamp()))


def test_delegation_the_user_is_sub_and_the_app_acts(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    body = exchange(core, app, subject)
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE  # §2.2.1
    assert body["token_type"] == "Bearer" and body["scope"] == "read"
    assert "refresh_token" not in body and "id_token" not in body
    claims = claims_of(core, body["access_token"])
    assert (claims["sub"], claims["sub_type"], claims["user_id"]) == (alice.id, "user", alice.id)
    assert (claims["aud"], claims["client_id"]) == (REPORTS, app.client_id)
    assert claims["act"] == {"sub": app.client_id}  # §4.1
    # Recorded as a grant of the app, as long as the token lives.
    grant = core.store.grants.get(claims["sid"])
    assert claims["sid"].startswith("g_")  # the prefix of every grant id
    assert grant is not None and (grant.user_id, grant.client_id) == (alice.id, app.client_id)
    assert grant.scopes == (f"{REPORTS}read",) and grant.audience == REPORTS
    # Introspection by the app shows the actor.
    answer = core.introspect(app, body["access_token"])
    assert answer["active"] and answer["act"] == {"sub": app.client_id}


def second_exchanger(core: Core, **kw: Any) -> Client:
    """The resource server of REPORTS, allowed to exchange REPORTS tokens for ARCHIVE."""
    return exchanger(
        core,
        allowed_scopes=(f"{ARCHIVE}read",),
        resource_server_for=(REPORTS,),
        token_exchange_audiences=(ARCHIVE,),
        **kw,
    )


def test_a_prior_actor_is_nested(core: Core, alice: User, subject: str) -> None:
    first, second = exchanger(core), second_exchanger(core)
    delegated = exchange(core, first, subject)["access_token"]
    body = exchange(core, second, delegated, audience=ARCHIVE)
    claims = claims_of(core, body["access_token"])
    assert claims["sub"] == alice.id and claims["aud"] == ARCHIVE
    assert claims["act"] == {"sub": second.client_id, "act": {"sub": first.client_id}}


def test_impersonation_only_for_an_app_allowed_it(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    allowed = exchanger(core, token_exchange_impersonation=True)
    claims = claims_of(core, exchange(core, allowed, subject)["access_token"])
    assert claims["sub"] == alice.id and "act" not in claims
    # Not allowed: always delegation.
    plain = claims_of(core, exchange(core, exchanger(core), subject)["access_token"])
    assert plain["act"] == {"sub": plain["client_id"]}


def test_impersonation_keeps_a_prior_actor(core: Core, subject: str) -> None:
    first, second = exchanger(core), second_exchanger(core, token_exchange_impersonation=True)
    delegated = exchange(core, first, subject)["access_token"]
    claims = claims_of(core, exchange(core, second, delegated, audience=ARCHIVE)["access_token"])
    assert claims["act"] == {"sub": first.client_id}


def test_may_act_must_name_the_app(core: Core, web: Client, alice: User) -> None:
    app = exchanger(core)
    now = int(core.clock().timestamp())
    base = claims_of(core, user_token(core, web, alice))

    def signed(may_act: Any) -> str:
        claims = {**base, "jti": f"j{now}{may_act!s}", "may_act": may_act}
        return core.keys.sign("ES256", claims, typ="at+jwt")

    assert refused(core, app, signed({"sub": "someone-else"})).error == "invalid_request"
    assert refused(core, app, signed("not an object")).error == "invalid_request"
    body = exchange(core, app, signed({"sub": app.client_id}))
    assert claims_of(core, body["access_token"])["act"] == {"sub": app.client_id}


def test_scopes_narrow_to_the_subject_tokens_and_the_apps(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    # By name ("read" is both the subject token's and the app's) or in Oracle's form.
    assert exchange(core, app, subject, scope="read")["scope"] == "read"
    assert exchange(core, app, subject, scope=f"{REPORTS}read")["scope"] == "read"
    # "view": the app may, the user did not grant it; "write": not a scope of the target.
    for wider in ("view", "read view", "write", f"{ORDERS}write", "openid"):
        assert refused(core, app, subject, scope=wider).error == "invalid_scope", wider
    # The app may ask for nothing the subject token has.
    stingy = exchanger(core, allowed_scopes=(f"{REPORTS}view",))
    assert refused(core, stingy, subject).error == "invalid_scope"


def test_the_target_must_be_a_registered_resource_the_app_may_exchange_for(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    assert exchange(core, app, subject, audience="", resource=REPORTS)["scope"] == "read"
    unknown = refused(core, app, subject, audience="https://unknown.test/")
    assert unknown.error == "invalid_target"  # §2.2.2
    assert refused(core, app, subject, audience=ORDERS).error == "invalid_target"
    both = refused(core, app, subject, audience=REPORTS, resource=ARCHIVE)
    assert both.error == "invalid_target"
    assert refused(core, app, subject, audience="", resource="reports").error == "invalid_target"
    unparsable = refused(core, app, subject, audience="", resource="http://[::1")
    assert unparsable.error == "invalid_target"
    none = refused(core, app, subject, audience="")
    assert none.error == "invalid_request"


def test_only_apps_an_administrator_allowed_may_exchange(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    no_targets = exchanger(core, token_exchange_audiences=())
    assert refused(core, no_targets, subject).error == "unauthorized_client"
    no_grant = exchanger(core, grant_types=("client_credentials",))
    assert refused(core, no_grant, subject).error == "unauthorized_client"


def test_a_revoked_subject_token_is_refused(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    core.revoke(web, subject)  # RFC 7009 by its own app
    failure = refused(core, app, subject)
    assert failure.error == "invalid_request" and "revoked" in failure.description


def test_revoking_the_user_refuses_the_subject_and_revokes_what_was_exchanged(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    exchanged = exchange(core, app, subject)["access_token"]
    sid = claims_of(core, exchanged)["sid"]
    core.clock.advance(5)
    revoke_subject(core.store, alice.id, core.clock())
    assert core.introspect(app, exchanged) == {"active": False}
    grant = core.store.grants.get(sid)
    assert grant is not None and grant.revoked_at is not None
    assert refused(core, app, subject).error == "invalid_request"


def test_an_expired_subject_token_is_refused_and_lifetimes_end_with_it(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    exp = claims_of(core, subject)["exp"]
    core.clock.advance(3000)
    body = exchange(core, app, subject)
    assert body["expires_in"] == exp - int(core.clock().timestamp()) == 600
    assert claims_of(core, body["access_token"])["exp"] == exp
    core.clock.advance(600)
    assert refused(core, app, subject).error == "invalid_request"


def test_a_token_of_another_issuer_is_refused(core: Core, web: Client, alice: User) -> None:
    app = exchanger(core)
    claims = claims_of(core, user_token(core, web, alice))
    other = TokenIssuer("http://127.0.0.1:9999/domains/other", core.keys)
    foreign = core.keys.sign("ES256", {**claims, "iss": other.issuer}, typ="at+jwt")
    assert refused(core, app, foreign).error == "invalid_request"
    assert refused(core, app, "not.a.jwt").error == "invalid_request"


def test_the_subject_token_must_be_a_users_meant_for_the_app(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    # Neither its client nor the resource server of its audience: a token that leaked.
    stranger = exchanger(core, resource_server_for=())
    assert refused(core, stranger, subject).error == "invalid_request"
    # The token's own app may exchange it.
    assert exchange(core, allowed_own_app(core, web), subject)["scope"] == "read"
    # An app's own token (client credentials) has no user to act for.
    app = exchanger(
        core,
        grant_types=(TOKEN_EXCHANGE, "client_credentials"),
        allowed_scopes=(f"{ORDERS}read", f"{REPORTS}read"),
    )
    own_token = core.client_credentials(app, scope=f"{ORDERS}read")["access_token"]
    assert refused(core, app, own_token).error == "invalid_request"


def test_unsupported_parameters_are_invalid_requests(
    core: Core, web: Client, alice: User, subject: str
) -> None:
    app = exchanger(core)
    for form in (
        {"actor_token": subject, "actor_token_type": ACCESS_TOKEN_TYPE},
        {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
        {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
    ):
        assert refused(core, app, subject, **form).error == "invalid_request", form
    assert refused(core, app, "").error == "invalid_request"


def test_a_dpop_proof_binds_the_exchanged_token(core: Core, web: Client, alice: User) -> None:
    key = new_key()
    body = exchange(core, exchanger(core), user_token(core, web, alice), dpop_proof(core, key))
    assert body["token_type"] == "DPoP"  # RFC 9449 §5
    assert claims_of(core, body["access_token"])["cnf"] == {"jkt": thumbprint(key)}


def test_a_bound_subject_token_needs_its_key_from_its_own_app(
    core: Core, web: Client, alice: User
) -> None:
    key = new_key()
    base = claims_of(core, user_token(core, web, alice))
    bound = core.keys.sign("ES256", {**base, "cnf": {"jkt": thumbprint(key)}}, typ="at+jwt")
    own = allowed_own_app(core, web)
    failure = refused(core, own, bound)
    assert failure.error == "invalid_request" and "DPoP" in failure.description
    assert exchange(core, own, bound, dpop_proof(core, key))["token_type"] == "DPoP"
    # The resource server of its audience checked the holder's proof when the token came.
    assert exchange(core, exchanger(core), bound)["token_type"] == "Bearer"
