"""Second factors in the authorization flow, end to end over HTTP (docs/mfa.md).

Each test runs in an identity domain of its own with the policy it needs. An authenticator app
(RFC 6238) is enrolled from the page's text fallback and its codes computed with `pyotp`, like a
phone would; passkeys (W3C WebAuthn) come from a software authenticator that reads the options
our pages carry and answers for the server's origin (`http://localhost:PORT`: WebAuthn takes a
host name, never an address, as RP ID). The tokens say how the user signed in (`acr`, `amr`:
RFC 8176, RFC 9068 §2.2.1); the errors are OIDC's (`unmet_authentication_requirements`,
`interaction_required`).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.domains import create_domain, domain_cli
from tests.support.flow import Browser, Pkce, form_fields, query_of
from tests.support.passkeys import ACR_MFA, ACR_PASSWORD, ACR_PHR, localhost_server, page_options
from tests.support.server import Server
from tests.support.soft_authenticator import SoftAuthenticator

REDIRECT_URI = "http://127.0.0.1:8080/callback"
PASSWORD = "Quartz-Meadow-Passw0rd-2026"
_names = itertools.count(1)
_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
_CODES = re.compile(r"<li><code>([0-9a-z-]{14})</code></li>")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Named `localhost`, so that passkeys have an RP ID."""
    with localhost_server(tmp_path_factory.mktemp("mfa")) as srv:
        yield srv


@dataclass
class Site:
    """A domain with one app and one user (carol), as the tests drive it."""

    server: Server
    name: str
    issuer: str
    app: dict[str, Any]

    @property
    def origin(self) -> str:
        return self.issuer.split("/domains/")[0]

    def browser(self) -> Browser:
        return Browser(self.issuer)

    def params(self, pkce: Pkce, **extra: str) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.app["client_id"],
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": "st",
            "nonce": "n-1",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            **extra,
        }

    def tokens(self, code: str, pkce: Pkce) -> dict[str, Any]:
        response = httpx.post(
            f"{self.issuer}/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": pkce.verifier,
            },
            auth=(self.app["client_id"], self.app["client_secret"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def claims(self, token: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(httpx.get(f"{self.issuer}/oauth2/v1/keys").json())
        return dict(jwt.decode(token, keys).claims)


def site(server: Server, policy: str | None = None) -> Site:
    name = f"mfa{next(_names)}"
    settings = {"mfa_policy": policy} if policy else None
    domain = create_domain(server, name, settings=settings)  # type: ignore[arg-type]
    domain_cli(server, name, "users", "create", "carol", "--password-stdin", input=PASSWORD + "\n")
    app = domain_cli(
        server,
        name,
        "apps",
        "create",
        "--name",
        "Portal",
        "--redirect-uri",
        REDIRECT_URI,
        "--grant-type",
        "authorization_code",
        "--allow-scope",
        "openid",
        "--allow-scope",
        "profile",
    )
    return Site(server, name, domain["issuer"], app)


def sign_in(b: Browser, s: Site, pkce: Pkce, **extra: str) -> httpx.Response:
    """authorize → the password → back at the authorization endpoint (the next page)."""
    page = b.authorize(**s.params(pkce, **extra))
    assert 'name="password"' in page.text, page.text[:300]
    return b.follow(b.login(page, "carol", PASSWORD))


def post_form(b: Browser, page: httpx.Response, action: str, form_id: str, **values: str) -> httpx.Response:
    """Submit the form `form_id` of `page` with `values`."""
    html = page.text
    start = html.index(f'id="{form_id}"')
    form = html[html.rindex("<form", 0, start) : html.index("</form>", start)]
    return b.http.post(action, data={**form_fields(form), **values})


def consent_and_code(b: Browser, response: httpx.Response) -> str:
    """Follow to the authorization endpoint, consent, and return the app's code."""
    if response.status_code == 303 and "/oauth2/v1/authorize" in response.headers["location"]:
        response = b.follow(response)
    if response.status_code == 200 and 'value="allow"' in response.text:
        response = b.consent(response)
    assert response.status_code in (302, 303), response.text[:800]
    query = query_of(response.headers["location"])
    assert "code" in query, query
    return query["code"]


def enroll_totp(b: Browser, issuer: str, page: httpx.Response) -> tuple[pyotp.TOTP, list[str], httpx.Response]:
    """On the enrollment page of the domain `issuer`: read the key like a phone would, confirm
    a code; the app, the recovery codes shown once, and the response after them."""
    secret = _SECRET.search(page.text)
    assert secret, page.text[:800]
    assert "<svg" in page.text and 'id="totp-qr"' in page.text  # the QR code is ours, inline
    app = pyotp.TOTP(secret.group(1))
    done = post_form(b, page, f"{issuer}/oauth2/v1/login/enroll", "totp-form", code=app.now())
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text, done.text[:800]
    codes = _CODES.findall(done.text)
    return app, codes, done


def continue_after_codes(b: Browser, page: httpx.Response) -> httpx.Response:
    """The page's "continue" link: a path on this host (with the domain's prefix)."""
    href = re.search(r'href="([^"]+)" id="continue"', page.text)
    assert href, page.text[:800]
    return b.http.get(str(page.url.join(href.group(1).replace("&amp;", "&"))))


def options_of(page: httpx.Response) -> str:
    found = page_options(page.text)
    assert found, page.text[:800]
    return found


# --- policies and enrollment --------------------------------------------------------------------


def test_a_required_policy_leads_to_enrollment_then_tokens_say_mfa(server: Server) -> None:
    s, pkce = site(server, "required"), Pkce()
    with s.browser() as b:
        page = sign_in(b, s, pkce)
        assert page.status_code == 200 and "Set up a second factor" in page.text
        # No way around it: the authorization endpoint shows the same page again.
        again = b.authorize(**s.params(pkce))
        assert "Set up a second factor" in again.text and "code=" not in again.headers.get(
            "location", ""
        )
        wrong = post_form(b, page, f"{s.issuer}/oauth2/v1/login/enroll", "totp-form", code="000000")
        assert wrong.status_code == 400 and "not valid" in wrong.text
        _app, codes, done = enroll_totp(b, s.issuer, b.authorize(**s.params(pkce)))
        assert len(codes) == 10 and len(set(codes)) == 10
        code = consent_and_code(b, continue_after_codes(b, done))
    tokens = s.tokens(code, pkce)
    for token in (tokens["access_token"], tokens["id_token"]):
        claims = s.claims(token)
        assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]
        assert isinstance(claims["auth_time"], int)


@pytest.fixture
def enrolled(server: Server) -> tuple[Site, pyotp.TOTP, list[str]]:
    """A domain requiring a second factor, with carol's authenticator app and codes."""
    s, pkce = site(server, "required"), Pkce()
    with s.browser() as b:
        app, codes, _ = enroll_totp(b, s.issuer, sign_in(b, s, pkce))
    return s, app, codes


def test_a_code_is_accepted_once_and_the_next_one_works(
    enrolled: tuple[Site, pyotp.TOTP, list[str]],
) -> None:
    s, app, _ = enrolled
    pkce = Pkce()
    with s.browser() as b:
        page = sign_in(b, s, pkce)
        assert "Confirm it is you" in page.text and 'name="code"' in page.text
        action = f"{s.issuer}/oauth2/v1/login/factor"
        # The code used to enroll a moment ago (this step, or the previous one).
        used = post_form(b, page, action, "totp-form", code=app.now())
        replayed = post_form(b, page, action, "totp-form", code=app.now())
        assert replayed.status_code == 401 and "not valid" in replayed.text
        # A step ahead is within the window (RFC 6238 §5.2) and not used yet.
        later = app.at(time.time() + 30)
        ok = used if used.status_code == 303 else post_form(b, page, action, "totp-form", code=later)
        code = consent_and_code(b, ok)
    claims = s.claims(s.tokens(code, pkce)["access_token"])
    assert claims["acr"] == ACR_MFA


def test_a_recovery_code_works_once(enrolled: tuple[Site, pyotp.TOTP, list[str]]) -> None:
    s, _, codes = enrolled
    action = f"{s.issuer}/oauth2/v1/login/factor"
    pkce = Pkce()
    with s.browser() as b:
        page = sign_in(b, s, pkce)
        assert "Use a recovery code" in page.text
        ok = post_form(b, page, action, "recovery-form", code=codes[0].upper())
        code = consent_and_code(b, ok)
    assert s.claims(s.tokens(code, pkce)["id_token"])["amr"] == ["pwd", "otp", "mfa"]
    with s.browser() as b:
        page = sign_in(b, s, Pkce())
        again = post_form(b, page, action, "recovery-form", code=codes[0])
        assert again.status_code == 401 and "not valid or was used" in again.text


@pytest.mark.parametrize("again", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_fresh_sign_in_asks_the_password_and_the_factor_again(
    enrolled: tuple[Site, pyotp.TOTP, list[str]], again: dict[str, str]
) -> None:
    """`prompt=login` and `max_age` start a new session: the password again, then the second
    factor again (a password alone does not keep the old session's `otp`), and the tokens say
    when and how."""
    s, _, codes = enrolled
    action = f"{s.issuer}/oauth2/v1/login/factor"
    with s.browser() as b:
        pkce = Pkce()
        first = post_form(b, sign_in(b, s, pkce), action, "recovery-form", code=codes[1])
        before = s.claims(s.tokens(consent_and_code(b, first), pkce)["id_token"])
        time.sleep(1.1)  # auth_time counts whole seconds
        pkce = Pkce()
        page = b.authorize(**s.params(pkce, **again))
        assert 'name="password"' in page.text  # the password again
        factor = b.follow(b.login(page, "carol", PASSWORD))
        assert "Confirm it is you" in factor.text  # and the factor again
        done = post_form(b, factor, action, "recovery-form", code=codes[2])
        after = s.claims(s.tokens(consent_and_code(b, done), pkce)["id_token"])
    assert after["auth_time"] > before["auth_time"]
    assert before["amr"] == after["amr"] == ["pwd", "otp", "mfa"]


def test_wrong_codes_are_throttled_like_passwords(
    enrolled: tuple[Site, pyotp.TOTP, list[str]],
) -> None:
    s, app, _ = enrolled
    action = f"{s.issuer}/oauth2/v1/login/factor"
    with s.browser() as b:
        page = sign_in(b, s, Pkce())
        statuses = [
            post_form(b, page, action, "totp-form", code=f"{n:06d}").status_code
            for n in range(60)
        ]
        assert 429 in statuses, statuses
        locked = post_form(b, page, action, "totp-form", code=app.now())
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def test_optional_asks_for_nothing_until_the_app_asks_for_mfa(server: Server) -> None:
    s = site(server)
    with s.browser() as b:
        pkce = Pkce()
        code = consent_and_code(b, sign_in(b, s, pkce))
        assert s.claims(s.tokens(code, pkce)["id_token"])["acr"] == ACR_PASSWORD
        # The same session, asked for more: lead to enroll (the policy lets users hold one).
        stepped = b.authorize(**s.params(Pkce(), acr_values=ACR_MFA))
        assert stepped.status_code == 200 and "Set up a second factor" in stepped.text


def test_off_cannot_meet_a_request_for_mfa(server: Server) -> None:
    s = site(server, "off")
    with s.browser() as b:
        pkce = Pkce()
        consent_and_code(b, sign_in(b, s, pkce))
        refused = b.authorize(**s.params(pkce, acr_values=ACR_MFA))
        assert refused.status_code == 302
        query = query_of(refused.headers["location"])
        assert query["error"] == "unmet_authentication_requirements" and query["state"] == "st"


def test_an_essential_acr_claim_is_honoured(enrolled: tuple[Site, pyotp.TOTP, list[str]]) -> None:
    s, _, _ = enrolled
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:unknown"]}}})
    with s.browser() as b:
        response = b.authorize(**s.params(Pkce(), claims=claims))
        assert response.status_code == 200  # the sign-in comes first
        page = b.follow(b.login(response, "carol", PASSWORD))
        query = query_of(page.headers["location"])
        assert query["error"] == "unmet_authentication_requirements"
        bad = b.authorize(**s.params(Pkce(), claims="[1"))
        assert query_of(bad.headers["location"])["error"] == "invalid_request"
        deep = b.authorize(**s.params(Pkce(), claims="[" * 1500))  # the parser's stack
        assert query_of(deep.headers["location"])["error"] == "invalid_request"


def test_a_consent_form_cannot_carry_a_request_that_needs_more(server: Server) -> None:
    """The consent page of one request, posted with another request's `authz`: the other is
    decided again, so its level is not skipped (no code for a password-only session)."""
    s = site(server, "off")
    with s.browser() as b:
        page = sign_in(b, s, Pkce())
        assert 'value="allow"' in page.text
        fields = form_fields(page.text)
        stronger = s.params(Pkce(), acr_values=ACR_MFA)
        fields["authz"] = "&".join(f"{k}={v}" for k, v in stronger.items())
        answer = b.http.post(f"{s.issuer}/oauth2/v1/consent", data={**fields, "decision": "allow"})
        query = query_of(answer.headers["location"])
        assert "code" not in query and query["error"] == "unmet_authentication_requirements"


def test_an_authenticator_app_being_set_up_is_this_sessions_alone(server: Server) -> None:
    """Someone with the password alone cannot plant a secret for the user to confirm: each
    session's set-up page has its own secret, and one session's form does not work in another."""
    s = site(server, "required")
    with s.browser() as attacker, s.browser() as owner:
        planted = sign_in(attacker, s, Pkce())
        shown = sign_in(owner, s, Pkce())
        secrets = [_SECRET.search(p.text) for p in (planted, shown)]
        assert secrets[0] and secrets[1] and secrets[0].group(1) != secrets[1].group(1)
        code = pyotp.TOTP(secrets[0].group(1)).now()
        moved = {**form_fields(shown.text.split('id="totp-form"')[1]), "code": code}
        moved["totp_state"] = form_fields(planted.text.split('id="totp-form"')[1])["totp_state"]
        refused = owner.http.post(f"{s.issuer}/oauth2/v1/login/enroll", data=moved)
        assert refused.status_code == 400 and "expired or is not yours" in refused.text


def test_the_account_pages_need_the_factor_the_sign_in_needs(
    enrolled: tuple[Site, pyotp.TOTP, list[str]],
) -> None:
    s, _, _ = enrolled
    with s.browser() as b:
        sign_in(b, s, Pkce())  # the password: the second-factor page is next
        account = b.http.get(f"{s.issuer}/account/")
        assert account.status_code == 303
        assert query_of(account.headers["location"])["acr_values"] == ACR_MFA
        sessions = b.http.get(f"{s.issuer}/account/sessions")
        assert sessions.status_code == 303  # to finish the sign-in, not the list
        assert query_of(sessions.headers["location"])["acr_values"] == ACR_MFA


def test_prompt_none_needing_a_factor_is_interaction_required(
    enrolled: tuple[Site, pyotp.TOTP, list[str]],
) -> None:
    s, _, _ = enrolled
    with s.browser() as b:
        sign_in(b, s, Pkce())  # password only: the factor page
        response = b.authorize(**s.params(Pkce(), prompt="none"))
        assert query_of(response.headers["location"])["error"] == "interaction_required"


# --- passkeys -------------------------------------------------------------------------------------


def register_passkey(b: Browser, s: Site, authn: SoftAuthenticator, page: httpx.Response) -> httpx.Response:
    """Create a passkey on the enrollment page and post it."""
    assert "Add a passkey" in page.text or "Create a passkey" in page.text, page.text[:500]
    created = authn.create(options_of(page), s.origin)
    return post_form(
        b, page, f"{s.issuer}/oauth2/v1/login/enroll", "passkey-form", credential=created, name="Laptop"
    )


def test_a_passkey_is_enrolled_when_phishing_resistance_is_asked_and_signs_in_alone(
    server: Server,
) -> None:
    s, authn = site(server), SoftAuthenticator()
    with s.browser() as b:
        pkce = Pkce()
        page = sign_in(b, s, pkce, acr_values=ACR_PHR)
        done = register_passkey(b, s, authn, page)
        assert 'id="recovery-codes"' in done.text, done.text[:800]
        code = consent_and_code(b, continue_after_codes(b, done))
    claims = s.claims(s.tokens(code, pkce)["access_token"])
    assert claims["acr"] == ACR_PHR and claims["amr"] == ["pwd", "hwk", "mfa"]

    # Passwordless: the sign-in page's button, no username typed.
    with s.browser() as b:
        pkce = Pkce()
        login = b.authorize(**s.params(pkce))
        asserted = authn.get(options_of(login), s.origin)
        signed_in = post_form(
            b, login, f"{s.issuer}/oauth2/v1/login/passkey", "passkey-form", credential=asserted
        )
        assert signed_in.status_code == 303, signed_in.text[:800]
        code = consent_and_code(b, b.follow(signed_in))
    claims = s.claims(s.tokens(code, pkce)["id_token"])
    assert claims["acr"] == ACR_PHR and claims["amr"] == ["hwk", "user", "mfa"]


@pytest.fixture
def with_passkey(server: Server) -> tuple[Site, SoftAuthenticator]:
    s, authn = site(server), SoftAuthenticator()
    with s.browser() as b:
        register_passkey(b, s, authn, sign_in(b, s, Pkce(), acr_values=ACR_PHR))
    return s, authn


def passwordless(s: Site, b: Browser, authn: SoftAuthenticator) -> httpx.Response:
    """The sign-in page's passkey button, answered by `authn`."""
    login = b.authorize(**s.params(Pkce()))
    credential = authn.get(options_of(login), s.origin)
    return post_form(
        b, login, f"{s.issuer}/oauth2/v1/login/passkey", "passkey-form", credential=credential
    )


def test_bad_passkey_answers_are_refused_with_a_clear_page(
    with_passkey: tuple[Site, SoftAuthenticator],
) -> None:
    s, authn = with_passkey
    with s.browser() as b:
        login = b.authorize(**s.params(Pkce()))
        options = options_of(login)
        cases = {
            "malformed": "{not json",
            "wrong origin": authn.get(options, "http://evil.test"),
            "wrong RP ID": authn.get(options, s.origin, rp_id="evil.test"),
            "tampered": authn.get(options, s.origin, tamper_signature=True),
            "unknown credential": _unknown_answer(options, s.origin),
        }
        for label, credential in cases.items():
            refused = post_form(
                b, login, f"{s.issuer}/oauth2/v1/login/passkey", "passkey-form", credential=credential
            )
            assert refused.status_code in (401, 403), (label, refused.status_code)
            assert 'id="form-error"' in refused.text, label
            assert "Traceback" not in refused.text


def test_a_passkey_answer_naming_another_user_is_refused(
    with_passkey: tuple[Site, SoftAuthenticator],
) -> None:
    """W3C WebAuthn §7.2 step 6: the user handle must be the credential's owner."""
    s, authn = with_passkey
    credential = next(iter(authn.credentials.values()))
    credential.user_handle = b"someone-else"
    with s.browser() as b:
        refused = passwordless(s, b, authn)
    assert refused.status_code == 401 and "not registered for this account" in refused.text


def _unknown_answer(request_options: str, origin: str) -> str:
    """A valid-looking answer to the request from a passkey the server never registered."""
    other = SoftAuthenticator()
    request = json.loads(request_options)
    creation = {
        "rp": {"id": request["rpId"], "name": "x"},
        "user": {"id": "dXNlcg", "name": "x", "displayName": "x"},
        "challenge": request["challenge"],
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }
    other.create(json.dumps(creation), origin)
    return other.get(request_options, origin)


def test_a_cloned_passkey_is_refused_and_a_replayed_answer_too(
    with_passkey: tuple[Site, SoftAuthenticator],
) -> None:
    s, authn = with_passkey
    with s.browser() as b:
        login = b.authorize(**s.params(Pkce()))
        answer = authn.get(options_of(login), s.origin)
        action = f"{s.issuer}/oauth2/v1/login/passkey"
        assert post_form(b, login, action, "passkey-form", credential=answer).status_code == 303
        replay = post_form(b, login, action, "passkey-form", credential=answer)
        assert replay.status_code == 401 and "used already" in replay.text
    credential_id = next(iter(authn.credentials))
    authn.reset_counter(credential_id, 0)
    with s.browser() as b:
        cloned = passwordless(s, b, authn)
        assert cloned.status_code == 401 and "copied" in cloned.text


def test_discovery_names_the_levels(server: Server) -> None:
    doc = httpx.get(f"{server.issuer}/.well-known/openid-configuration").json()
    assert doc["acr_values_supported"] == [ACR_PASSWORD, ACR_MFA, ACR_PHR]
    assert {"acr", "amr"} <= set(doc["claims_supported"])
    assert doc["claims_parameter_supported"] is True
