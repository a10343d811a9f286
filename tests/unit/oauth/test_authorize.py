"""The authorization endpoint's pipeline: RFC 6749 §4.1.1, §4.1.2, §4.1.2.1 and §3.1.2, RFC 7636
(PKCE), RFC 8707 (`resource`), OIDC Core §3.1.2 (prompt, max_age, request objects);
docs/security.md rules 1, 2, 12, 14 and 15.

An unknown client or redirect URI raises `UnsafeToRedirect` (an error page); every later check
raises an `AuthorizationError` for the validated redirect URI, first failing check first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import AuthorizationCode, Client
from tessera.oauth import errors
from tessera.oauth.authorize import (
    AuthorizationError,
    AuthorizationRequest,
    UnsafeToRedirect,
    issue_code,
    redirect_with,
    validate_authorization_request,
)
from tessera.oauth.pkce import s256
from tessera.store.protocols import CodeStore
from tests.unit.oauth.conftest import CODE_TTL, ISSUER, ORDERS, VERIFIER, Core

CB = "https://app.test/cb"
CHALLENGE = s256(VERIFIER)
REPORTS = "https://reports.test/"


@pytest.fixture(autouse=True)
def resources(core: Core) -> None:
    core.add_resource()
    core.add_resource(REPORTS, ("read",))


@pytest.fixture
def app(core: Core) -> Client:
    client, _ = core.add_app(
        allowed_scopes=("openid", "profile", f"{ORDERS}read", f"{ORDERS}write", f"{REPORTS}read")
    )
    return client


@pytest.fixture
def native(core: Core) -> Client:
    client, _ = core.add_app(public=True, redirect_uris=("http://127.0.0.1/cb",))
    return client


def validate(
    core: Core, client: Client | None, duplicated: set[str] | None = None, **params: str | None
) -> AuthorizationRequest:
    """A request with what a good one carries, changed by `params` (None removes a value)."""
    base: dict[str, str | None] = {
        "client_id": None if client is None else client.client_id,
        "response_type": "code",
        "scope": f"openid {ORDERS}read",
        "state": "st",
    }
    base.update(params)
    query = {k: v for k, v in base.items() if v is not None}
    return validate_authorization_request(
        query, duplicated or set(), core.store.clients.get, core.store.resources.list()
    )


def refused(core: Core, client: Client, **params: str | None) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as caught:
        validate(core, client, **params)
    return caught.value


# --- what is never redirected (RFC 6749 §4.1.2.1, §3.1.2.4; rule 2) ---------------------------


@pytest.mark.parametrize("client_id", [None, "", "no-such-app", "x" * 257])
def test_a_missing_or_unknown_client_is_an_error_page(core: Core, client_id: str | None) -> None:
    with pytest.raises(UnsafeToRedirect):
        validate(core, None, client_id=client_id, redirect_uri=CB)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.test/cb",
        CB + "/",
        CB + "?x=1",
        CB.upper(),
        "https://app.test/cb#f",
        "https://app.test:443/cb",
        CB + "x" * 2000,
    ],
)
def test_a_redirect_uri_not_registered_exactly_is_an_error_page(
    core: Core, app: Client, redirect_uri: str
) -> None:
    with pytest.raises(UnsafeToRedirect):
        validate(core, app, redirect_uri=redirect_uri)


def test_without_redirect_uri_the_single_registered_one_is_used(core: Core, app: Client) -> None:
    assert validate(core, app).redirect_uri == CB


def test_without_redirect_uri_an_app_with_several_gets_an_error_page(core: Core) -> None:
    client, _ = core.add_app(redirect_uris=(CB, "https://app.test/other"))
    with pytest.raises(UnsafeToRedirect):
        validate(core, client)
    assert validate(core, client, redirect_uri="https://app.test/other").redirect_uri.endswith(
        "/other"
    )


def test_a_native_apps_loopback_uri_may_differ_in_the_port_only(core: Core, native: Client) -> None:
    """RFC 8252 §7.3, rule 1."""
    ok = "http://127.0.0.1:51234/cb"
    assert (
        validate(
            core, native, redirect_uri=ok, code_challenge=CHALLENGE, code_challenge_method="S256"
        ).redirect_uri
        == ok
    )
    for bad in ("http://127.0.0.1:51234/other", "http://localhost:51234/cb"):
        with pytest.raises(UnsafeToRedirect):
            validate(core, native, redirect_uri=bad)


def test_a_confidential_app_gets_no_port_freedom_for_a_loopback_uri_with_a_port(
    core: Core,
) -> None:
    client, _ = core.add_app(redirect_uris=("http://127.0.0.1:4000/cb",))
    with pytest.raises(UnsafeToRedirect):
        validate(core, client, redirect_uri="http://127.0.0.1:5000/cb")


@pytest.mark.parametrize("repeated", ["client_id", "redirect_uri"])
def test_a_repeated_client_id_or_redirect_uri_is_an_error_page(
    core: Core, app: Client, repeated: str
) -> None:
    with pytest.raises(UnsafeToRedirect):
        validate(core, app, {repeated})


def test_an_untrusted_client_or_uri_wins_over_every_later_error(core: Core, app: Client) -> None:
    """Nothing is sent to an unvalidated URI, however broken the rest of the request."""
    broken = {"response_type": "token", "scope": "nope", "prompt": "bogus", "request": "x"}
    with pytest.raises(UnsafeToRedirect):
        validate(core, None, client_id="no-such-app", **broken)
    with pytest.raises(UnsafeToRedirect):
        validate(core, app, redirect_uri="https://evil.test/cb", **broken)


# --- redirected errors, in pipeline order ------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One broken parameter and the error the pipeline answers for it."""

    params: Mapping[str, str | None]
    error: type[errors.OAuthError]
    says: str  # part of the description
    duplicated: set[str] = field(default_factory=set)


# The order of `validate_authorization_request`: each fault is reported even when every later
# fault is present too.
PIPELINE = [
    Fault({"nonce": "n"}, errors.InvalidRequest, "repeated parameter: nonce", {"nonce"}),
    Fault({"nonce": "n" * 2049}, errors.InvalidRequest, "nonce is too long"),
    Fault({"request": "eyJhbGciOiJub25lIn0.e30."}, errors.RequestNotSupported, "request objects"),
    Fault({"request_uri": "https://evil.test/r"}, errors.RequestUriNotSupported, "request_uri"),
    Fault({"response_type": "token"}, errors.UnsupportedResponseType, "response_type=code"),
    Fault({"response_mode": "fragment"}, errors.InvalidRequest, "response_mode"),
    Fault({"resource": "https://unknown.test/"}, errors.InvalidTarget, "registered audience"),
    Fault({"scope": f"openid {ORDERS}delete"}, errors.InvalidScope, "unknown scope"),
    Fault(
        {"code_challenge_method": "plain", "code_challenge": CHALLENGE},
        errors.InvalidRequest,
        "must be S256",
    ),
    Fault({"prompt": "bogus"}, errors.InvalidRequest, "prompt"),
]


@pytest.mark.parametrize("first", range(len(PIPELINE)), ids=[f.says for f in PIPELINE])
def test_the_first_failing_check_in_pipeline_order_is_reported(
    core: Core, app: Client, first: int
) -> None:
    params: dict[str, str | None] = {}
    duplicated: set[str] = set()
    for fault in reversed(PIPELINE[first:]):  # earlier faults win the same parameter
        params.update(fault.params)
        duplicated |= fault.duplicated
    with pytest.raises(AuthorizationError) as caught:
        validate(core, app, duplicated, redirect_uri=CB, **params)
    expected = PIPELINE[first]
    assert type(caught.value.error) is expected.error
    assert expected.says in caught.value.error.description
    assert caught.value.redirect_uri == CB
    assert caught.value.state == "st"  # sent back with the error (§4.1.2.1)


def test_each_fault_alone_is_refused_too(core: Core, app: Client) -> None:
    for fault in PIPELINE:
        with pytest.raises(AuthorizationError) as caught:
            validate(core, app, fault.duplicated, **fault.params)
        assert type(caught.value.error) is fault.error, fault


def test_a_repeated_state_is_not_echoed(core: Core, app: Client) -> None:
    with pytest.raises(AuthorizationError) as caught:
        validate(core, app, {"state"})
    assert caught.value.state is None
    assert isinstance(caught.value.error, errors.InvalidRequest)


@pytest.mark.parametrize("name", ["state", "nonce", "login_hint", "scope", "code_challenge"])
def test_overlong_parameters_are_invalid_request(core: Core, app: Client, name: str) -> None:
    assert isinstance(refused(core, app, **{name: "a" * 2049}).error, errors.InvalidRequest)
    validate(core, app, **({name: "a" * 2048} if name not in ("scope", "code_challenge") else {}))


# --- response_type (RFC 6749 §4.1.1, RFC 9700 §2.1.2; rule 15) ---------------------------------


@pytest.mark.parametrize(
    "response_type", ["token", "id_token", "code token", "code id_token", "CODE", "code "]
)
def test_only_response_type_code_is_supported(core: Core, app: Client, response_type: str) -> None:
    error = refused(core, app, response_type=response_type).error
    assert isinstance(error, errors.UnsupportedResponseType)


def test_a_missing_response_type_is_invalid_request(core: Core, app: Client) -> None:
    assert isinstance(refused(core, app, response_type=None).error, errors.InvalidRequest)


def test_an_app_without_the_code_grant_is_unauthorized_client(core: Core) -> None:
    client, _ = core.add_app(grant_types=("client_credentials",))
    assert isinstance(refused(core, client).error, errors.UnauthorizedClient)


@pytest.mark.parametrize("mode", ["fragment", "form_post", "QUERY"])
def test_response_modes_other_than_query_are_invalid_request(
    core: Core, app: Client, mode: str
) -> None:
    assert isinstance(refused(core, app, response_mode=mode).error, errors.InvalidRequest)
    assert validate(core, app, response_mode="query").redirect_uri == CB


# --- request objects (OIDC Core §6; rule 2) ----------------------------------------------------


def test_request_and_request_uri_are_refused_and_never_fetched(core: Core, app: Client) -> None:
    assert refused(core, app, request="x").error.error == "request_not_supported"
    assert refused(core, app, request_uri="https://x.test/r").error.error == (
        "request_uri_not_supported"
    )


# --- scope (RFC 6749 §3.3) and resource (RFC 8707 §2) ------------------------------------------


def test_oracle_and_rfc8707_forms_resolve_to_the_same_canonical_scopes(
    core: Core, app: Client
) -> None:
    oracle = validate(core, app, scope=f"openid {ORDERS}read {ORDERS}write")
    rfc8707 = validate(core, app, scope="openid read write", resource=ORDERS)
    with_port = validate(core, app, scope="openid https://orders.test:443/read")
    assert oracle.scopes == rfc8707.scopes == ("openid", f"{ORDERS}read", f"{ORDERS}write")
    assert oracle.audience == rfc8707.audience == with_port.audience == ORDERS
    assert oracle.resource_scopes == (f"{ORDERS}read", f"{ORDERS}write")


def test_repeated_scopes_are_granted_once(core: Core, app: Client) -> None:
    req = validate(core, app, scope=f"openid {ORDERS}read openid {ORDERS}read")
    assert req.scopes == ("openid", f"{ORDERS}read")


def test_openid_scopes_alone_have_no_audience(core: Core, app: Client) -> None:
    req = validate(core, app, scope="openid profile")
    assert req.audience is None and req.resource_scopes == ()


@pytest.mark.parametrize(
    "scope",
    [
        None,  # required
        "",
        "   ",
        f"openid {ORDERS}delete",  # the resource has no such scope
        "openid email",  # an OpenID scope the app may not ask for
        f"openid {REPORTS}write",
        "openid https://unknown.test/read",
        'openid "quoted"',  # not a scope-token (§3.3)
        "openid \\back",
    ],
)
def test_unknown_or_not_allowed_scopes_are_invalid_scope(
    core: Core, app: Client, scope: str | None
) -> None:
    assert isinstance(refused(core, app, scope=scope).error, errors.InvalidScope)


def test_a_scope_the_resource_defines_but_the_app_may_not_ask_for_is_invalid_scope(
    core: Core,
) -> None:
    client, _ = core.add_app(allowed_scopes=("openid", f"{ORDERS}read"))
    assert validate(core, client, scope=f"{ORDERS}read").scopes == (f"{ORDERS}read",)
    error = refused(core, client, scope=f"openid {ORDERS}write").error
    assert isinstance(error, errors.InvalidScope) and "may not ask" in error.description


def test_the_scopes_of_two_resources_at_once_are_invalid_target(core: Core, app: Client) -> None:
    error = refused(core, app, scope=f"{ORDERS}read {REPORTS}read").error
    assert isinstance(error, errors.InvalidTarget)


@pytest.mark.parametrize("resource", ["https://unknown.test/", "orders", "https://orders.test/x"])
def test_a_resource_that_is_no_registered_audience_is_invalid_target(
    core: Core, app: Client, resource: str
) -> None:
    error = refused(core, app, scope="read", resource=resource).error
    assert isinstance(error, errors.InvalidTarget)


def test_with_a_resource_parameter_only_that_resources_scopes_resolve(
    core: Core, app: Client
) -> None:
    """RFC 8707 §2: the token is for the named resource; the token endpoint agrees."""
    error = refused(core, app, scope=f"{REPORTS}read", resource=ORDERS).error
    assert isinstance(error, errors.InvalidScope)
    assert validate(core, app, scope=f"openid {ORDERS}read", resource=ORDERS).audience == ORDERS
    service, _ = core.add_app(
        grant_types=("client_credentials",), allowed_scopes=(f"{ORDERS}read", f"{REPORTS}read")
    )
    with pytest.raises(errors.InvalidScope):
        core.client_credentials(service, scope=f"{REPORTS}read", resource=ORDERS)


# --- PKCE (RFC 7636 §4.3, §4.4.1; RFC 9700 §2.1.1; rule 12) ------------------------------------


def test_a_public_app_must_send_a_code_challenge(core: Core, native: Client) -> None:
    error = refused(core, native).error
    assert isinstance(error, errors.InvalidRequest) and "code_challenge" in error.description
    req = validate(core, native, code_challenge=CHALLENGE, code_challenge_method="S256")
    assert req.code_challenge == CHALLENGE


def test_a_confidential_app_may_use_pkce_or_not(core: Core, app: Client) -> None:
    assert validate(core, app).code_challenge is None
    req = validate(core, app, code_challenge=CHALLENGE, code_challenge_method="S256")
    assert req.code_challenge == CHALLENGE


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        (CHALLENGE, None),  # RFC 7636 defaults to plain, which we refuse
        (CHALLENGE, "plain"),
        (CHALLENGE, "s256"),
        (VERIFIER, "plain"),
        (None, "S256"),  # a method without a challenge
        (CHALLENGE[:-1], "S256"),  # 42 characters
        (CHALLENGE + "A", "S256"),
        ("+" * 43, "S256"),  # not base64url
        ("=" * 43, "S256"),
    ],
)
def test_only_well_formed_s256_challenges_are_accepted(
    core: Core, native: Client, challenge: str | None, method: str | None
) -> None:
    error = refused(core, native, code_challenge=challenge, code_challenge_method=method).error
    assert isinstance(error, errors.InvalidRequest)


# --- prompt and max_age (OIDC Core §3.1.2.1) ---------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "parsed"),
    [
        ("none", {"none"}),
        ("login", {"login"}),
        ("login consent", {"login", "consent"}),
        ("select_account", {"select_account"}),
        ("", set()),
    ],
)
def test_supported_prompt_values_are_parsed(
    core: Core, app: Client, prompt: str, parsed: set[str]
) -> None:
    assert validate(core, app, prompt=prompt).prompt == frozenset(parsed)


@pytest.mark.parametrize("prompt", ["bogus", "none login", "none consent", "login NONE"])
def test_unknown_prompt_values_or_none_with_others_are_invalid_request(
    core: Core, app: Client, prompt: str
) -> None:
    assert isinstance(refused(core, app, prompt=prompt).error, errors.InvalidRequest)


@pytest.mark.parametrize(("max_age", "parsed"), [(None, None), ("0", 0), ("999999999", 999999999)])
def test_max_age_is_a_number_of_seconds(
    core: Core, app: Client, max_age: str | None, parsed: int | None
) -> None:
    assert validate(core, app, max_age=max_age).max_age == parsed


@pytest.mark.parametrize(
    "max_age", ["", "-1", "1.5", "1e3", "abc", " 5", "1234567890", "²", "٣", "1²"]
)
def test_max_age_that_is_not_plain_ascii_digits_is_invalid_request(
    core: Core, app: Client, max_age: str
) -> None:
    """Never an exception other than the protocol's error (rule 28): '²' is a digit to
    `str.isdigit` but not to `int`."""
    assert isinstance(refused(core, app, max_age=max_age).error, errors.InvalidRequest)


def test_the_request_carries_what_the_later_steps_need(core: Core, app: Client) -> None:
    req = validate(core, app, nonce="n-1", login_hint="alice", prompt="login", max_age="300")
    assert (req.client, req.redirect_uri, req.state, req.nonce) == (app, CB, "st", "n-1")
    assert (req.login_hint, req.prompt, req.max_age) == ("alice", frozenset({"login"}), 300)


# --- the response (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207) -----------------------------------------


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_redirect_with_adds_the_parameters_encoded_and_keeps_the_uris_query() -> None:
    url = redirect_with(CB, {"code": "c/+=", "state": "a b&c=d", "iss": ISSUER, "x": None})
    assert url.startswith(CB + "?")
    assert query_of(url) == [("code", "c/+="), ("state", "a b&c=d"), ("iss", ISSUER)]
    url = redirect_with(CB + "?tenant=7", {"code": "c"})
    assert url.startswith(CB + "?tenant=7&") and query_of(url) == [("tenant", "7"), ("code", "c")]


def test_an_error_redirect_goes_to_the_validated_uri_with_state(core: Core, app: Client) -> None:
    refusal = refused(core, app, response_type="token", state="s&t")
    url = redirect_with(
        refusal.redirect_uri,
        {"error": refusal.error.error, "state": refusal.state, "iss": ISSUER},
    )
    assert url.startswith(CB + "?")
    assert dict(query_of(url)) == {
        "error": "unsupported_response_type",
        "state": "s&t",
        "iss": ISSUER,
    }


# --- the code (RFC 6749 §4.1.2, §10.10; docs/architecture.md "codes"; rules 13, 14) -----------


@dataclass
class RecordingCodes:
    """The code store, remembering what was written to it."""

    inner: CodeStore
    added: list[AuthorizationCode] = field(default_factory=list)

    def add(self, code: AuthorizationCode) -> None:
        self.added.append(code)
        self.inner.add(code)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_code_is_256_bits_stored_only_as_its_hash_with_what_was_asked(core: Core) -> None:
    user = core.add_user()
    client, _ = core.add_app()
    req = validate(
        core, client, nonce="n-1", code_challenge=CHALLENGE, code_challenge_method="S256"
    )
    codes = RecordingCodes(core.store.codes)
    auth_time = core.clock() - timedelta(minutes=5)
    code = issue_code(
        codes,  # type: ignore[arg-type]
        req,
        user_id=user.id,
        auth_time=auth_time,
        session_id="sess-1",
        now=core.clock(),
        ttl_seconds=CODE_TTL,
    )
    assert len(code) >= 43  # 32 random bytes, base64url
    [stored] = codes.added
    assert stored.code_hash == sha256_b64(code) and code not in repr(stored)
    assert (stored.client_id, stored.user_id, stored.redirect_uri) == (
        client.client_id,
        user.id,
        CB,
    )
    assert (stored.scopes, stored.audience) == (req.scopes, ORDERS)
    assert (stored.code_challenge, stored.nonce, stored.session_id) == (CHALLENGE, "n-1", "sess-1")
    assert stored.auth_time == auth_time and stored.issued_at == core.clock()
    assert stored.expires_at == core.clock() + timedelta(seconds=CODE_TTL)
    assert stored.consumed_at is None


def test_every_code_and_its_grant_id_are_new(core: Core) -> None:
    user = core.add_user()
    client, _ = core.add_app()
    req = validate(core, client)
    codes = RecordingCodes(core.store.codes)
    values = {
        issue_code(
            codes,
            req,
            user_id=user.id,
            auth_time=core.clock(),
            session_id=None,  # type: ignore[arg-type]
            now=core.clock(),
            ttl_seconds=CODE_TTL,
        )
        for _ in range(20)
    }
    assert len(values) == 20
    assert len({c.grant_id for c in codes.added}) == 20


def test_a_code_is_redeemed_within_its_lifetime_and_refused_from_its_expiry_on(
    core: Core,
) -> None:
    user = core.add_user()
    client, _ = core.add_app()
    fresh, stale = core.authorize(client, user), core.authorize(client, user)
    core.clock.advance(CODE_TTL - 1)
    assert core.redeem(client, fresh)["token_type"] == "Bearer"
    core.clock.advance(1)  # now == expires_at
    with pytest.raises(errors.InvalidGrant):
        core.redeem(client, stale)


def test_an_expired_code_stays_refused_and_revokes_nothing(core: Core) -> None:
    user = core.add_user()
    client, _ = core.add_app()
    tokens = core.code_flow(client, user)
    stale = core.authorize(client, user)
    core.clock.advance(CODE_TTL + 3600)
    for _ in range(2):
        with pytest.raises(errors.InvalidGrant):
            core.redeem(client, stale)
    # Only a replay of a used code revokes what it issued; an expired one was never used.
    assert core.introspect(client, tokens["refresh_token"])["active"] is True


def test_a_public_apps_code_is_redeemed_with_the_verifier_of_its_challenge(
    core: Core, native: Client
) -> None:
    user = core.add_user()
    body = core.redeem(native, core.authorize(native, user))
    assert body["token_type"] == "Bearer" and "refresh_token" in body
    with pytest.raises(errors.InvalidGrant):
        core.redeem(native, core.authorize(native, user), code_verifier="w" * 43)
