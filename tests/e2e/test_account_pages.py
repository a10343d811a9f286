"""The user's own account pages at /account/, over HTTP against the real server (issue 15 item 5):
the sign-in through the authorization endpoint and back, the profile, the password change (the
other sessions and the apps' refresh tokens end), the sessions, the connected apps (removing
access kills the app's tokens), the authenticator app and recovery codes, the refusal to remove
the last factor where one is required, CSRF refusals, and the step-up of sensitive pages."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest

from tests.support.domains import create_domain
from tests.support.flow import Browser, code_from, exchange_code, form_fields, query_of
from tests.support.passkeys import localhost_server, page_options
from tests.support.server import Server
from tests.support.soft_authenticator import SoftAuthenticator

PASSWORD = "Copper-Lantern-Orchard-41"
NEW_PASSWORD = "Silver-Meadow-Harbour-73"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, page.text[:800]
    return found.group(1)


def new_user(server: Server, *, email: str | None = None, domain: str | None = None) -> str:
    name = "u" + secrets.token_hex(4)
    args = ["admin", *(["--domain", domain] if domain else []), "users", "create", name]
    args += ["--password-stdin", *(["--email", email] if email else [])]
    server.cli(*args, input=PASSWORD + "\n")
    return name


class Account:
    """A browser on the account pages that signs in when sent to (password, then a TOTP or a
    recovery code when asked)."""

    def __init__(self, base_url: str, username: str, password: str = PASSWORD) -> None:
        self.browser = Browser(base_url)
        self.http = self.browser.http
        self.base = base_url
        self.username = username
        self.password = password
        self.totp: pyotp.TOTP | None = None
        self.recovery: list[str] = []
        self.signins = 0

    def close(self) -> None:
        self.browser.close()

    def walk(self, response: httpx.Response) -> httpx.Response:
        """Follow our redirects, signing in on the way, until a page or a redirect elsewhere."""
        for _ in range(12):
            if response.status_code in (302, 303, 307, 308):
                target = str(response.url.join(response.headers["location"]))
                if not target.startswith(self.base + "/"):
                    return response
                response = self.http.get(target)
            elif 'action="' in response.text and "/oauth2/v1/login\"" in response.text:
                self.signins += 1
                response = self.browser.login(response, self.username, self.password)
            elif "/oauth2/v1/login/factor" in response.text:
                response = self._factor(response)
            else:
                return response
        raise AssertionError("too many hops")

    def _factor(self, page: httpx.Response) -> httpx.Response:
        fields = form_fields(page.text)
        if self.recovery:
            data = {**fields, "method": "recovery", "code": self.recovery.pop()}
        else:
            assert self.totp is not None, "a second factor was asked for"
            data = {**fields, "method": "totp", "code": self.totp.now()}
        return self.http.post("/oauth2/v1/login/factor", data=data)

    def get(self, path: str) -> httpx.Response:
        return self.walk(self.http.get(path))

    def post(self, path: str, page: httpx.Response, **data: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": csrf(page), **data})


@pytest.fixture
def user(server: Server) -> str:
    return new_user(server, email="owner@example.com")


def demo_tokens(server: Server, account: Account, *, scope: str = "openid offline_access") -> dict[str, Any]:
    """The demo confidential app's tokens for the account's user, signed in through the same
    browser (so its session is this browser's)."""
    app = server.demo["confidential_app"]
    response = account.browser.sign_in_and_authorize(
        account.username, account.password, response_type="code", client_id=app["client_id"],
        redirect_uri=app["redirect_uri"], scope=scope, state="s")
    return exchange_code(server.base_url, app, code_from(response))


def refresh(server: Server, tokens: dict[str, Any]) -> httpx.Response:
    app = server.demo["confidential_app"]
    return httpx.post(f"{server.base_url}/oauth2/v1/token", auth=(app["client_id"], app["client_secret"]),
                      data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})


def introspect(server: Server, token: str) -> dict[str, Any]:
    app = server.demo["confidential_app"]
    response = httpx.post(f"{server.base_url}/oauth2/v1/introspect",
                          auth=(app["client_id"], app["client_secret"]), data={"token": token})
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- signing in ----------------------------------------------------------------------------------


def test_a_page_without_a_session_signs_in_through_the_authorization_endpoint(
    server: Server, user: str
) -> None:
    account = Account(server.base_url, user)
    try:
        first = account.http.get("/account/sessions")
        assert first.status_code == 303
        location = first.headers["location"]
        assert urlsplit(location).path == "/oauth2/v1/authorize"
        query = query_of(location)
        assert query["client_id"] == "tessera-account"
        assert query["redirect_uri"] == f"{server.base_url}/account/callback"
        assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
        assert "tessera_account_flow" in first.headers["set-cookie"]
        assert "HttpOnly" in first.headers["set-cookie"]

        page = account.walk(first)
        assert page.status_code == 200, page.text[:500]
        assert page.url.path == "/account/sessions"
        assert "Where you are signed in" in page.text and 'aria-current="page"' in page.text
        assert account.signins == 1
        # Signed in now: the pages answer at once.
        again = account.http.get("/account/")
        assert again.status_code == 200 and user in again.text
        assert "frame-ancestors 'none'" in again.headers["content-security-policy"]
    finally:
        account.close()


def test_the_callback_refuses_a_state_it_did_not_issue(server: Server, user: str) -> None:
    account = Account(server.base_url, user)
    try:
        account.get("/account/")
        forged = account.http.get("/account/callback", params={
            "code": "x" * 43, "state": "e30.AAAA", "iss": server.base_url})
        assert forged.status_code == 400 and "not started here" in forged.text
        wrong_iss = account.http.get("/account/callback", params={
            "code": "x", "state": "y", "iss": "https://evil.example"})
        assert wrong_iss.status_code == 400
        # A state of this server, but started in another browser (no verifier cookie there).
        other = Browser(server.base_url)
        try:
            started = other.http.get("/account/")
            state = query_of(started.headers["location"])["state"]
            stolen = account.http.get("/account/callback", params={
                "code": "x" * 43, "state": state, "iss": server.base_url})
            assert stolen.status_code == 400
        finally:
            other.close()
    finally:
        account.close()


# --- profile -------------------------------------------------------------------------------------


def test_the_profile_is_edited_and_a_forged_form_is_refused(server: Server, user: str) -> None:
    account = Account(server.base_url, user)
    try:
        page = account.get("/account/")
        assert 'value="owner@example.com"' in page.text
        saved = account.post("/account/profile", page, display_name="Ada Lovelace",
                             email="ada@example.com")
        assert saved.status_code == 303 and saved.headers["location"].endswith("?done=profile")
        shown = account.http.get(saved.headers["location"])
        assert "Ada Lovelace" in shown.text and 'value="ada@example.com"' in shown.text
        assert 'role="status"' in shown.text and "Your profile was saved." in shown.text
        users = server.cli_json("admin", "users", "list")
        mine = next(u for u in users if u["username"] == user)
        assert mine["email"] == "ada@example.com"
        assert mine["email_verified"] is False  # the administrator's address was; this is typed

        bad = account.post("/account/profile", page, display_name="", email="ada@example.com")
        assert bad.status_code == 400 and "1 to 200 characters" in bad.text
        bad_email = account.post("/account/profile", page, display_name="Ada", email="not-an-address")
        assert bad_email.status_code == 400 and 'role="alert"' in bad_email.text
        forged = account.http.post("/account/profile", data={
            "csrf_token": "0" * 64, "display_name": "Mallory", "email": ""})
        assert forged.status_code == 403
        missing = account.http.post("/account/profile", data={"display_name": "Mallory"})
        assert missing.status_code == 403
        assert "Mallory" not in account.http.get("/account/").text
    finally:
        account.close()


# --- password ------------------------------------------------------------------------------------


def test_changing_the_password_ends_the_other_sessions_and_the_apps_tokens(
    server: Server, user: str
) -> None:
    account, elsewhere = Account(server.base_url, user), Account(server.base_url, user)
    try:
        tokens = demo_tokens(server, elsewhere)
        assert elsewhere.get("/account/").status_code == 200
        page = account.get("/account/password")
        assert page.status_code == 200 and 'autocomplete="current-password"' in page.text

        wrong = account.post("/account/password", page, current_password="Not-My-Password-99",
                             new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
        assert wrong.status_code == 400 and "current password is not correct" in wrong.text
        mismatch = account.post("/account/password", page, current_password=PASSWORD,
                                new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD + "x")
        assert mismatch.status_code == 400 and "not the same" in mismatch.text
        weak = account.post("/account/password", page, current_password=PASSWORD,
                            new_password="short", new_password_again="short")
        assert weak.status_code == 400
        assert refresh(server, tokens).status_code == 200  # nothing changed yet

        changed = account.post("/account/password", page, current_password=PASSWORD,
                               new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
        assert changed.status_code == 303, changed.text[:500]
        assert "tessera_session=" in changed.headers.get("set-cookie", "")
        after = account.http.get(changed.headers["location"])
        assert after.status_code == 200 and "Your password was changed" in after.text

        # The other browser's session and the app's refresh token are gone.
        assert elsewhere.http.get("/account/").status_code == 303
        assert refresh(server, tokens).status_code == 400
        assert introspect(server, tokens["access_token"])["active"] is False
        # The new password signs in; the old one does not.
        fresh = Account(server.base_url, user, NEW_PASSWORD)
        try:
            assert fresh.get("/account/").status_code == 200
        finally:
            fresh.close()
    finally:
        account.close()
        elsewhere.close()


# --- sessions ------------------------------------------------------------------------------------


def test_the_sessions_are_listed_and_the_others_signed_out(server: Server, user: str) -> None:
    account, other, third = (Account(server.base_url, user) for _ in range(3))
    try:
        other.get("/account/")
        third.get("/account/")
        page = account.get("/account/sessions")
        assert page.text.count('class="acct-item"') == 3
        assert "This browser" in page.text and "Password" in page.text

        one = re.search(r'name="session" value="([A-Za-z0-9_-]{20,})"', page.text)
        assert one is not None
        ended = account.post("/account/sessions/end", page, session=one.group(1))
        assert ended.status_code == 303
        alive = [b.http.get("/account/").status_code for b in (other, third)]
        assert sorted(alive) == [200, 303]

        page = account.http.get("/account/sessions")
        all_others = account.post("/account/sessions/end", page, session="others")
        assert all_others.status_code == 303
        assert other.http.get("/account/").status_code == 303
        assert third.http.get("/account/").status_code == 303
        listed = account.http.get("/account/sessions")
        assert listed.text.count('class="acct-item"') == 1 and "signed in only here" in listed.text

        out = account.post("/account/sessions/end", listed, session="this")
        assert out.status_code == 200 and "signed out" in out.text
        assert account.http.get("/account/").status_code == 303
    finally:
        for b in (account, other, third):
            b.close()


# --- connected apps ------------------------------------------------------------------------------


def test_removing_an_apps_access_kills_its_tokens_everywhere(server: Server, user: str) -> None:
    account = Account(server.base_url, user)
    try:
        tokens = demo_tokens(server, account, scope="openid profile offline_access")
        app = server.demo["confidential_app"]
        page = account.get("/account/apps")
        assert "Integration client (demo)" in page.text
        assert "Stay connected" in page.text  # the consent page's words for offline_access
        assert "Your account" not in page.text.split("acct-list")[1]  # the pages' own app

        refused = account.post("/account/apps/remove", page, client_id="tessera-account")
        assert refused.status_code == 404
        removed = account.post("/account/apps/remove", page, client_id=app["client_id"])
        assert removed.status_code == 303
        assert "No app has access" in account.http.get("/account/apps").text
        assert refresh(server, tokens).status_code == 400
        assert introspect(server, tokens["access_token"])["active"] is False
        # The app asks for consent again.
        again = account.browser.authorize(response_type="code", client_id=app["client_id"],
                                          redirect_uri=app["redirect_uri"], scope="openid",
                                          state="s")
        assert again.status_code == 200 and 'value="allow"' in again.text
    finally:
        account.close()


# --- sign-in methods -----------------------------------------------------------------------------


def _add_totp(account: Account) -> list[str]:
    """Set up the authenticator app from the page's text key; the recovery codes shown."""
    setup = account.get("/account/security/totp")
    assert setup.status_code == 200 and "<svg" in setup.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text)
    assert secret is not None
    account.totp = pyotp.TOTP(secret.group(1))
    state = re.search(r'name="totp_state" value="([^"]+)"', setup.text)
    assert state is not None  # the secret travels sealed in the form, stored nowhere yet
    wrong = account.post("/account/security/totp", setup, code="000000", totp_state=state.group(1))
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    done = account.post(
        "/account/security/totp", setup, code=account.totp.now(), totp_state=state.group(1)
    )
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text
    codes = re.findall(r"<li><code>([^<]+)</code></li>", done.text)
    assert len(codes) == 10
    return codes


def test_an_authenticator_app_is_added_and_removed_and_codes_renewed(
    server: Server, user: str
) -> None:
    account = Account(server.base_url, user)
    try:
        before = account.get("/account/security")
        assert "You have no passkey yet" in before.text and 'id="totp-setup"' in before.text
        codes = _add_totp(account)
        page = account.http.get("/account/security")
        assert "10 of 10 unused" in page.text and 'id="totp-remove"' in page.text

        # A new browser signs in with the password and a recovery code (the second factor).
        other = Account(server.base_url, user)
        try:
            other.recovery = [codes[0]]
            assert other.get("/account/security").status_code == 200
            assert not other.recovery
        finally:
            other.close()
        page = account.http.get("/account/security")
        assert "9 of 10 unused" in page.text

        renewed = account.post("/account/security/recovery-codes", page)
        assert renewed.status_code == 200
        fresh_codes = re.findall(r"<li><code>([^<]+)</code></li>", renewed.text)
        assert len(fresh_codes) == 10 and not set(fresh_codes) & set(codes)
        assert "10 of 10 unused" in account.http.get("/account/security").text

        removed = account.post("/account/security/totp/remove", page)
        assert removed.status_code == 303
        page = account.http.get(removed.headers["location"])
        assert "Your authenticator app was removed." in page.text
        assert 'id="totp-setup"' in page.text and "come with your first" in page.text
    finally:
        account.close()


def test_a_sensitive_page_asks_for_a_fresh_sign_in_with_the_second_factor(
    server: Server, user: str
) -> None:
    account, earlier = Account(server.base_url, user), Account(server.base_url, user)
    try:
        assert earlier.get("/account/").status_code == 200  # a password-only session
        codes = _add_totp(account)
        # Now that the user holds a factor, that session must use it for a sensitive page.
        asked = earlier.http.get("/account/password")
        assert asked.status_code == 303
        query = query_of(asked.headers["location"])
        assert query["acr_values"] == "urn:tessera:acr:mfa" and "prompt" not in query
        earlier.recovery = [codes[1]]
        page = earlier.walk(asked)
        assert page.status_code == 200 and page.url.path == "/account/password"
        assert not earlier.recovery and earlier.signins == 1  # no password again: still fresh
        # The profile is not sensitive: no step-up there.
        assert earlier.http.get("/account/").status_code == 200
        # A forged form cannot remove the factor.
        forged = account.http.post("/account/security/totp/remove", data={"csrf_token": "x"})
        assert forged.status_code == 403
        assert 'id="totp-remove"' in account.http.get("/account/security").text
    finally:
        account.close()
        earlier.close()


def test_the_last_factor_cannot_be_removed_where_one_is_required(server: Server) -> None:
    name = "mfa" + secrets.token_hex(3)
    domain = create_domain(server, name, settings={"mfa_policy": "required"})  # type: ignore[dict-item]
    issuer = domain["issuer"]
    user = new_user(server, domain=name)
    account = Account(issuer, user)
    try:
        # The sign-in leads to enrollment first (the domain requires a factor).
        enroll = account.walk(account.http.get(issuer + "/account/security"))
        assert enroll.status_code == 200 and "/oauth2/v1/login/enroll" in enroll.text
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enroll.text)
        assert secret is not None
        account.totp = pyotp.TOTP(secret.group(1))
        fields = form_fields(enroll.text)
        codes_page = account.http.post(issuer + "/oauth2/v1/login/enroll", data={
            **fields, "action": "totp", "passkey_only": "0", "code": account.totp.now()})
        assert codes_page.status_code == 200 and 'id="recovery-codes"' in codes_page.text
        href = re.search(r'href="([^"]+)"[^>]*id="continue"', codes_page.text)
        assert href is not None
        page = account.walk(account.http.get(str(codes_page.url.join(href.group(1).replace("&amp;", "&")))))
        assert page.status_code == 200 and "Sign-in methods" in page.text, page.text[:600]

        refused = account.http.post(issuer + "/account/security/totp/remove",
                                    data={"csrf_token": csrf(page)})
        assert refused.status_code == 400
        assert "last second factor" in refused.text
        assert 'id="totp-remove"' in account.http.get(issuer + "/account/security").text
    finally:
        account.close()


def test_password_reset_is_off_without_smtp(server: Server) -> None:
    off = httpx.get(f"{server.base_url}/account/reset")
    assert off.status_code == 404
    assert "not available" in off.text and "administrator" in off.text
    assert httpx.post(f"{server.base_url}/account/reset", data={"username": "alice"}).status_code == 404


# --- passkeys (WebAuthn needs a host name: a server named localhost) ------------------------------

@pytest.fixture(scope="module")
def localhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with localhost_server(tmp_path_factory.mktemp("passkeys")) as srv:
        yield srv


def test_a_passkey_is_added_renamed_and_removed(localhost: Server) -> None:
    user = new_user(localhost)
    origin = f"http://localhost:{localhost.port}"
    account = Account(origin, user)
    authenticator = SoftAuthenticator()
    try:
        page = account.get("/account/security")
        options = page_options(page.text)
        assert options is not None and "script-src 'self'" in page.headers["content-security-policy"]
        state = form_fields(page.text.split('id="passkey-form"')[1])["state"]
        malformed = account.post("/account/security/passkeys", page, state=state,
                                 credential="{not json", name="Broken")
        assert malformed.status_code == 400 and 'role="alert"' in malformed.text
        assert "You have no passkey yet" in malformed.text  # nothing half-enrolled

        page = account.http.get("/account/security")
        options = page_options(page.text)
        assert options is not None
        state = form_fields(page.text.split('id="passkey-form"')[1])["state"]
        credential = authenticator.create(options, origin)
        added = account.post("/account/security/passkeys", page, state=state,
                             credential=credential, name="Laptop")
        assert added.status_code == 200 and 'id="recovery-codes"' in added.text  # the first factor
        replayed = account.post("/account/security/passkeys", page, state=state,
                                credential=credential, name="Again")
        assert replayed.status_code == 400

        listed = account.http.get("/account/security")
        assert "Laptop" in listed.text and "Kept on one device or key" in listed.text
        credential_id = json.loads(credential)["id"]
        renamed = account.post("/account/security/passkeys/rename", listed,
                               credential_id=credential_id, name="Work laptop")
        assert renamed.status_code == 303
        assert "Work laptop" in account.http.get("/account/security").text
        unknown = account.post("/account/security/passkeys/remove", listed, credential_id="nope")
        assert unknown.status_code == 400 and "not registered" in unknown.text

        removed = account.post("/account/security/passkeys/remove", listed,
                               credential_id=credential_id)
        assert removed.status_code == 303
        after = account.http.get(removed.headers["location"])
        assert "Your passkey was removed." in after.text and "You have no passkey yet" in after.text
    finally:
        account.close()
