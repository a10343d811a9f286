"""Pushed authorization requests (RFC 9126) on the memory store with the injected clock.

The PAR endpoint's validation (§2.1) and errors (§2.3), with nothing stored on a refusal; the
`request_uri` at the authorization endpoint (§4): once, only by the client that pushed it, only
for 60 s; the ticket that carries a pushed request through the sign-in (sealed, bound to the
client, expiring); the apps and domains that require PAR (§6) and FAPI 2.0's rules (Security
Profile §5.3.2.2).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta

import pytest

from tessera.domain.hashing import sha256_b64
from tessera.domain.identity_domains import DOMAIN_RULES, DomainSettings, InvalidDomain
from tessera.domain.model import Client, PushedRequest
from tessera.oauth import errors
from tessera.oauth.authorize import (
    AuthorizationError,
    UnsafeToRedirect,
    validate_authorization_request,
)
from tessera.oauth.interaction.login import without_reauthentication
from tessera.oauth.par import (
    REQUEST_URI_PREFIX,
    TICKET_PARAM,
    TICKET_TTL,
    Resolved,
    Ticket,
    open_ticket,
    push,
    request_uri_hash,
    resolve,
    resumed,
    seal_ticket,
)
from tessera.oauth.pkce import s256
from tests.unit.oauth.conftest import ORDERS, VERIFIER, Core

CB = "https://app.test/cb"
KEY = b"t" * 32
CHALLENGE = s256(VERIFIER)


@pytest.fixture(autouse=True)
def resources(core: Core) -> None:
    core.add_resource()


@pytest.fixture
def app(core: Core) -> Client:
    return core.add_app(redirect_uris=(CB, "https://app.test/other"))[0]


@pytest.fixture
def other(core: Core) -> Client:
    return core.add_app()[0]


def request_params(app: Client, **params: str | None) -> dict[str, str]:
    """A good authorization request of `app`, changed by `params` (None removes a value)."""
    base: dict[str, str | None] = {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": CB,
        "scope": f"openid {ORDERS}read",
        "state": "st",
        "nonce": "n-1",
    }
    base.update(params)
    return {k: v for k, v in base.items() if v is not None}


def pushed(core: Core, client: Client, **params: str | None) -> str:
    """Push for `client`: its request_uri."""
    answer = push(
        core.store.pushed_requests,
        client,
        request_params(client, **params),
        core.store.resources.list(),
        core.clock(),
    )
    assert answer.expires_in == 60
    return answer.request_uri


def stored(core: Core) -> int:
    """How many pushed requests the store holds (any age)."""
    return core.store.pushed_requests.purge(core.clock() + timedelta(days=1))


def resolved(core: Core, query: Mapping[str, str], duplicated: set[str] | None = None) -> Resolved:
    def take(uri_hash: str, client_id: str) -> PushedRequest | None:
        return core.store.pushed_requests.take(uri_hash, client_id, core.clock())

    return resolve(query, duplicated or set(), take, lambda: KEY, core.clock())


def authorization(core: Core, query: Mapping[str, str], *, par_required: bool = False) -> object:
    """The authorization endpoint's validation of `query`, as the browser side runs it."""
    found = resolved(core, query)
    return validate_authorization_request(
        found.params,
        found.duplicated,
        core.store.clients.get,
        core.store.resources.list(),
        pushed=found.pushed,
        par_required=par_required,
    )


# --- the PAR endpoint (§2) ---------------------------------------------------------------------


def test_a_push_stores_the_request_under_a_one_time_urn(core: Core, app: Client) -> None:
    request_uri = pushed(core, app, code_challenge=CHALLENGE, code_challenge_method="S256")
    assert request_uri.startswith(REQUEST_URI_PREFIX)
    random = request_uri[len(REQUEST_URI_PREFIX) :]
    assert len(random) >= 43  # 256 bits, base64url
    found = core.store.pushed_requests.take(sha256_b64(random), app.client_id, core.clock())
    assert found is not None
    assert found.expires_at == core.clock() + timedelta(seconds=60)
    assert dict(found.params)["code_challenge"] == CHALLENGE
    assert dict(found.params)["client_id"] == app.client_id


def test_a_push_without_client_id_is_the_authenticated_clients(core: Core, app: Client) -> None:
    request_uri = pushed(core, app, client_id=None)
    query = {"client_id": app.client_id, "request_uri": request_uri}
    assert authorization(core, query).client.client_id == app.client_id  # type: ignore[attr-defined]


def test_every_push_has_its_own_request_uri(core: Core, app: Client) -> None:
    assert pushed(core, app) != pushed(core, app)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"request_uri": REQUEST_URI_PREFIX + "x"}, "invalid_request"),  # §2.1
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"redirect_uri": "https://evil.test/cb"}, "invalid_request"),  # §2.3
        ({"redirect_uri": None}, "invalid_request"),  # two are registered
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": f"{ORDERS}write"}, "invalid_scope"),
        ({"scope": "https://unknown.test/read"}, "invalid_scope"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"resource": "https://unknown.test/"}, "invalid_target"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"state": "x" * 3000}, "invalid_request"),
    ],
)
def test_a_bad_push_gets_the_authorization_endpoints_error_and_nothing_is_stored(
    core: Core, app: Client, params: dict[str, str | None], error: str
) -> None:
    with pytest.raises(errors.OAuthError) as caught:
        pushed(core, app, **params)
    assert caught.value.error == error
    assert caught.value.status == 400
    assert stored(core) == 0


def test_a_push_naming_another_client_is_refused(core: Core, app: Client, other: Client) -> None:
    with pytest.raises(errors.InvalidRequest):
        pushed(core, app, client_id=other.client_id)
    assert stored(core) == 0


def test_an_app_without_the_code_grant_is_an_unauthorized_client(core: Core) -> None:
    machine = core.add_app(grant_types=("client_credentials",))[0]
    with pytest.raises(errors.UnauthorizedClient):
        pushed(core, machine, redirect_uri=None)
    assert stored(core) == 0


def test_a_public_app_must_push_a_pkce_challenge(core: Core) -> None:
    native = core.add_app(public=True, redirect_uris=("http://127.0.0.1/cb",))[0]
    with pytest.raises(errors.InvalidRequest, match="code_challenge"):
        pushed(core, native, redirect_uri="http://127.0.0.1:5000/cb")
    request_uri = pushed(
        core,
        native,
        redirect_uri="http://127.0.0.1:5000/cb",
        code_challenge=CHALLENGE,
        code_challenge_method="S256",
    )
    assert request_uri.startswith(REQUEST_URI_PREFIX)


def fapi2_app(core: Core) -> Client:
    return core.add_app(
        profile="fapi2",
        token_endpoint_auth_method="private_key_jwt",
        id_token_signed_response_alg="ES256",
        require_pushed_authorization_requests=True,
    )[0]


def test_fapi2_requires_pkce_s256_and_the_redirect_uri_in_the_push(core: Core) -> None:
    fapi = fapi2_app(core)
    pkce = {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    with pytest.raises(errors.InvalidRequest, match="code_challenge"):
        pushed(core, fapi)  # a confidential app, still PKCE (§5.3.2.2)
    with pytest.raises(errors.InvalidRequest, match="redirect_uri"):
        pushed(core, fapi, redirect_uri=None, **pkce)  # though only one is registered
    assert stored(core) == 0
    request_uri = pushed(core, fapi, **pkce)
    query = {"client_id": fapi.client_id, "request_uri": request_uri}
    assert authorization(core, query).code_challenge == CHALLENGE  # type: ignore[attr-defined]


# --- the request_uri at the authorization endpoint (§4) ----------------------------------------


def test_the_pushed_parameters_replace_the_querys(core: Core, app: Client) -> None:
    request_uri = pushed(core, app, scope="openid", state="pushed-state")
    query = {
        "client_id": app.client_id,
        "request_uri": request_uri,
        "scope": f"openid {ORDERS}read",
        "state": "query-state",
        "redirect_uri": "https://app.test/other",
    }
    request = authorization(core, query)
    assert request.scopes == ("openid",)  # type: ignore[attr-defined]
    assert request.state == "pushed-state"  # type: ignore[attr-defined]
    assert request.redirect_uri == CB  # type: ignore[attr-defined]


def test_a_request_uri_is_used_once(core: Core, app: Client) -> None:
    query = {"client_id": app.client_id, "request_uri": pushed(core, app)}
    authorization(core, query)
    with pytest.raises(UnsafeToRedirect) as caught:
        authorization(core, query)
    assert caught.value.hint == "Go back to the application and start again."


def test_a_request_uri_is_only_for_the_client_that_pushed_it(
    core: Core, app: Client, other: Client
) -> None:
    request_uri = pushed(core, app)
    with pytest.raises(UnsafeToRedirect):
        authorization(core, {"client_id": other.client_id, "request_uri": request_uri})
    # Another client's attempt does not use it up.
    authorization(core, {"client_id": app.client_id, "request_uri": request_uri})


def test_a_request_uri_expires_after_60_seconds(core: Core, app: Client) -> None:
    first, second = pushed(core, app), pushed(core, app)
    core.clock.advance(59)
    authorization(core, {"client_id": app.client_id, "request_uri": first})
    core.clock.advance(1)
    with pytest.raises(UnsafeToRedirect):
        authorization(core, {"client_id": app.client_id, "request_uri": second})


@pytest.mark.parametrize(
    "query",
    [
        {"request_uri": "REQUEST_URI"},  # §4: client_id is required with it
        {"client_id": "CLIENT_ID", "request_uri": REQUEST_URI_PREFIX + "unknown"},
        {"client_id": "CLIENT_ID", "request_uri": REQUEST_URI_PREFIX},
    ],
)
def test_a_request_uri_without_client_id_or_unknown_is_an_error_page(
    core: Core, app: Client, query: dict[str, str]
) -> None:
    request_uri = pushed(core, app)
    filled = {
        k: v.replace("REQUEST_URI", request_uri).replace("CLIENT_ID", app.client_id)
        for k, v in query.items()
    }
    with pytest.raises(UnsafeToRedirect):
        authorization(core, filled)


def test_a_repeated_client_id_or_request_uri_is_an_error_page(core: Core, app: Client) -> None:
    query = {"client_id": app.client_id, "request_uri": pushed(core, app)}
    for name in ("client_id", "request_uri"):
        with pytest.raises(UnsafeToRedirect):
            resolved(core, query, {name})


def test_a_request_uri_that_is_not_ours_is_not_supported(core: Core, app: Client) -> None:
    assert request_uri_hash("https://app.test/request.jwt") is None
    query = request_params(app, request_uri="https://app.test/request.jwt")
    with pytest.raises(AuthorizationError) as caught:
        authorization(core, query)
    assert caught.value.error.error == "request_uri_not_supported"


# --- requiring PAR (§6) ------------------------------------------------------------------------


def test_an_app_that_requires_par_refuses_a_plain_request(core: Core) -> None:
    strict = core.add_app(require_pushed_authorization_requests=True)[0]
    with pytest.raises(AuthorizationError) as caught:
        authorization(core, request_params(strict))
    assert caught.value.error.error == "invalid_request"
    assert "PAR" in caught.value.error.description
    assert caught.value.redirect_uri == CB  # validated first: the app hears of it
    query = {"client_id": strict.client_id, "request_uri": pushed(core, strict)}
    assert authorization(core, query).client == strict  # type: ignore[attr-defined]


def test_a_fapi2_app_refuses_a_plain_request(core: Core) -> None:
    fapi = fapi2_app(core)
    pkce = {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    with pytest.raises(AuthorizationError) as caught:
        authorization(core, request_params(fapi, **pkce))
    assert caught.value.error.error == "invalid_request"


def test_a_domain_that_requires_par_refuses_plain_requests(core: Core, app: Client) -> None:
    with pytest.raises(AuthorizationError) as caught:
        authorization(core, request_params(app), par_required=True)
    assert caught.value.error.error == "invalid_request"
    query = {"client_id": app.client_id, "request_uri": pushed(core, app)}
    authorization(core, query, par_required=True)


def test_the_domain_rule_is_a_switch_the_default_domain_has_too() -> None:
    name = "require_pushed_authorization_requests"
    assert name in DOMAIN_RULES  # not a node setting: read from the domain's row
    assert DomainSettings.from_dict({name: "true"}).require_pushed_authorization_requests is True
    assert DomainSettings.from_dict({name: False}).as_dict() == {name: False}
    with pytest.raises(InvalidDomain, match=name):
        DomainSettings.from_dict({name: "sometimes"})


# --- the ticket that carries a pushed request through the sign-in ------------------------------


def carried(core: Core, app: Client, **params: str | None) -> dict[str, str]:
    query = {"client_id": app.client_id, "request_uri": pushed(core, app, **params)}
    found = resolved(core, query)
    assert found.pushed
    assert set(found.carried) == {"client_id", TICKET_PARAM}
    return found.carried


def test_the_ticket_carries_the_pushed_request_on(core: Core, app: Client) -> None:
    ticket = carried(core, app, state="s-42")
    again = resolved(core, ticket)
    assert again.pushed and again.carried == ticket
    assert again.params["state"] == "s-42"
    assert authorization(core, ticket).state == "s-42"  # type: ignore[attr-defined]


def test_a_ticket_needs_no_more_than_its_client_id(core: Core, app: Client) -> None:
    ticket = carried(core, app)
    # Whatever else the query says is not the request.
    request = authorization(core, {**ticket, "scope": "openid", "state": "other"})
    assert request.state == "st"  # type: ignore[attr-defined]


def test_a_changed_ticket_is_refused(core: Core, app: Client) -> None:
    ticket = carried(core, app)
    sealed = ticket[TICKET_PARAM]
    opened = open_ticket(KEY, app.client_id, sealed, core.clock())
    assert opened is not None
    # Sealed, not only signed: the parameters cannot be read in the browser either.
    assert "openid" not in base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)).decode(
        "latin-1"
    )
    forged = seal_ticket(b"x" * 32, Ticket(app.client_id, {**opened.params, "scope": "openid"},
                                         opened.expires_at))  # fmt: skip
    middle = len(sealed) // 2
    flipped = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    for value in (
        forged,  # sealed with another key
        flipped,  # one character changed
        sealed[:-4],  # cut short
        "",
        "..",
        "é.é",
    ):
        with pytest.raises(UnsafeToRedirect):
            resolved(core, {"client_id": app.client_id, TICKET_PARAM: value})


def test_a_ticket_is_bound_to_its_client(core: Core, app: Client, other: Client) -> None:
    ticket = carried(core, app)
    with pytest.raises(UnsafeToRedirect):
        resolved(core, {**ticket, "client_id": other.client_id})
    with pytest.raises(UnsafeToRedirect):
        resolved(core, {TICKET_PARAM: ticket[TICKET_PARAM]})


def test_a_ticket_expires_after_its_own_lifetime(core: Core, app: Client) -> None:
    ticket = carried(core, app)
    core.clock.advance(TICKET_TTL - 1)
    assert resolved(core, ticket).pushed  # the request_uri itself expired long ago
    core.clock.advance(1)
    with pytest.raises(UnsafeToRedirect):
        resolved(core, ticket)


def test_after_sign_in_the_ticket_is_resealed_without_reauthentication(
    core: Core, app: Client
) -> None:
    ticket = carried(core, app, prompt="login consent", max_age="0")
    expires = open_ticket(KEY, app.client_id, ticket[TICKET_PARAM], core.clock())
    core.clock.advance(10)
    again = resumed(KEY, ticket, without_reauthentication, core.clock())
    opened = open_ticket(KEY, app.client_id, again[TICKET_PARAM], core.clock())
    assert opened is not None and expires is not None
    assert opened.params["prompt"] == "consent"
    assert "max_age" not in opened.params
    assert opened.expires_at == expires.expires_at  # the sign-in does not prolong it
    assert set(again) == {"client_id", TICKET_PARAM}


def test_resumed_changes_a_plain_request_as_it_is(core: Core, app: Client) -> None:
    plain = request_params(app, prompt="login", max_age="5")
    again = resumed(KEY, plain, without_reauthentication, core.clock())
    assert "prompt" not in again and "max_age" not in again


def test_a_ticket_that_does_not_open_is_kept_to_be_refused_where_used(
    core: Core, app: Client
) -> None:
    bad = {"client_id": app.client_id, TICKET_PARAM: "garbage.value"}
    assert resumed(KEY, bad, without_reauthentication, core.clock()) == bad
