"""Strong authentication in real headless Chromium (docs/mfa.md): passkeys made and used by
Chromium's own virtual authenticator (the DevTools protocol's `WebAuthn` domain, through a
Playwright CDP session), an authenticator app enrolled from the QR page and answered by
`pyotp` as a phone would, recovery codes, a required policy, and `tessera call` stepping up
when an API asks for the multi-factor level (RFC 9470).

The identity domain is named `localhost` (WebAuthn takes a host name, never an address, as RP
ID; `http://localhost` is a secure context). The apps' redirect URI is answered by Playwright
(`page.route`), which stands for the app.

Screenshots of the pages (`mfa-*.png`) go to the server's data dir; to refresh the README's
pictures, name their directory (relative to the repository) in `TESSERA_SCREENSHOTS`:

    TESSERA_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser/test_strong_authentication_browser.py
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
import segno
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import CDPSession, Page, Route
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as ApiRoute

from tessera.manage.demo import DEMO_SCOPE
from tessera.resource import TokenValidator
from tessera.resource.starlette import BearerBackend, TokenUser, bearer_error_response, requires
from tests.browser.support import ROOT, LoginProcess, client_env, new_page, tessera
from tests.support.domains import create_domain, domain_cli
from tests.support.flow import Pkce
from tests.support.passkeys import ACR_MFA, ACR_PASSWORD, ACR_PHR, localhost_server
from tests.support.server import Server, free_port

PASSWORD = "Quartz-Meadow-Passw0rd-2026"
LABEL = "Example Corp"  # the domains' display name: the issuer label of the QR code
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Named `localhost`, so that passkeys have an RP ID."""
    with localhost_server(tmp_path_factory.mktemp("mfa-browser")) as srv:
        yield srv


def screenshot(page: Page, server: Server, name: str) -> None:
    """Full page, into the data dir and, when `TESSERA_SCREENSHOTS` names a directory (the
    README's pictures: docs/screenshots), there too."""
    targets = [server.data_dir]
    if os.environ.get("TESSERA_SCREENSHOTS"):
        targets.append(ROOT / os.environ["TESSERA_SCREENSHOTS"])
    for directory in targets:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / name), full_page=True)


# --- a domain with an app, as a browser reaches it ---------------------------------------------


@dataclass
class Site:
    """A domain with one confidential app and one user, carol."""

    issuer: str
    app: dict[str, Any]
    redirect_uri: str
    name: str

    def authorize_url(self, pkce: Pkce, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.app["client_id"],
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile",
            "state": "st",
            "nonce": "n-1",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.issuer}/oauth2/v1/authorize?{urlencode(params)}"

    def claims(self, code: str, pkce: Pkce) -> dict[str, Any]:
        """Redeem `code`; the access token's claims, checked against the ID token's."""
        response = httpx.post(
            f"{self.issuer}/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": pkce.verifier,
            },
            auth=(self.app["client_id"], self.app["client_secret"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        access = verified(self.issuer, tokens["access_token"])
        id_token = verified(self.issuer, tokens["id_token"])
        for claim in ("acr", "amr", "auth_time"):
            assert access[claim] == id_token[claim], claim
        return access


def verified(issuer: str, token: str) -> dict[str, Any]:
    """The claims of a JWT signed by `issuer`'s keys."""
    keys = KeySet.import_key_set(httpx.get(f"{issuer}/oauth2/v1/keys").json())
    return dict(jwt.decode(token, keys).claims)


def new_site(server: Server, policy: str = "optional") -> Site:
    name = f"mfab{next(_names)}"
    settings: Any = {"mfa_policy": policy}
    created = create_domain(server, name, display_name=LABEL, settings=settings)
    domain_cli(server, name, "users", "create", "carol", "--password-stdin", input=PASSWORD + "\n")
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"  # nothing listens: page.route
    app = domain_cli(
        server,
        name,
        "apps",
        "create",
        "--name",
        "Portal",
        "--redirect-uri",
        redirect_uri,
        "--grant-type",
        "authorization_code",
        "--allow-scope",
        "openid",
        "--allow-scope",
        "profile",
    )
    return Site(created["issuer"], app, redirect_uri, name)


@dataclass
class App:
    """The app's redirect URI, answered in the browser: the URLs it was sent to."""

    site: Site
    hits: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def answer(route: Route) -> None:
            self.hits.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<h1>Portal</h1>")

        page.route(self.site.redirect_uri + "*", answer)

    def code(self, page: Page) -> str:
        """After the sign-in: consent if asked, then the code the app received."""
        allow = page.locator("button[value=allow]")
        deadline = time.monotonic() + 15
        while not self.hits:
            assert time.monotonic() < deadline, (page.url, page.content()[:2000])
            if allow.count():
                allow.click()
                break
            page.wait_for_timeout(100)
        page.wait_for_url(self.site.redirect_uri + "?**")
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.hits[-1]).query).items()}
        assert query.get("state") == "st", query
        assert "code" in query, query
        return query["code"]


def password(page: Page, username: str = "carol", secret: str = PASSWORD) -> None:
    """The password form (the sign-in page on `localhost` also has the passkey button)."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", secret)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


# --- Chromium's virtual authenticator ----------------------------------------------------------


@dataclass
class Authenticator:
    """A CTAP2 platform authenticator that verifies the user and is always touched."""

    cdp: CDPSession
    id: str

    @classmethod
    def on(cls, page: Page) -> Authenticator:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        added = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return cls(cdp, added["authenticatorId"])

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(found["credentials"])

    def add(self, credential: dict[str, Any]) -> None:
        self.cdp.send(
            "WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential}
        )


def recovery_codes(page: Page) -> list[str]:
    page.locator("#recovery-codes").wait_for()
    return [c.strip() for c in page.locator("#recovery-codes li code").all_inner_texts()]


# --- passkeys ------------------------------------------------------------------------------------


def test_a_passkey_made_by_chromium_then_a_passwordless_sign_in_with_it(
    chromium: Chromium, server: Server
) -> None:
    site = new_site(server)
    with new_page(chromium) as page:
        app, authn, pkce = App(site), Authenticator.on(page), Pkce()
        app.attach(page)
        page.goto(site.authorize_url(pkce, acr_values=ACR_PHR))
        password(page)
        # A phishing-resistant sign-in asked for, no passkey yet: make one now.
        assert page.locator("h1").inner_text() == "Add a passkey"
        assert page.locator("#totp-form").count() == 0  # an app code would not do
        page.fill("#passkey-name", "Laptop")
        page.get_by_role("button", name="Create a passkey").click()
        codes = recovery_codes(page)
        assert len(codes) == 10 and len(set(codes)) == 10
        page.click("#continue")
        claims = site.claims(app.code(page), pkce)
        assert claims["acr"] == ACR_PHR
        # Chromium's virtual authenticator is device-bound (no backup flags): `hwk`.
        assert claims["amr"] == ["pwd", "hwk", "mfa"]
        (credential,) = authn.credentials()
        assert credential["isResidentCredential"] is True
        assert credential["rpId"] == "localhost"

    # Another browser holding the same passkey (a synced one): no username typed.
    with new_page(chromium) as page:
        app, authn, pkce = App(site), Authenticator.on(page), Pkce()
        app.attach(page)
        authn.add(credential)
        page.goto(site.authorize_url(pkce))
        button = page.get_by_role("button", name="Sign in with a passkey")
        button.wait_for()
        screenshot(page, server, "mfa-login.png")
        assert page.input_value("input[name=username]") == ""
        button.click()
        claims = site.claims(app.code(page), pkce)
        assert claims["acr"] == ACR_PHR
        assert claims["amr"] == ["hwk", "user", "mfa"]
        (used,) = authn.credentials()
        assert used["credentialId"] == credential["credentialId"]
        assert used["signCount"] > credential["signCount"]


# --- an authenticator app and recovery codes -----------------------------------------------------


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules (column, row) of a QR code drawn by segno as one path of horizontal
    strokes (`M x y.5 h n m dx dy …`), whatever its scale and border."""
    path = re.search(r'class="qrline"[^>]*\sd="([^"]+)"', svg)
    assert path, svg[:300]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for op, args in re.findall(r"([MmHh])([-0-9. ]+)", path.group(1)):
        numbers = [float(n) for n in args.split()]
        if op in "Mm":
            x, y = (numbers[0], numbers[1]) if op == "M" else (x + numbers[0], y + numbers[1])
        else:
            length = numbers[0] if op == "h" else numbers[0] - x
            dark.update((int(x + i), int(y)) for i in range(int(length)))
            x += length
    return dark


def matrix_modules(qr: segno.QRCode) -> set[tuple[int, int]]:
    return {(x, y) for y, row in enumerate(qr.matrix) for x, bit in enumerate(row) if bit & 1}


def read_totp_page(page: Page) -> str:
    """What a phone would do with the enrollment page: the key from the text fallback, checked
    against the QR code (its modules are those of the otpauth URI made from that key)."""
    qr = page.locator("#totp-qr svg")
    assert qr.is_visible()
    page.get_by_text("Cannot scan? Enter this key").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32,}", secret), secret
    uri = pyotp.TOTP(secret).provisioning_uri(name="carol", issuer_name=LABEL)
    drawn = qr_modules(qr.evaluate("e => e.outerHTML"))
    border = min(x for x, _ in drawn)
    assert border == min(y for _, y in drawn)
    expected = segno.make(uri, error="m", micro=False)
    assert {(x - border, y - border) for x, y in drawn} == matrix_modules(expected)
    return secret


def second_factor_page(page: Page, site: Site, app: App, pkce: Pkce) -> None:
    app.attach(page)
    page.goto(site.authorize_url(pkce))
    password(page)
    assert page.locator("h1").inner_text() == "Confirm it is you"


def test_totp_from_the_qr_page_a_replay_is_refused_a_recovery_code_works_once(
    chromium: Chromium, server: Server
) -> None:
    site = new_site(server, "required")
    with new_page(chromium) as page:
        app, pkce = App(site), Pkce()
        app.attach(page)
        page.goto(site.authorize_url(pkce))
        password(page)
        assert page.locator("h1").inner_text() == "Set up a second factor"
        screenshot(page, server, "mfa-enroll.png")
        secret = read_totp_page(page)
        phone = pyotp.TOTP(secret)
        enrolled_with = phone.now()
        page.fill("#code", enrolled_with)
        page.get_by_role("button", name="Verify and continue").click()
        codes = recovery_codes(page)
        assert len(codes) == 10
        screenshot(page, server, "mfa-recovery-codes.png")
        page.click("#continue")
        claims = site.claims(app.code(page), pkce)
        assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]

    # Signed out (a new browser): the password, then a code of the app.
    with new_page(chromium) as page:
        app, pkce = App(site), Pkce()
        second_factor_page(page, site, app, pkce)
        screenshot(page, server, "mfa-factor.png")
        # The code used at enrollment, still within the window (±1 step): refused as used.
        assert phone.verify(enrolled_with, valid_window=1)
        page.fill("#code", enrolled_with)
        page.get_by_role("button", name="Verify code").click()
        assert "not valid" in page.locator("#form-error").inner_text()
        assert not app.hits
        page.fill("#code", phone.at(time.time() + 30))  # the next step: within the window
        page.get_by_role("button", name="Verify code").click()
        claims = site.claims(app.code(page), pkce)
        assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]

    for attempt in ("works", "used"):
        with new_page(chromium) as page:
            app, pkce = App(site), Pkce()
            second_factor_page(page, site, app, pkce)
            page.get_by_text("Use a recovery code").click()
            page.fill("#recovery-code", codes[0])
            page.get_by_role("button", name="Use recovery code").click()
            if attempt == "works":
                assert site.claims(app.code(page), pkce)["amr"] == ["pwd", "otp", "mfa"]
            else:
                assert "not valid or was used" in page.locator("#form-error").inner_text()
                assert page.locator("h1").inner_text() == "Confirm it is you"
                assert not app.hits


def test_a_required_policy_allows_nothing_before_enrollment(
    chromium: Chromium, server: Server
) -> None:
    site = new_site(server, "required")
    with new_page(chromium) as page:
        app, pkce = App(site), Pkce()
        app.attach(page)
        page.goto(site.authorize_url(pkce))
        password(page)
        assert page.locator("h1").inner_text() == "Set up a second factor"
        page.fill("#code", "000000")
        page.get_by_role("button", name="Verify and continue").click()
        assert "not valid" in page.locator("#form-error").inner_text()
        # The authorization request again, and a new one: the same page, no consent, no code.
        for url in (site.authorize_url(pkce), site.authorize_url(Pkce(), prompt="consent")):
            page.goto(url)
            assert page.locator("h1").inner_text() == "Set up a second factor"
            assert page.locator("button[value=allow]").count() == 0
        assert not app.hits


# --- step-up: an API asks for more, `tessera call` signs in again -------------------------------


@dataclass
class StepUpApi:
    url: str
    server: uvicorn.Server


@pytest.fixture(scope="module")
def step_up_api(server: Server) -> Iterator[StepUpApi]:
    """A Starlette API of the demo domain's resource whose route needs the multi-factor level
    (`tessera.resource.starlette.requires(…, acr=…)`), served in a thread."""
    resource = server.demo["resource"]
    validator = TokenValidator(f"http://localhost:{server.port}", resource["audience"])

    @requires(DEMO_SCOPE, acr=ACR_MFA)  # as tokens carry it: without the audience prefix
    async def orders(request: Request) -> Response:
        user = request.user
        assert isinstance(user, TokenUser)
        return JSONResponse({"orders": [], "for": user.display_name, "acr": user.token.acr})

    api = Starlette(
        routes=[ApiRoute("/orders", orders)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=BearerBackend(validator),
                on_error=bearer_error_response,
            )
        ],
    )
    port = free_port()
    web = uvicorn.Server(uvicorn.Config(api, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not web.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield StepUpApi(f"http://127.0.0.1:{port}/orders", web)
    finally:
        web.should_exit = True
        thread.join(10)


class CallProcess:
    """`tessera call … --no-browser` running: the URL it prints, then its result."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tessera", "call", *args, "--no-browser"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def url(self, timeout: float = 30) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None or not line.startswith("http"):
            self.proc.kill()
            raise AssertionError(f"tessera call printed no URL: {line!r} {self.finish()}")
        return line.strip()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Exit code, the rest of stdout and stderr once the command has ended."""
        assert self.proc.stderr is not None
        code = self.proc.wait(timeout=timeout)
        out = "".join(iter(lambda: self._lines.get(timeout=5), None))
        return code, out, self.proc.stderr.read()


def test_tessera_call_steps_up_when_the_api_asks_for_mfa(
    chromium: Chromium, server: Server, step_up_api: StepUpApi, tmp_path: Path
) -> None:
    issuer = f"http://localhost:{server.port}"
    alice, resource = server.demo["user"], server.demo["resource"]
    env = client_env(tmp_path / "config")
    with new_page(chromium) as page:
        authn = Authenticator.on(page)
        login = LoginProcess(
            env,
            *("--issuer", issuer, "--client-id", server.demo["public_app"]["client_id"]),
            *("--scope", resource["scope"], "--timeout", "60"),
            # A bearer token, so the raw call below shows the RFC 9470 challenge as is (the
            # DPoP step-up: tests/unit/client/test_dpop.py).
            "--no-dpop",
        )
        page.goto(login.url())
        password(page, alice["username"], alice["password"])  # a password, nothing more
        if page.locator("button[value=allow]").count():
            page.click("button[value=allow]")
        code, _, err = login.finish()
        assert code == 0, err

        # The raw challenge (RFC 9470 §3) to the password-only token.
        token = tessera(env, "token").stdout.strip()
        signed_in = verified(issuer, token)
        assert signed_in["acr"] == ACR_PASSWORD and signed_in["amr"] == ["pwd"]
        refused = httpx.get(step_up_api.url, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, (refused.headers, refused.text)
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert 'error="insufficient_user_authentication"' in challenge
        assert f'acr_values="{ACR_MFA}"' in challenge

        # `tessera call` reads it, prints the sign-in URL asking for the level, and retries.
        call = CallProcess(env, "GET", step_up_api.url)
        url = call.url()
        # Pushed (RFC 9126): acr_values went in the request, the URL carries its handle only;
        # the second-factor page below shows the level was asked for.
        assert set(parse_qs(urlsplit(url).query)) == {"client_id", "request_uri"}
        page.goto(url)
        if page.locator("input[name=password]").count():
            password(page, alice["username"], alice["password"])
        assert page.locator("h1").inner_text() == "Set up a second factor"
        page.get_by_role("button", name="Create a passkey").click()
        assert len(recovery_codes(page)) == 10
        page.click("#continue")
        page.wait_for_load_state()
        if page.locator("button[value=allow]").count():
            page.click("button[value=allow]")
        code, out, err = call.finish()
        assert code == 0, (out, err)
        assert "HTTP 200" in err and "Signed in again" in err
        answer = json.loads(out)
        # The passkey made on the way (pwd + hwk) is more than the API asked: it meets it.
        assert answer["acr"] == ACR_PHR and answer["for"] == "Alice Example"
        assert len(authn.credentials()) == 1
        retried = tessera(env, "call", "GET", step_up_api.url, "--no-step-up")
        assert retried.returncode == 0, retried.stderr  # the new token is cached
