"""Signing in through upstream OpenID Connect providers (docs/federation.md), end to end over
real HTTP: the user's browser is an httpx client with a cookie jar that follows every hop by
hand, from the app's authorization request at Tessera, through the sign-in page's provider
button, the upstream, Tessera's callback, and back to the app with a code.

The upstreams here are adversaries (tests/support/rogue_op.py: a small OpenID provider of its
own that answers with the ID token defect a test chooses) and, for client authentication with
`private_key_jwt`, panva's oidc-provider (tests/node/upstream_op.mjs). Every refusal must be
an error page (4xx, never a 500) after which nothing exists that did not before: no user, no
link, no session (docs/security.md rule 65).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.e2e.test_account_pages import Account, new_user
from tests.e2e.test_strong_authentication import continue_after_codes, enroll_totp, post_form
from tests.support.admin import admin_client, console_token
from tests.support.domains import query
from tests.support.flow import Browser, exchange_code, form_fields, query_of
from tests.support.passkeys import ACR_MFA
from tests.support.rogue_op import RogueOP, running_rogue_op
from tests.support.server import Server, free_port
from tests.support.upstreams import (
    account,
    callback_uri,
    jwks_uri,
    key_client,
    running_upstream_op,
    upstream_sign_in,
)

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"  # the demo domain's administrator, `admin`
CLIENT_ID = "tessera-downstream"
CLIENT_SECRET = "rogue-client-secret-4f1c9a7d0b2e"
STATE = "app-state-Qm3"
NONCE = "app-nonce-8Zt"


# --- fixtures ----------------------------------------------------------------------------------


def add_provider(server: Server, name: str, issuer: str, *args: str) -> dict[str, Any]:
    """`tessera admin providers add NAME … --json` with our client secret on stdin."""
    view: dict[str, Any] = server.cli_json(
        "admin",
        "providers",
        "add",
        name,
        "--issuer",
        issuer,
        "--client-id",
        CLIENT_ID,
        "--client-secret-stdin",
        *args,
        input=CLIENT_SECRET + "\n",
    )
    return view


@pytest.fixture(scope="module")
def rogues(server: Server) -> Iterator[dict[str, RogueOP]]:
    """Three hostile providers, added to the demo domain as `rogue-a`, `rogue-b` and
    `rogue-link` (the last with `--link-existing`)."""
    with running_rogue_op() as a, running_rogue_op() as b, running_rogue_op() as link:
        add_provider(server, "rogue-a", a.issuer, "--display-name", "Rogue A")
        add_provider(server, "rogue-b", b.issuer, "--display-name", "Rogue B")
        add_provider(server, "rogue-link", link.issuer, "--link-existing")
        yield {"rogue-a": a, "rogue-b": b, "rogue-link": link}


@pytest.fixture
def a(rogues: dict[str, RogueOP]) -> RogueOP:
    """`rogue-a`, honest until a test says otherwise, answering for a new upstream user."""
    for op in rogues.values():
        op.reset()
    return rogues["rogue-a"]


@pytest.fixture
def b(rogues: dict[str, RogueOP], a: RogueOP) -> RogueOP:
    return rogues["rogue-b"]


@pytest.fixture
def linker(rogues: dict[str, RogueOP], a: RogueOP) -> RogueOP:
    return rogues["rogue-link"]


# --- the browser's round trip ------------------------------------------------------------------


def authorize_params(server: Server, **extra: str) -> dict[str, str]:
    """The demo confidential app's authorization request (the seed's app)."""
    demo = server.demo
    return {
        "response_type": "code",
        "client_id": demo["confidential_app"]["client_id"],
        "redirect_uri": demo["confidential_app"]["redirect_uri"],
        "scope": "openid profile " + demo["resource"]["scope"],
        "state": STATE,
        "nonce": NONCE,
        **extra,
    }


_ANCHOR = re.compile(r"<a\b[^>]*>", re.I)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')


def provider_button(page: httpx.Response, name: str) -> str:
    """The href of the sign-in page's "Sign in with …" button of provider `name`."""
    for tag in _ANCHOR.findall(page.text):
        attrs = {k.lower(): unescape(v) for k, v in _ATTR.findall(tag)}
        if f"/oauth2/v1/federation/{name}/start" in attrs.get("href", ""):
            return attrs["href"]
    raise AssertionError(f"no button for {name} on the sign-in page:\n{page.text[:2000]}")


@dataclass
class Started:
    """The browser sent to the upstream: the 303 and the upstream request's parameters."""

    response: httpx.Response
    location: str

    @property
    def params(self) -> dict[str, str]:
        return query_of(self.location)

    @property
    def query(self) -> str:
        return urlsplit(self.location).query


def start(browser: Browser, server: Server, name: str, **extra: str) -> Started:
    """The app's authorization request → the sign-in page → its button for `name` → the 303
    to the upstream's authorization endpoint."""
    deadline = time.monotonic() + 5  # the sign-in page caches the provider list 2 s
    while True:
        page = browser.authorize(**authorize_params(server, **extra))
        assert page.status_code == 200 and 'name="password"' in page.text, page.text[:500]
        if f"/oauth2/v1/federation/{name}/start" in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    response = browser.http.get(provider_button(page, name))
    assert response.status_code == 303, response.text[:1000]
    return Started(response, response.headers["location"])


def upstream_answer(url: str) -> str:
    """What a rogue provider's authorization endpoint redirects the browser to."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def round_trip(browser: Browser, server: Server, op: RogueOP, name: str) -> httpx.Response:
    """Start at `name`, through `op`, and the browser at Tessera's callback: its response."""
    started = start(browser, server, name)
    assert started.location.startswith(op.issuer + "/authorize?"), started.location
    return browser.http.get(upstream_answer(started.location))


def finish_at_app(browser: Browser, server: Server, response: httpx.Response) -> str:
    """After a successful callback: follow Tessera's redirects (consent allowed) to the app's
    redirect URI; the code."""
    redirect_uri = server.demo["confidential_app"]["redirect_uri"]
    for _ in range(6):
        if response.status_code in (302, 303):
            location = str(response.url.join(response.headers["location"]))
            if location.startswith(redirect_uri):
                back = query_of(location)
                assert back["state"] == STATE and back["iss"] == server.issuer, back
                return back["code"]
            response = browser.http.get(location)
        elif response.status_code == 200 and 'value="allow"' in response.text:
            response = browser.consent(response)
        else:
            raise AssertionError(f"{response.status_code}: {response.text[:1500]}")
    raise AssertionError("too many redirects")


# --- what must not change -----------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    users: frozenset[str]
    links: int


def snapshot(server: Server) -> Snapshot:
    users = server.cli_json("admin", "users", "list")
    links = query(server, "SELECT count(*) FROM federated_identities")[0][0]
    return Snapshot(frozenset(u["id"] for u in users), int(links))


def users_by_username(server: Server) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in server.cli_json("admin", "users", "list")}


def assert_no_session(browser: Browser, server: Server) -> None:
    """The browser is not signed in: `prompt=none` answers login_required (OIDC Core §3.1.2.6)."""
    response = browser.authorize(**authorize_params(server, prompt="none"))
    assert response.status_code in (302, 303), response.text[:500]
    assert query_of(response.headers["location"]).get("error") == "login_required"


def assert_refused(
    response: httpx.Response, before: Snapshot, browser: Browser, server: Server
) -> None:
    """An error page (4xx, HTML), and nothing created: no user, no link, no session."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:1500])
    assert response.headers["content-type"].startswith("text/html")
    assert not any(c.startswith("tessera_session") for c in response.cookies)
    # The sealed request is gone whatever the outcome.
    assert not any(c.name.startswith("tessera_federation") for c in browser.http.cookies.jar)
    assert snapshot(server) == before
    assert_no_session(browser, server)


def last_refusal(server: Server) -> int:
    """The id of the newest `federation.refused` audit event (0: none yet), once the events of
    earlier requests are written: the audit sink flushes every 100 ms, so the id is read until
    it stays the same across a longer pause (else an earlier refusal written late would pass
    for the next one)."""
    sql = "SELECT max(id) FROM audit_events WHERE type = 'federation.refused'"
    seen = int(query(server, sql)[0][0] or 0)
    while True:
        time.sleep(0.25)
        now = int(query(server, sql)[0][0] or 0)
        if now == seen:
            return now
        seen = now


def audit_details(
    server: Server, event: str, *, after: int = 0, user_id: str | None = None
) -> list[dict[str, Any]]:
    """The details of the `event` audit events after event id `after` (of `user_id` when
    given), once there are any: the audit sink writes within about 100 ms (5 s at most)."""
    sql = "SELECT details FROM audit_events WHERE type = :event AND id > :after"
    params: dict[str, Any] = {"event": event, "after": after}
    if user_id is not None:
        sql, params["user_id"] = sql + " AND user_id = :user_id", user_id
    deadline = time.monotonic() + 5
    while not (rows := query(server, sql, **params)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [json.loads(d) if isinstance(d, str) else d for (d,) in rows]


def refusal_detail(server: Server, after: int) -> str:
    """The technical detail of the `federation.refused` event audited after event `after`:
    why Tessera refused."""
    rows = audit_details(server, "federation.refused", after=after)
    assert len(rows) == 1, rows
    return str(rows[0]["detail"])


def federation_links(server: Server, user_id: str) -> list[tuple[Any, ...]]:
    return query(
        server,
        "SELECT provider_id, subject FROM federated_identities WHERE user_id = :u",
        u=user_id,
    )


def id_token_claims(server: Server, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())
    return dict(jwt.decode(token, keys).claims)


def introspect(server: Server, token: str) -> dict[str, Any]:
    app = server.demo["confidential_app"]
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": token},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the honest round trip (what each refusal below differs from) ----------------------------


def test_a_clean_answer_signs_in_and_creates_the_user_just_in_time(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    before = snapshot(server)
    started = start(browser, server, "rogue-a")
    asked = started.params
    # OIDC Core §3.1.2.1 with PKCE (RFC 7636 §4.3) and our callback for this provider only.
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == callback_uri(server.issuer, "rogue-a")
    assert asked["scope"].split()[0] == "openid"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert asked["state"] != STATE and asked["nonce"] != NONCE  # ours, not the app's
    cookie = [c for c in browser.http.cookies.jar if c.name.startswith("tessera_federation")]
    assert cookie and cookie[0].path == "/oauth2/v1/federation"

    callback = browser.http.get(upstream_answer(started.location))
    # A session cookie, and no known-device cookie: this path never gets the browser's, so a
    # new one would replace it.
    set_cookies = callback.headers.get_list("set-cookie")
    assert any(c.startswith("tessera_session=") for c in set_cookies), set_cookies
    assert not any(c.startswith("tessera_device=") for c in set_cookies), set_cookies
    code = finish_at_app(browser, server, callback)
    tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)

    # The code went to the provider's token endpoint with the verifier and our secret.
    (redeemed,) = a.calls("token")
    assert redeemed["grant_type"] == "authorization_code"
    assert redeemed["redirect_uri"] == asked["redirect_uri"]
    assert len(redeemed["code_verifier"]) >= 43
    assert redeemed["authorization"].startswith("Basic ")
    assert not any(c.name.startswith("tessera_federation") for c in browser.http.cookies.jar)

    after = snapshot(server)
    (new_id,) = after.users - before.users
    assert after.links == before.links + 1
    claims = id_token_claims(server, tokens["id_token"])
    assert claims["sub"] == new_id
    assert claims["amr"] == ["fed"]
    # The access token says it too (RFC 9068 §2.2.1), and the session records the provider.
    assert id_token_claims(server, tokens["access_token"])["amr"] == ["fed"]
    admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    sessions = httpx.get(
        f"{server.base_url}/admin/v1/users/{new_id}/sessions",
        headers={"Authorization": f"Bearer {admin}"},
    ).json()
    assert [(s["amr"], s["upstream_provider"]) for s in sessions] == [(["fed"], "rogue-a")]
    # The user's own sessions page says so too.
    own = browser.http.get(f"{server.base_url}/account/sessions")
    assert own.status_code == 200 and "Sign-in through Rogue A" in own.text, own.text[-2000:]
    # The sign-in is audited with the app it was for, as a password sign-in is.
    deadline = time.monotonic() + 5
    sql = "SELECT client_id FROM audit_events WHERE type = 'login.success' AND user_id = :u"
    while not (rows := query(server, sql, u=new_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rows == [(server.demo["confidential_app"]["client_id"],)]
    user = {u["id"]: u for u in server.cli_json("admin", "users", "list")}[new_id]
    assert user["username"] == a.subject  # preferred_username
    assert user["email"] == f"{a.subject}@rogue.test"
    assert [row[1] for row in federation_links(server, new_id)] == [a.subject]


def _until_a_page(browser: Browser, response: httpx.Response) -> httpx.Response:
    """Tessera's redirects followed to the next page it shows (200)."""
    for _ in range(4):
        if response.status_code not in (302, 303):
            break
        response = browser.follow(response)
    assert response.status_code == 200, (response.status_code, response.text[:1500])
    return response


def test_an_app_requiring_a_second_factor_gets_it_after_a_federated_sign_in(
    server: Server, a: RogueOP
) -> None:
    """The provider's sign-in is one factor (docs/federation.md): where the app requires two,
    the user sets up an authenticator app after it, next time is asked for a code, and the
    tokens say both. (The second factor once left the session at one factor: asked forever.)"""
    app = server.demo["confidential_app"]
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.issuer, token) as api:
        required = api.patch(f"/apps/{app['client_id']}", json={"mfa_policy": "required"})
        assert required.status_code == 200, required.text
        try:
            with Browser(server.base_url) as first:
                enroll = _until_a_page(first, round_trip(first, server, a, "rogue-a"))
                assert "Set up a second factor" in enroll.text, enroll.text[:1500]
                _, codes, done = enroll_totp(first, server.issuer, enroll)
                code = finish_at_app(first, server, continue_after_codes(first, done))
            claims = id_token_claims(server, exchange_code(server.base_url, app, code)["id_token"])
            assert claims["amr"] == ["fed", "otp", "mfa"] and claims["acr"] == ACR_MFA
            with Browser(server.base_url) as again:
                factor = _until_a_page(again, round_trip(again, server, a, "rogue-a"))
                assert "Confirm it is you" in factor.text, factor.text[:1500]
                action = f"{server.issuer}/oauth2/v1/login/factor"
                answered = post_form(again, factor, action, "recovery-form", code=codes[0])
                code = finish_at_app(again, server, answered)
            tokens = exchange_code(server.base_url, app, code)
            assert id_token_claims(server, tokens["access_token"])["acr"] == ACR_MFA
        finally:
            back = api.patch(f"/apps/{app['client_id']}", json={"mfa_policy": None})
            assert back.status_code == 200, back.text


def test_a_federated_user_sets_a_first_password_and_signs_in_with_it(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    """A just-in-time account has no password: its password page sets one without asking for
    a current one, and then the user can sign in here with it too."""
    finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))
    page = browser.http.get(f"{server.base_url}/account/password")
    assert page.status_code == 200 and "Set a password" in page.text, page.text[:1500]
    assert 'name="current_password"' not in page.text
    html = page.text[page.text.index('id="password-form"') :]
    fields = form_fields(html[: html.index("</form>")])
    password = "Quartz-Orchard-Lantern-52"
    answer = browser.http.post(
        f"{server.base_url}/account/password",
        data={**fields, "new_password": password, "new_password_again": password},
    )
    assert answer.status_code == 303, answer.text[:1500]
    assert not any(c.startswith("tessera_device=") for c in answer.headers.get_list("set-cookie"))
    assert "Your password was set" in browser.follow(answer).text
    with Browser(server.base_url) as other:
        response = other.login(other.authorize(**authorize_params(server)), a.subject, password)
        finish_at_app(other, server, response)
    # The next change asks for the password it now has.
    again = browser.http.get(f"{server.base_url}/account/password")
    assert 'name="current_password"' in again.text


def test_our_session_was_authenticated_when_the_provider_says(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    """A provider's session signs the user in again without asking: our session (and the ID
    token's `auth_time`) keep when the provider authenticated the user, not now, so a silent
    sign-in there is no fresh sign-in here (never before the account existed, though)."""
    finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))  # created now
    created = time.time()
    time.sleep(2.1)  # auth_time counts whole seconds
    upstream_auth_time = int(created) + 1  # after the account's creation, before now
    a.reset(subject=a.subject, auth_time=upstream_auth_time)
    with Browser(server.base_url) as again:
        code = finish_at_app(again, server, round_trip(again, server, a, "rogue-a"))
    tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
    assert id_token_claims(server, tokens["id_token"])["auth_time"] == upstream_auth_time


def _reauth_at_provider(browser: Browser, server: Server, op: RogueOP) -> httpx.Response:
    """The security page's "Confirm it is you": Tessera's sign-in page asks for a fresh
    sign-in, its button for `rogue-a` (`op`) passes that on; the response of Tessera's
    callback."""
    asked = browser.http.get(f"{server.base_url}/account/reauth?to=security")
    assert asked.status_code == 303 and "prompt=login" in asked.headers["location"], asked.text
    page = browser.follow(asked)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:1000]
    started = browser.http.get(provider_button(page, "rogue-a"))
    assert started.status_code == 303, started.text[:1000]
    assert started.headers["location"].startswith(op.issuer + "/authorize?")
    assert query_of(started.headers["location"])["prompt"] == "login"
    return browser.http.get(upstream_answer(started.headers["location"]))


def test_a_silent_upstream_sign_in_is_no_fresh_sign_in_for_the_security_page(
    server: Server, a: RogueOP
) -> None:
    """A session at the provider from an hour ago signs the user in here without a password,
    so the account's sensitive page asks for a fresh sign-in; the provider is asked for one
    (`prompt=login`), an answer that still says an hour ago is refused, a new sign-in there
    opens the page (docs/federation.md, "Freshness")."""
    with Browser(server.base_url) as first:
        finish_at_app(first, server, round_trip(first, server, a, "rogue-a"))  # created now
    with server.store_context() as ctx:
        user = ctx.store.users.get_by_username(a.subject)
        assert user is not None
        # An account of two hours ago: its creation no longer bounds the provider's auth_time.
        ctx.store.users.update(replace(user, password_changed_at=ctx.clock() - timedelta(hours=2)))
    an_hour_ago = int(time.time()) - 3600
    a.reset(subject=a.subject, auth_time=an_hour_ago)
    with Browser(server.base_url) as browser:
        code = finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))
        tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
        assert id_token_claims(server, tokens["id_token"])["auth_time"] == an_hour_ago
        page = browser.http.get(f"{server.base_url}/account/security")
        assert page.status_code == 200 and 'id="reauth"' in page.text, page.text[:1500]
        assert 'id="totp-setup"' not in page.text

        # The provider signs the user in silently again: refused, the page is still closed.
        audited = last_refusal(server)
        stale = _reauth_at_provider(browser, server, a)
        assert 400 <= stale.status_code < 500, (stale.status_code, stale.text[:1500])
        assert "did not ask you to sign in again" in unescape(stale.text)
        assert "is older" in refusal_detail(server, audited)
        again = browser.http.get(f"{server.base_url}/account/security")
        assert 'id="reauth"' in again.text

        # A new sign-in there (its auth_time now): the page opens.
        a.reset(subject=a.subject)
        response = _until_a_page(browser, _reauth_at_provider(browser, server, a))
        assert str(response.url).endswith("/account/security"), response.url
        assert 'id="reauth"' not in response.text
        assert 'id="totp-setup"' in response.text


def test_a_fresh_sign_in_asked_by_the_app_is_asked_of_the_provider(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    """OIDC Core §3.1.2.1: the app's `prompt=login` and `max_age` go upstream (our session's
    `auth_time` is the provider's sign-in), and its ID token's `auth_time` is checked
    (`tessera.oauth.federation.flow.complete`): the rogue provider's is now, so it passes."""
    started = start(browser, server, "rogue-a", prompt="login", max_age="120")
    assert (started.params["prompt"], started.params["max_age"]) == ("login", "120")
    callback = browser.http.get(upstream_answer(started.location))
    assert finish_at_app(browser, server, callback)


def _group_names_of(server: Server, user_id: str) -> set[str]:
    with server.store_context() as ctx:
        return {g.name for g in ctx.store.groups.groups_of(user_id)}


def test_with_sync_groups_the_claim_ends_the_memberships_the_provider_made(
    server: Server,
) -> None:
    """docs/federation.md, "Groups": with `--sync-groups` a sign-in whose groups claim no
    longer names a group ends the membership an earlier sign-in made; a membership the
    administrator took over stays, and a sign-in without the claim ends nothing."""
    eng, ops, audit = "Sync-Engineers", "Sync-Ops", "Sync-Auditors"
    for name in (eng, ops, audit):
        server.cli_json("admin", "groups", "create", name)
    with running_rogue_op() as op:
        add_provider(server, "rogue-sync", op.issuer, "--groups-claim", "groups", "--sync-groups")
        try:
            op.reset(groups=[eng, ops, "Not-Here"])
            with Browser(server.base_url) as first:
                finish_at_app(first, server, round_trip(first, server, op, "rogue-sync"))
            user = users_by_username(server)[op.subject]
            assert _group_names_of(server, user["id"]) == {eng, ops}
            # The administrator adds the user to Ops (theirs now) and to Auditors.
            for name in (ops, audit):
                server.cli_json("admin", "groups", "add-member", name, op.subject)

            def sign_in(**claims: Any) -> set[str]:
                op.reset(subject=op.subject, **claims)
                with Browser(server.base_url) as again:
                    finish_at_app(again, server, round_trip(again, server, op, "rogue-sync"))
                return _group_names_of(server, user["id"])

            assert sign_in(groups=[]) == {ops, audit}
            changed = audit_details(server, "federation.groups_changed", user_id=user["id"])
            eng_id = server.cli_json("admin", "groups", "show", eng)["id"]
            assert [(d["groups"], d["groups_left"]) for d in changed] == [([], [eng_id])]

            # Named again: the provider's again. Then no groups claim at all (the provider
            # stopped sending it): its membership stays.
            assert sign_in(groups=[eng]) == {eng, ops, audit}
            assert sign_in() == {eng, ops, audit}
        finally:
            server.cli("admin", "providers", "remove", "rogue-sync")


# --- refusals: the ID token and the authorization response --------------------------------------


@pytest.mark.parametrize(
    ("defect", "why"),
    [
        ("forged_signature", "signature is invalid"),  # OIDC Core §3.1.3.7 step 6
        ("wrong_aud", "aud does not name us"),  # step 3
        ("wrong_nonce", "nonce is not the one of this sign-in"),  # step 11
        ("wrong_iss", "ID token's iss .* is not http://127.0.0.1:"),  # step 2
        ("expired", "expired"),  # step 9
        ("alg_none", "not a compact JWS|'none'"),  # steps 6-8: never an unsecured JWT
        ("hs256", "'HS256' is not accepted"),  # never HMAC: the secret is not only theirs
        ("userinfo_sub", "userinfo sub is not"),  # OIDC Core §5.3.2: userinfo for another user
    ],
)
def test_an_id_token_with_a_defect_is_refused_and_nothing_is_created(
    server: Server, browser: Browser, a: RogueOP, defect: str, why: str
) -> None:
    a.reset(defect=defect)
    before = snapshot(server)
    audited = last_refusal(server)
    response = round_trip(browser, server, a, "rogue-a")
    assert len(a.calls("token")) == 1  # the code was redeemed; its ID token was not believed
    assert_refused(response, before, browser, server)
    assert re.search(why, refusal_detail(server, audited))
    assert a.subject not in users_by_username(server)


def test_an_authorization_response_without_the_advertised_iss_is_refused(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    a.reset(defect="no_iss_param")  # RFC 9207 §2.4: its metadata says it sends `iss`
    before = snapshot(server)
    audited = last_refusal(server)
    response = round_trip(browser, server, a, "rogue-a")
    assert a.calls("token") == []  # refused before the code was used
    assert_refused(response, before, browser, server)
    assert "iss parameter is missing" in refusal_detail(server, audited)


def test_mix_up_a_response_of_provider_b_to_a_request_for_provider_a_is_refused(
    server: Server, browser: Browser, a: RogueOP, b: RogueOP
) -> None:
    """RFC 9207 §2.4: the user started at A; B answers A's request (same state, A's callback)
    with its own code and `iss`=B. The code must go nowhere."""
    before = snapshot(server)
    audited = last_refusal(server)
    started = start(browser, server, "rogue-a")
    at_a_callback = upstream_answer(b.authorize_url(started.query))
    assert at_a_callback.startswith(callback_uri(server.issuer, "rogue-a") + "?")
    # B answered A's request (A's state), with B's code and B's iss; A was never asked.
    (asked_b,) = b.calls("authorize")
    assert asked_b["state"] == started.params["state"] and a.calls("authorize") == []
    answer = query_of(at_a_callback)
    assert answer["iss"] == b.issuer and answer["state"] == started.params["state"]
    assert b.issued(answer["code"]) and not a.issued(answer["code"])
    response = browser.http.get(at_a_callback)
    assert a.calls("token") == [] and b.calls("token") == []
    assert_refused(response, before, browser, server)
    assert "(RFC 9207 mix-up)" in refusal_detail(server, audited)


def test_mix_up_the_cookie_of_provider_a_on_the_callback_of_provider_b_is_refused(
    server: Server, browser: Browser, a: RogueOP, b: RogueOP
) -> None:
    """One redirect URI per provider (RFC 9700 §4.4.2): a response arriving at B's callback in
    a browser whose sign-in was started at A is not B's to take."""
    before = snapshot(server)
    audited = last_refusal(server)
    started = start(browser, server, "rogue-a")
    params = started.params
    params["redirect_uri"] = callback_uri(server.issuer, "rogue-b")
    at_b_callback = upstream_answer(b.authorize_url(str(httpx.QueryParams(params))))
    assert at_b_callback.startswith(callback_uri(server.issuer, "rogue-b") + "?")
    response = browser.http.get(at_b_callback)
    assert a.calls("token") == [] and b.calls("token") == []
    assert_refused(response, before, browser, server)
    assert "the request was made for rogue-a" in refusal_detail(server, audited)
    assert "another provider" in response.text


def test_a_callback_replayed_with_its_cookie_is_refused(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    """The state is used once: the same answer and the same cookie, a second time."""
    started = start(browser, server, "rogue-a")
    (cookie,) = [c for c in browser.http.cookies.jar if c.name.startswith("tessera_federation")]
    answer = upstream_answer(started.location)
    finish_at_app(browser, server, browser.http.get(answer))
    before = snapshot(server)
    audited = last_refusal(server)
    with Browser(server.base_url) as attacker:
        replayed = httpx.get(answer, headers={"Cookie": f"{cookie.name}={cookie.value}"})
        assert_refused(replayed, before, attacker, server)
        assert "replayed" in refusal_detail(server, audited)
    assert len(a.calls("token")) == 1


def test_an_unknown_provider_is_an_error_page(server: Server, browser: Browser) -> None:
    response = browser.http.get("/oauth2/v1/federation/nobody/start")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_a_callback_without_a_started_sign_in_is_refused(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    before = snapshot(server)
    audited = last_refusal(server)
    state = "x" * 43
    url = f"{callback_uri(server.issuer, 'rogue-a')}?code=c&state={state}&iss={a.issuer}"
    assert_refused(browser.http.get(url), before, browser, server)
    assert "no valid federation cookie" in refusal_detail(server, audited)


# --- refusals: accounts -------------------------------------------------------------------------


def test_an_unverified_email_cannot_take_over_an_existing_account(
    server: Server, browser: Browser, linker: RogueOP
) -> None:
    """`--link-existing` links by e-mail only when the provider says the address is verified:
    otherwise anyone who registers the victim's address upstream would sign in as the victim."""
    carol = server.cli_json(
        "admin",
        "users",
        "create",
        "carol",
        "--email",
        "carol@example.test",
        "--password-stdin",
        input="Quiet-Orchard-Signal-73\n",
    )
    linker.reset(email="carol@example.test", email_verified=False)
    before = snapshot(server)
    audited = last_refusal(server)
    response = round_trip(browser, server, linker, "rogue-link")
    assert_refused(response, before, browser, server)
    assert "does not say it is verified" in refusal_detail(server, audited)
    assert federation_links(server, carol["id"]) == []

    # The same address, verified: linked to carol (the refusal above was the e-mail's).
    linker.reset(email="carol@example.test", email_verified=True)
    with Browser(server.base_url) as fresh:
        code = finish_at_app(fresh, server, round_trip(fresh, server, linker, "rogue-link"))
        tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
    assert id_token_claims(server, tokens["id_token"])["sub"] == carol["id"]
    assert [row[1] for row in federation_links(server, carol["id"])] == [linker.subject]
    assert snapshot(server).users == before.users


def test_an_address_a_user_typed_on_their_account_page_is_never_linked(
    server: Server, browser: Browser, linker: RogueOP
) -> None:
    """Security review N1: a local user sets a colleague's address on their account page; the
    colleague's first sign-in through a `--link-existing` provider (with the address verified
    upstream) must not land in that account. An administrator's address is linked."""
    mallory = new_user(server)
    page_user = Account(server.base_url, mallory)
    try:
        page = page_user.get("/account/")
        saved = page_user.post(
            "/account/profile", page, display_name="Mallory", email="frank@example.test"
        )
        assert saved.status_code == 303, saved.text[:500]
    finally:
        page_user.close()
    typed = users_by_username(server)[mallory]
    assert (typed["email"], typed["email_verified"]) == ("frank@example.test", False)

    linker.reset(email="frank@example.test", email_verified=True)
    before = snapshot(server)
    audited = last_refusal(server)
    response = round_trip(browser, server, linker, "rogue-link")
    assert_refused(response, before, browser, server)
    assert "has not verified it" in unescape(response.text)
    assert "not verified here" in refusal_detail(server, audited)
    assert federation_links(server, typed["id"]) == []

    # The administrator gives frank the address: verified, and frank is linked (mallory, whose
    # address is not verified, does not count as a second account).
    frank = server.cli_json(
        "admin",
        "users",
        "create",
        "frank",
        "--email",
        "frank@example.test",
        "--password-stdin",
        input="Granite-Willow-Beacon-58\n",
    )
    assert frank["email_verified"] is True
    with Browser(server.base_url) as fresh:
        code = finish_at_app(fresh, server, round_trip(fresh, server, linker, "rogue-link"))
        tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
    assert id_token_claims(server, tokens["id_token"])["sub"] == frank["id"]
    assert federation_links(server, typed["id"]) == []


def _start_link(account: Account, op: RogueOP) -> str:
    """On the account's security page, "Link Rogue A": the URL at the provider it is sent to."""
    page = account.get("/account/security")
    assert page.status_code == 200 and 'id="link-rogue-a"' in page.text, page.text[:1000]
    started = account.post("/account/security/providers/link", page, provider="rogue-a")
    assert started.status_code == 303, started.text[:1000]
    location = started.headers["location"]
    assert location.startswith(op.issuer + "/authorize?"), location
    return location


def test_a_user_links_a_provider_from_their_account_page(server: Server, a: RogueOP) -> None:
    """Signed in with a password, a user links their account at a provider; the callback
    checks the session is still theirs, and an upstream account links to one account only."""
    grace, heidi = new_user(server), new_user(server)
    ids = {u: users_by_username(server)[u]["id"] for u in (grace, heidi)}
    mine, theirs = Account(server.base_url, grace), Account(server.base_url, heidi)
    try:
        # Another user's session on the callback of grace's link: refused, nothing linked.
        at_provider = _start_link(mine, a)
        for cookie in mine.http.cookies.jar:
            if cookie.name.startswith("tessera_federation"):
                theirs.http.cookies.set(cookie.name, cookie.value or "", path=cookie.path)
        assert theirs.get("/account/").status_code == 200  # heidi is signed in there
        audited = last_refusal(server)
        hijacked = theirs.http.get(upstream_answer(at_provider))
        assert hijacked.status_code == 403, hijacked.text[:1000]
        assert "session" in refusal_detail(server, audited)
        assert federation_links(server, ids[grace]) == federation_links(server, ids[heidi]) == []

        # grace's own round trip: linked, audited, and shown on her page.
        linked = mine.http.get(upstream_answer(_start_link(mine, a)))
        assert linked.status_code == 303, linked.text[:1000]
        assert linked.headers["location"].endswith("/account/security?done=provider-linked")
        assert [row[1] for row in federation_links(server, ids[grace])] == [a.subject]
        shown = mine.get("/account/security")
        assert 'id="linked-providers"' in shown.text and "Rogue A" in shown.text
        sql = "SELECT count(*) FROM audit_events WHERE type = 'account.provider_linked' AND user_id = :u"
        deadline = time.monotonic() + 5
        while query(server, sql, u=ids[grace])[0][0] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert query(server, sql, u=ids[grace])[0][0] == 1

        # The same upstream account for heidi: it is grace's already (409), nothing linked.
        audited = last_refusal(server)
        again = theirs.http.get(upstream_answer(_start_link(theirs, a)))
        assert again.status_code == 409, again.text[:1000]
        assert "Provider not linked" in again.text
        assert "another" in refusal_detail(server, audited)
        assert federation_links(server, ids[heidi]) == []
    finally:
        mine.close()
        theirs.close()


def test_an_administrator_is_never_linked_by_email(
    server: Server, browser: Browser, linker: RogueOP
) -> None:
    dora = server.cli_json(
        "admin",
        "users",
        "create",
        "dora",
        "--email",
        "dora@example.test",
        "--admin",
        "--password-stdin",
        input="Amber-Canyon-Lamp-2094\n",
    )
    linker.reset(email="dora@example.test", email_verified=True)
    before = snapshot(server)
    audited = last_refusal(server)
    assert_refused(round_trip(browser, server, linker, "rogue-link"), before, browser, server)
    assert "is an administrator" in refusal_detail(server, audited)
    assert federation_links(server, dora["id"]) == []


def test_a_disabled_user_cannot_sign_in_through_a_provider(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    code = finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))
    exchange_code(server.base_url, server.demo["confidential_app"], code)
    username = a.subject
    assert users_by_username(server)[username]["id"]
    server.cli("admin", "users", "disable", username)
    try:
        a.reset(subject=username)  # the same upstream account comes back
        before = snapshot(server)
        audited = last_refusal(server)
        with Browser(server.base_url) as again:
            response = round_trip(again, server, a, "rogue-a")
            assert response.status_code == 403, response.text[:1000]
            assert_refused(response, before, again, server)
            assert "disabled" in refusal_detail(server, audited)
    finally:
        server.cli("admin", "users", "enable", username)


# --- revocation is ours ------------------------------------------------------------------------


def test_revoking_a_federated_user_ends_the_session_and_the_tokens(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    code = finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))
    tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
    assert introspect(server, tokens["access_token"])["active"] is True
    user_id = id_token_claims(server, tokens["id_token"])["sub"]
    # Signed in: the app's next request gets a code without the sign-in page or the upstream.
    again = browser.authorize(**authorize_params(server, prompt="none"))
    assert "code" in query_of(again.headers["location"]), again.headers.get("location")

    admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    revoked = httpx.post(
        f"{server.base_url}/admin/v1/users/{user_id}/revoke-tokens",
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert revoked.status_code == 200, revoked.text
    assert introspect(server, tokens["access_token"])["active"] is False
    app = server.demo["confidential_app"]
    refreshed = httpx.post(
        f"{server.base_url}/oauth2/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert refreshed.status_code == 400, refreshed.text
    assert_no_session(browser, server)
    # Signing in again needs the upstream again.
    a.reset(subject=a.subject)
    code = finish_at_app(browser, server, round_trip(browser, server, a, "rogue-a"))
    assert len(a.calls("authorize")) == 1
    tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
    assert id_token_claims(server, tokens["id_token"])["sub"] == user_id


# --- a certified upstream with private_key_jwt -------------------------------------------------


def test_private_key_jwt_at_oidc_provider_signs_in(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    """panva's oidc-provider authenticates us by private_key_jwt (RFC 7523 §2.2) with the keys
    it fetches from our federation jwks endpoint, then Tessera creates the user."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    view = server.cli_json(
        "admin",
        "providers",
        "add",
        "node-keys",
        "--issuer",
        issuer,
        "--client-id",
        "tessera-keys",
        "--auth-method",
        "private_key_jwt",
        "--no-check",  # the upstream is not running yet
    )
    assert view["auth_method"] == "private_key_jwt" and view["has_client_secret"] is False
    served = httpx.get(jwks_uri(server.issuer, "node-keys")).json()
    assert served == view["jwks"]
    (key,) = served["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key
    callback = callback_uri(server.issuer, "node-keys")
    client = key_client("tessera-keys", callback, uri=jwks_uri(server.issuer, "node-keys"))
    erin = account("erin-upstream", "erin@node.test", name="Erin Node", username="erin")
    with running_upstream_op(tmp_path, clients=[client], accounts=[erin], port=port) as op:
        before = snapshot(server)
        started = start(browser, server, "node-keys")
        assert started.location.startswith(issuer + "/auth?"), started.location
        with httpx.Client(timeout=30) as upstream_browser:
            answer = upstream_sign_in(
                upstream_browser, started.response, "erin-upstream", until=callback
            )
        code = finish_at_app(browser, server, browser.http.get(answer.headers["location"]))
        tokens = exchange_code(server.base_url, server.demo["confidential_app"], code)
        assert "grant.error" not in op.logs()
    user = users_by_username(server)["erin"]
    assert snapshot(server).users - before.users == {user["id"]}
    assert user["email"] == "erin@node.test" and user["display_name"] == "Erin Node"
    assert id_token_claims(server, tokens["id_token"])["sub"] == user["id"]


# --- the administrator's "try sign-in" ----------------------------------------------------------


def test_try_sign_in_shows_the_claims_and_creates_nothing(
    server: Server, browser: Browser, a: RogueOP
) -> None:
    result = server.cli_json("admin", "providers", "test", "rogue-a")
    assert result["check"]["issuer"] == a.issuer
    url = result["try_sign_in_url"]
    assert url.startswith(f"{server.issuer}/oauth2/v1/federation/rogue-a/test?ticket=")
    before = snapshot(server)
    started = browser.http.get(url)
    assert started.status_code == 303, started.text[:1000]
    assert started.headers["location"].startswith(a.issuer + "/authorize?")
    shown = browser.http.get(upstream_answer(started.headers["location"]))
    assert shown.status_code == 200, shown.text[:1500]
    assert a.subject in shown.text and f"{a.subject}@rogue.test" in shown.text
    assert snapshot(server) == before
    assert_no_session(browser, server)
    # A forged ticket starts nothing.
    forged = browser.http.get(url[:-6] + "AAAAAA")
    assert forged.status_code == 400 and "This test link is not valid" in forged.text
