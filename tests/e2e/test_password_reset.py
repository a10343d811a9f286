"""Password reset by e-mail, over HTTP against the real server and a real SMTP server (aiosmtpd)
started by the test (issue 15, "Must show"): the link works once, an expired link is refused,
the reset ends the user's sessions and refresh tokens, an unknown user gets the same page and no
mail, forms from elsewhere are refused, and account changes are mailed to the user."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
import pytest

from tessera.oauth.interaction.password_reset import RESET_KEY_PURPOSE, issue_reset_token
from tests.e2e.test_account_pages import (
    NEW_PASSWORD,
    PASSWORD,
    Account,
    csrf,
    demo_tokens,
    introspect,
    new_user,
    refresh,
)
from tests.support.flow import Browser
from tests.support.server import Server, running_server
from tests.support.smtp import SmtpServer, first_link, smtp_server

SENT = "If an account matches, we sent a link"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as mail:
        yield mail


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[Server]:
    """The demo identity domain, mailing through the test's SMTP server."""
    env = {
        "TESSERA_SMTP_HOST": smtp.host,
        "TESSERA_SMTP_PORT": str(smtp.port),
        "TESSERA_SMTP_FROM": "Tessera <no-reply@example.com>",
        "TESSERA_SMTP_SECURITY": "none",
    }
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=env) as srv:
        yield srv


def to(address: str) -> object:
    def match(message: EmailMessage) -> bool:
        return address in str(message["To"])

    return match


def ask_reset(browser: Browser, username: str) -> httpx.Response:
    page = browser.http.get("/account/reset")
    assert page.status_code == 200 and 'autocomplete="username"' in page.text
    return browser.http.post("/account/reset", data={"csrf_token": csrf(page), "username": username})


def set_password(browser: Browser, link: str, password: str) -> httpx.Response:
    parts = urlsplit(link)
    page = browser.http.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.text[:600]
    token = parts.query.removeprefix("token=")
    return browser.http.post("/account/reset/confirm", data={
        "csrf_token": csrf(page), "token": token,
        "new_password": password, "new_password_again": password})


def test_a_reset_link_works_once_and_ends_every_session_and_refresh_token(
    server: Server, smtp: SmtpServer
) -> None:
    address = f"reset-{secrets.token_hex(3)}@example.com"
    user = new_user(server, email=address)
    signed_in = Account(server.base_url, user)
    browser = Browser(server.base_url)
    try:
        tokens = demo_tokens(server, signed_in)
        assert signed_in.get("/account/").status_code == 200

        answer = ask_reset(browser, user)
        assert answer.status_code == 200 and SENT in answer.text
        [mail] = smtp.wait_for(1, to(address))  # type: ignore[arg-type]
        link = first_link(mail)
        assert link.startswith(f"{server.base_url}/account/reset/confirm?token=")
        assert "Reset your" in str(mail["Subject"])

        mismatch = browser.http.post("/account/reset/confirm", data={
            "csrf_token": csrf(browser.http.get(urlsplit(link).path + "?" + urlsplit(link).query)),
            "token": urlsplit(link).query.removeprefix("token="),
            "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD + "!"})
        assert mismatch.status_code == 400 and "not the same" in mismatch.text

        done = set_password(browser, link, NEW_PASSWORD)
        assert done.status_code == 200 and 'id="reset-done"' in done.text

        # Everything the old password opened has ended.
        assert signed_in.http.get("/account/").status_code == 303
        assert refresh(server, tokens).status_code == 400
        assert introspect(server, tokens["access_token"])["active"] is False
        # The link works once.
        again = browser.http.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert again.status_code == 400 and "used already" in again.text
        # The new password signs in; a notice of the change was mailed.
        fresh = Account(server.base_url, user, NEW_PASSWORD)
        try:
            assert fresh.get("/account/").status_code == 200
        finally:
            fresh.close()
        notices = smtp.wait_for(2, to(address))  # type: ignore[arg-type]
        assert any("account changed" in str(m["Subject"]) for m in notices)
    finally:
        signed_in.close()
        browser.close()


def test_an_unknown_user_gets_the_same_answer_and_no_mail(server: Server, smtp: SmtpServer) -> None:
    browser = Browser(server.base_url)
    try:
        before = len(smtp.messages)
        unknown = ask_reset(browser, "nobody-" + secrets.token_hex(4))
        address = f"known-{secrets.token_hex(3)}@example.com"
        known_user = new_user(server, email=address)
        known = ask_reset(browser, known_user)
        assert unknown.status_code == known.status_code == 200
        assert SENT in unknown.text and SENT in known.text
        smtp.wait_for(1, to(address))  # type: ignore[arg-type]
        time.sleep(0.5)
        assert len(smtp.messages) == before + 1
        # A user without an e-mail address: the same answer.
        bare = new_user(server)
        assert SENT in ask_reset(browser, bare).text
    finally:
        browser.close()


def test_an_expired_or_forged_link_is_refused(server: Server, smtp: SmtpServer) -> None:
    user = new_user(server, email="expired@example.com")
    with server.store_context() as ctx:
        stored = ctx.store.users.get_by_username(user)
        assert stored is not None
        # A link the server would have mailed an hour ago, for 30 minutes.
        old = issue_reset_token(ctx.subkey(RESET_KEY_PURPOSE), stored, ctx.clock() - timedelta(hours=1), 1800)
    browser = Browser(server.base_url)
    try:
        expired = browser.http.get("/account/reset/confirm", params={"token": old})
        assert expired.status_code == 400 and "expired" in expired.text
        posted = browser.http.post("/account/reset/confirm", data={
            "csrf_token": csrf(browser.http.get("/account/reset")), "token": old,
            "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD})
        assert posted.status_code in (400, 403)
        forged = browser.http.get("/account/reset/confirm", params={"token": old[:-4] + "AAAA"})
        assert forged.status_code == 400 and "not valid" in forged.text
        assert browser.http.get("/account/reset/confirm", params={"token": "x" * 5000}).status_code == 400
        # The password is unchanged.
        still = Account(server.base_url, user, PASSWORD)
        try:
            assert still.get("/account/").status_code == 200
        finally:
            still.close()
    finally:
        browser.close()


def test_reset_forms_from_elsewhere_are_refused(server: Server) -> None:
    browser = Browser(server.base_url)
    try:
        no_token = browser.http.post("/account/reset", data={"username": "alice"})
        assert no_token.status_code == 403
        browser.http.get("/account/reset")  # the browser-id cookie is set now
        forged = browser.http.post("/account/reset", data={"username": "alice", "csrf_token": "0" * 64})
        assert forged.status_code == 403
        confirm = browser.http.post("/account/reset/confirm", data={
            "token": "x", "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD})
        assert confirm.status_code == 403
    finally:
        browser.close()


def test_account_changes_are_mailed_to_the_user(server: Server, smtp: SmtpServer) -> None:
    address = f"notice-{secrets.token_hex(3)}@example.com"
    user = new_user(server, email=address)
    account = Account(server.base_url, user)
    try:
        page = account.get("/account/password")
        changed = account.post("/account/password", page, current_password=PASSWORD,
                               new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
        assert changed.status_code == 303
        [notice] = smtp.wait_for(1, to(address))  # type: ignore[arg-type]
        assert "password was changed" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        account.close()


def test_signing_out_the_other_sessions_is_mailed_to_the_user(
    server: Server, smtp: SmtpServer
) -> None:
    address = f"sessions-{secrets.token_hex(3)}@example.com"
    user = new_user(server, email=address)
    elsewhere, account = Account(server.base_url, user), Account(server.base_url, user)
    try:
        assert elsewhere.get("/account/").status_code == 200  # a second signed-in session
        page = account.get("/account/sessions")
        ended = account.post("/account/sessions/end", page, session="others")
        assert ended.status_code == 303
        [notice] = smtp.wait_for(1, to(address))  # type: ignore[arg-type]
        assert "other sessions were signed out" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert elsewhere.http.get("/account/").status_code == 303  # that session ended
    finally:
        account.close()
        elsewhere.close()
