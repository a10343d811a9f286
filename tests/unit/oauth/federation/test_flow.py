"""The browser's round trip (docs/federation.md, docs/security.md rule 65): the upstream
authorization request, its sealed cookie, the callback's checks in order (the mix-up defences
of RFC 9207 and RFC 9700 §4.4.2, `state`, `error`, `code`), and `complete` against a provider on
127.0.0.1: the code redeemed, the ID token validated, userinfo, and a replayed callback refused."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tessera.oauth.federation.errors import UpstreamError
from tessera.oauth.federation.flow import (
    REQUEST_LIFETIME,
    FederationRequest,
    begin,
    check_response,
    complete,
    open_request,
    open_test_ticket,
    seal_request,
    seal_test_ticket,
)
from tessera.oauth.federation.metadata import ProviderMetadata, UpstreamClient
from tessera.oauth.federation.secrets import Credentials
from tessera.store.memory import MemoryStore
from tests.unit.oauth.federation.conftest import (
    REDIRECT_URI,
    ROGUE_KEY,
    T0,
    UPSTREAM_KEY,
    Answer,
    Ticks,
    UpstreamOP,
    id_claims,
    make_provider,
    sign,
)

KEY = b"f" * 32
PROVIDER = make_provider()
METADATA = ProviderMetadata(
    issuer=PROVIDER.issuer,
    authorization_endpoint="https://op.example/authorize?tenant=1",
    token_endpoint="https://op.example/token",
    jwks_uri="https://op.example/jwks",
    iss_parameter_supported=True,
)
SECRET = Credentials(client_secret="s3cret:with&odd chars")


def start(**options: Any) -> tuple[dict[str, str], FederationRequest]:
    args: dict[str, Any] = {"redirect_uri": REDIRECT_URI, "purpose": "sign-in", "now": T0}
    url, req = begin(PROVIDER, METADATA, **(args | options))
    parts = urlsplit(url)
    assert url.startswith("https://op.example/authorize?tenant=1&")
    return dict(parse_qsl(parts.query)), req


# --- begin and the cookie ----------------------------------------------------------------------


def test_the_authorization_request_has_what_oidc_and_pkce_ask() -> None:
    params, req = start(login_hint="ada@corp.example", authz="sealed-authz")
    assert params["response_type"] == "code"
    assert params["client_id"] == PROVIDER.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["scope"] == "openid email profile"
    assert params["state"] == req.state and params["nonce"] == req.nonce
    assert params["login_hint"] == "ada@corp.example"
    digest = hashlib.sha256(req.code_verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert params["code_challenge_method"] == "S256"
    assert params["tenant"] == "1"  # the endpoint's own query is kept (RFC 6749 §3.1)
    assert len({req.state, req.nonce, req.code_verifier}) == 3
    assert all(len(v) == 43 for v in (req.state, req.nonce, req.code_verifier))
    assert req.expires_at == T0 + timedelta(minutes=10)
    assert (req.provider_id, req.purpose, req.authz) == (PROVIDER.id, "sign-in", "sealed-authz")


def test_openid_comes_first_in_the_scope_once() -> None:
    provider = replace(PROVIDER, scopes=("email", "openid", "groups", "email"))
    url, _ = begin(provider, METADATA, redirect_uri=REDIRECT_URI, purpose="sign-in", now=T0)
    assert dict(parse_qsl(urlsplit(url).query))["scope"] == "openid email groups"


def test_link_and_test_requests_need_the_user() -> None:
    with pytest.raises(ValueError, match="user id"):
        start(purpose="link")
    with pytest.raises(ValueError, match="purpose"):
        start(purpose="other")
    _, req = start(purpose="link", user_id="u1")
    assert req.user_id == "u1"


def test_the_sealed_request_opens_until_it_expires_and_only_with_its_key() -> None:
    _, req = start(authz="a" * 1500, purpose="test", user_id="admin-1")
    sealed = seal_request(KEY, req)
    assert open_request(KEY, sealed, T0 + timedelta(minutes=9)) == req
    assert open_request(KEY, sealed, T0 + timedelta(minutes=10)) is None
    assert open_request(b"g" * 32, sealed, T0) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert open_request(KEY, tampered, T0) is None
    for junk in ("", "!!!", "x" * 9000):
        assert open_request(KEY, junk, T0) is None
    # A test ticket is no federation request (another associated data).
    assert open_request(KEY, seal_test_ticket(KEY, PROVIDER.id, "admin-1", T0), T0) is None


def test_the_test_ticket_binds_provider_and_administrator_for_ten_minutes() -> None:
    ticket = seal_test_ticket(KEY, PROVIDER.id, "admin-1", T0)
    assert open_test_ticket(KEY, ticket, T0 + timedelta(minutes=9)) == (PROVIDER.id, "admin-1")
    assert open_test_ticket(KEY, ticket, T0 + timedelta(minutes=10)) is None
    assert open_test_ticket(b"g" * 32, ticket, T0) is None
    _, req = start()
    assert open_test_ticket(KEY, seal_request(KEY, req), T0) is None


# --- the callback's checks ---------------------------------------------------------------------


def response(req: FederationRequest, **changes: str | None) -> dict[str, str]:
    params = {"code": "the-code", "state": req.state, "iss": PROVIDER.issuer, **changes}
    return {k: v for k, v in params.items() if v is not None}


def refused(req: FederationRequest, params: dict[str, str], match: str, **options: Any) -> str:
    provider = options.pop("provider", PROVIDER)
    metadata = options.pop("metadata", METADATA)
    path = options.pop("path", provider.name)
    with pytest.raises(UpstreamError, match=match) as caught:
        check_response(req, provider, metadata, params, provider_name_in_path=path)
    return caught.value.reason


def test_a_good_response_gives_its_code() -> None:
    _, req = start()
    code = check_response(req, PROVIDER, METADATA, response(req), provider_name_in_path="corp")
    assert code == "the-code"


def test_a_response_at_another_providers_callback_is_refused() -> None:
    _, req = start()
    other = replace(PROVIDER, id="up_other", name="other", issuer="https://other.example")
    reason = refused(req, response(req, iss=other.issuer), "made for corp", provider=other)
    assert reason.startswith("This sign-in was started with another provider")
    refused(req, response(req), "made for corp", path="other")


def test_iss_must_be_the_providers_and_is_required_when_advertised() -> None:
    _, req = start()
    reason = refused(req, response(req, iss="https://evil.example"), "iss parameter .* is not")
    assert "another provider" in reason
    refused(req, response(req, iss=PROVIDER.issuer + "/"), "is not")
    refused(req, response(req, iss=None), "missing though the provider says")
    lax = replace(METADATA, iss_parameter_supported=False)
    assert check_response(req, PROVIDER, lax, response(req, iss=None), provider_name_in_path="corp")
    refused(req, response(req, iss="https://evil.example"), "is not", metadata=lax)


@pytest.mark.parametrize("state", [None, "", "x" * 43])
def test_a_state_that_is_not_the_requests_is_refused(state: str | None) -> None:
    _, req = start()
    reason = refused(req, response(req, state=state), "state")
    assert "does not belong to this browser" in reason


def test_an_error_from_the_provider_is_shown_as_ours() -> None:
    _, req = start()
    reason = refused(req, response(req, code=None, error="access_denied"), "access_denied")
    assert reason == "You cancelled the sign-in at Corp SSO."
    reason = refused(
        req,
        response(req, code=None, error="server_error", error_description="<b>boom</b>"),
        "server_error: <b>boom</b>",  # the description goes to the detail only
    )
    assert "server_error" in reason and "<" not in reason
    reason = refused(req, response(req, code=None, error="<script>"), "answered <script>")
    assert "<" not in reason and "error invalid" in reason
    # The error is checked after state and iss (RFC 9207 §2.4 covers error responses).
    refused(req, response(req, error="access_denied", state="x"), "state")


def test_a_response_without_a_code_is_refused() -> None:
    _, req = start()
    refused(req, response(req, code=None), "no code")
    refused(req, response(req, code=""), "no code")


def test_a_disabled_provider_completes_only_an_administrators_test() -> None:
    _, req = start()
    off = replace(PROVIDER, enabled=False)
    refused(req, response(req), "disabled", provider=off)
    _, test = start(purpose="test", user_id="admin-1")
    assert check_response(test, off, METADATA, response(test), provider_name_in_path="corp")


# --- complete, against the provider on loopback -----------------------------------------------


class Round:
    """One round trip: the request made, and the provider set to answer it."""

    def __init__(self, op: UpstreamOP, client: UpstreamClient, **provider: Any) -> None:
        self.op = op
        self.client = client
        self.provider = make_provider(op.base, **provider)
        self.metadata = client.metadata(op.base)
        _, self.req = begin(
            self.provider, self.metadata, redirect_uri=REDIRECT_URI, purpose="sign-in", now=T0
        )
        self.answer_with(sign(id_claims(op.base, self.req.nonce)))

    def answer_with(self, id_token: str, **extra: Any) -> None:
        self.op.token = Answer(
            body={"access_token": "at-1", "token_type": "Bearer", "id_token": id_token, **extra}
        )
        self.op.userinfo = Answer(body={"sub": "upstream-user-1", "name": "Ada from userinfo"})

    def complete(self, store: MemoryStore, **changes: str | None) -> Any:
        params = {"code": "c-1", "state": self.req.state, "iss": self.op.base, **changes}
        return complete(
            store,
            self.client,
            self.provider,
            SECRET,
            self.req,
            {k: v for k, v in params.items() if v is not None},
            redirect_uri=REDIRECT_URI,
            now=T0 + timedelta(seconds=5),
        )


def test_complete_redeems_the_code_and_maps_the_claims(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    claims = trip.complete(store)
    assert (claims.subject, claims.email, claims.email_verified) == (
        "upstream-user-1",
        "ada@corp.example",
        True,
    )
    assert claims.display_name == "Ada from userinfo"  # userinfo completes the ID token
    assert claims.groups == ("Engineers",)
    headers, form = op.last("/token")
    assert form == {
        "grant_type": "authorization_code",
        "code": "c-1",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": trip.req.code_verifier,
    }
    # RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    basic = base64.b64decode(headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == "tessera-downstream:s3cret%3Awith%26odd+chars"
    assert op.last("/userinfo")[0]["authorization"] == "Bearer at-1"


def test_a_replayed_callback_is_refused(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    trip.complete(store)
    with pytest.raises(UpstreamError, match="replayed") as caught:
        trip.complete(store)
    assert caught.value.reason.startswith("This sign-in response was used already")
    assert op.hits("/token") == 1


def test_refused_responses_never_reach_the_token_endpoint(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"iss": "https://evil.example"}, "RFC 9207 mix-up"),
        ({"state": "x"}, "state is missing or is not the request's"),
        ({"iss": None}, "iss parameter is missing"),
    ]
    for changes, why in refusals:
        with pytest.raises(UpstreamError, match=re.escape(why)):
            trip.complete(store, **changes)
    assert op.hits("/token") == 0
    assert trip.complete(store).subject == "upstream-user-1"  # the state was not burnt


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"aud": "another-app"}, "aud does not name us"),
        ({"nonce": "another-nonce"}, "nonce"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": int(T0.timestamp()) - 120}, "expired"),
    ],
)
def test_a_bad_id_token_is_refused(
    op: UpstreamOP,
    client: UpstreamClient,
    store: MemoryStore,
    claims: dict[str, Any],
    match: str,
) -> None:
    trip = Round(op, client)
    trip.answer_with(sign({**id_claims(op.base, trip.req.nonce), **claims}))
    with pytest.raises(UpstreamError, match=match):
        trip.complete(store)
    assert op.hits("/userinfo") == 0


def test_a_forged_id_token_is_refused_after_one_key_refetch(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    trip.answer_with(sign(id_claims(op.base, trip.req.nonce), ROGUE_KEY))
    with pytest.raises(UpstreamError, match="signature is invalid"):
        trip.complete(store)


def test_a_rotated_key_is_fetched_once(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore, ticks: Ticks
) -> None:
    trip = Round(op, client)
    client.keys(trip.metadata)  # cached: the old set
    ticks.now += 11  # past the refetch interval of the node's JwksFetcher
    new_key = UPSTREAM_KEY.__class__.generate_key(2048, parameters={"kid": "up-2"}, private=True)
    op.jwks = {"keys": [new_key.as_dict(private=False)]}
    trip.answer_with(sign(id_claims(op.base, trip.req.nonce), new_key))
    assert trip.complete(store).subject == "upstream-user-1"
    assert op.hits("/jwks") == 2


def test_userinfo_about_somebody_else_is_refused(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    op.userinfo = Answer(body={"sub": "someone-else", "email": "boss@corp.example"})
    with pytest.raises(UpstreamError, match="userinfo sub"):
        trip.complete(store)


def test_a_signed_userinfo_response_is_refused_with_a_reason(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    op.userinfo = Answer(body=b"eyJ.eyJ.sig", content_type="application/jwt")
    with pytest.raises(UpstreamError, match="application/jwt"):
        trip.complete(store)


def test_a_token_error_is_refused_with_its_code_in_the_detail(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    trip = Round(op, client)
    op.token = Answer(400, {"error": "invalid_grant", "error_description": "code used"})
    with pytest.raises(UpstreamError, match="400 invalid_grant: code used") as caught:
        trip.complete(store)
    assert "invalid_grant" not in caught.value.reason


# --- a fresh sign-in asked downstream (OIDC Core §3.1.2.1 prompt=login, max_age) ---------------


def test_a_fresh_sign_in_asked_of_us_is_asked_of_the_provider_and_sealed() -> None:
    params, req = start(prompt_login=True, max_age=300)
    assert (params["prompt"], params["max_age"]) == ("login", "300")
    opened = open_request(KEY, seal_request(KEY, req), T0)
    assert opened is not None and (opened.prompt_login, opened.max_age) == (True, 300)
    plain, _ = start()
    assert "prompt" not in plain and "max_age" not in plain


@pytest.mark.parametrize(
    ("fresh", "auth_time", "accepted"),
    [
        ({"prompt_login": True}, None, False),  # no auth_time: when did they sign in?
        ({"prompt_login": True}, -3600, False),  # the provider's old session
        ({"prompt_login": True}, 2, True),
        ({"max_age": 600}, None, False),
        ({"max_age": 600}, -3600, False),
        ({"max_age": 600}, -300, True),
        ({}, None, True),  # nothing asked: nothing checked
    ],
)
def test_a_fresh_sign_in_needs_the_id_tokens_auth_time_to_say_so(
    op: UpstreamOP,
    client: UpstreamClient,
    store: MemoryStore,
    fresh: dict[str, Any],
    auth_time: int | None,
    accepted: bool,
) -> None:
    """Without it a session at the provider passed for the re-authentication that an app's
    `prompt=login`/`max_age`, or the account page's step-up, asked for: ours says now."""
    trip = Round(op, client)
    trip.req = replace(trip.req, **fresh)
    at = None if auth_time is None else int(T0.timestamp()) + auth_time
    trip.answer_with(sign(id_claims(op.base, trip.req.nonce, auth_time=at)))
    if accepted:
        assert trip.complete(store).subject == "upstream-user-1"
    else:
        with pytest.raises(UpstreamError, match="auth_time"):
            trip.complete(store)


@pytest.mark.parametrize(
    ("fresh", "auth_time", "expected"),
    [
        ({"max_age": 600}, -630, -595),  # within the clocks' leeway: what the app asked for
        # (`Round.complete` runs at T0 + 5 s)
        ({"max_age": 600}, -300, -300),
        ({"prompt_login": True}, "started-30", "started"),
        ({}, -3600, -3600),  # nothing asked: the provider's word
    ],
)
def test_a_fresh_sign_in_accepted_within_the_leeway_meets_the_apps_own_check(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore,
    fresh: dict[str, Any], auth_time: int | str, expected: int | str,
) -> None:  # fmt: skip
    """The session's `auth_time` meets the `max_age`/`prompt=login` the app asked for, which
    the app checks without our leeway (OIDC Core §3.1.3.7 item 13)."""
    trip = Round(op, client)
    trip.req = replace(trip.req, **fresh)
    started = int((trip.req.expires_at - REQUEST_LIFETIME).timestamp())

    def when(value: int | str) -> int:
        if isinstance(value, int):
            return int(T0.timestamp()) + value
        return started - 30 if value == "started-30" else started

    trip.answer_with(sign(id_claims(op.base, trip.req.nonce, auth_time=when(auth_time))))
    assert trip.complete(store).auth_time == when(expected)
