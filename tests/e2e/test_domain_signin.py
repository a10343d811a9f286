"""Signing in to an identity domain other than the default, end to end over HTTP (docs/domains.md).

A domain under `<base>/domains/<name>` and one with a host name of its own (`https://<host>`,
reached here through a stand-in for the TLS-terminating proxy) each run the authorization code
flow with PKCE (RFC 7636): every URL the pages and redirects carry stays under the domain's
prefix, the pages name the domain, `iss` (RFC 9207) and the tokens carry its issuer, and its
cookies (names with the domain's suffix, paths under its prefix) are neither sent to nor
accepted by another domain: a session of one domain signs nobody in to another, and signing
out of one leaves the other's session standing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.domains import create_domain, domain_cli
from tests.support.flow import Browser, ConnectTo, Pkce, code_from, form_fields, query_of
from tests.support.server import Server

REDIRECT_URI = "http://127.0.0.1:8080/callback"
PASSWORD = "Tangerine-Lattice-Passw0rd-2026"
STATE = "state-Dm7"
NONCE = "nonce-Dm7"
HOST = "login.example.test"


@dataclass
class Site:
    """One domain as its users and its app see it."""

    domain: dict[str, Any]  # the CLI's view of it
    app: dict[str, Any]  # a confidential app registered in it
    base_url: str  # what a browser opens: the issuer
    prefix: str  # the path its URLs start with ('' for a domain with its own host)
    connect_to: str | None = None  # the server's address when the issuer's host is not it

    @property
    def issuer(self) -> str:
        return str(self.domain["issuer"])

    @property
    def suffix(self) -> str:
        return "_" + str(self.domain["id"])

    def browser(self) -> Browser:
        return Browser(self.base_url, connect_to=self.connect_to)

    def http(self) -> httpx.Client:
        """The app's own client, for the token endpoint and the keys."""
        transport = ConnectTo(self.connect_to) if self.connect_to else None
        return httpx.Client(timeout=30, transport=transport)


def _site(server: Server, name: str, display_name: str, host: str | None = None) -> Site:
    domain = create_domain(server, name, display_name=display_name, host=host)
    carol = ("users", "create", "carol", "--name", "Carol Acme", "--password-stdin")
    domain_cli(server, name, *carol, input=PASSWORD + "\n")
    app = domain_cli(
        server,
        name,
        "apps",
        "create",
        "--name",
        f"{display_name} portal",
        "--redirect-uri",
        REDIRECT_URI,
        "--post-logout-redirect-uri",
        REDIRECT_URI,
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *("--allow-scope", "openid", "--allow-scope", "profile"),
    )
    if host:
        return Site(domain, app, f"https://{host}", "", connect_to=server.base_url)
    return Site(domain, app, domain["issuer"], f"/domains/{name}")


@pytest.fixture(scope="module")
def acme(server: Server) -> Site:
    site = _site(server, "acme", "Acme Corp")
    assert site.issuer == f"{server.base_url}/domains/acme"
    return site


@pytest.fixture(scope="module")
def hosted(server: Server) -> Site:
    site = _site(server, "hosted", "Hosted Inc", host=HOST)
    assert site.issuer == f"https://{HOST}"
    return site


@pytest.fixture
def acme_browser(acme: Site) -> Iterator[Browser]:
    browser = acme.browser()
    try:
        yield browser
    finally:
        browser.close()


def params(site: Site, pkce: Pkce, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": site.app["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": STATE,
        "nonce": NONCE,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def demo_params(server: Server) -> dict[str, str]:
    app = server.demo["confidential_app"]
    return {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": "openid",
        "state": STATE,
    }


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of the response by cookie name, lower case."""
    return {
        header.split("=", 1)[0]: header.lower()
        for header in response.headers.get_list("set-cookie")
    }


def form_action(page: httpx.Response) -> str:
    start = page.text.index('<form class="form" method="post" action="') + len(
        '<form class="form" method="post" action="'
    )
    return page.text[start : page.text.index('"', start)]


def is_login_page(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'name="password"' in response.text


def exchange(site: Site, code: str, pkce: Pkce) -> dict[str, Any]:
    with site.http() as http:
        response = http.post(
            f"{site.issuer}/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": pkce.verifier,
            },
            auth=(site.app["client_id"], site.app["client_secret"]),
        )
        assert response.status_code == 200, response.text
        keys = KeySet.import_key_set(http.get(f"{site.issuer}/oauth2/v1/keys").json())
    body: dict[str, Any] = response.json()
    for name in ("id_token", "access_token"):
        body[name + "_claims"] = jwt.decode(body[name], keys, algorithms=["RS256", "ES256"]).claims
    return body


def sign_in(site: Site, browser: Browser) -> httpx.Response:
    """carol: authorize → sign-in page → (consent) → the app's redirect with a code."""
    return browser.sign_in_and_authorize("carol", PASSWORD, **params(site, Pkce()))


def alice_signs_in(server: Server, browser: Browser) -> None:
    """The demo user signs in to the default domain's demo app."""
    alice = server.demo["user"]
    query = demo_params(server)
    code_from(browser.sign_in_and_authorize(alice["username"], alice["password"], **query))


def assert_the_flow_runs(site: Site, browser: Browser) -> None:
    """The whole code flow with PKCE, checking every URL and cookie the browser is given."""
    pkce = Pkce()
    path = site.prefix + "/"
    secure = "; secure" if site.issuer.startswith("https://") else ""

    login_page = browser.authorize(**params(site, pkce))
    assert is_login_page(login_page), login_page.text[:500]
    assert site.domain["display_name"] in login_page.text
    assert "Identity domain" in login_page.text
    assert form_action(login_page) == site.prefix + "/oauth2/v1/login"
    bid = set_cookies(login_page)["tessera_bid" + site.suffix]
    assert f"path={path};" in bid + ";" and secure in bid

    signed_in = browser.login(login_page, "carol", PASSWORD)
    assert signed_in.status_code == 303, signed_in.text[:500]
    assert signed_in.headers["location"].startswith(site.prefix + "/oauth2/v1/authorize?")
    cookies = set_cookies(signed_in)
    assert set(cookies) == {"tessera_session" + site.suffix, "tessera_device" + site.suffix}
    assert f"path={path};" in cookies["tessera_session" + site.suffix]
    device = cookies["tessera_device" + site.suffix]
    assert f"path={site.prefix}/oauth2/v1/login;" in device
    assert all("httponly" in c and "samesite=lax" in c and secure in c for c in cookies.values())

    consent_page = browser.follow(signed_in)
    assert consent_page.status_code == 200 and 'value="allow"' in consent_page.text
    assert site.domain["display_name"] in consent_page.text
    assert site.app["name"] in consent_page.text
    assert form_action(consent_page) == site.prefix + "/oauth2/v1/consent"

    redirect = browser.consent(consent_page)
    query = query_of(redirect.headers["location"])
    assert redirect.headers["location"].startswith(REDIRECT_URI + "?")
    assert query["state"] == STATE
    assert query["iss"] == site.issuer  # RFC 9207

    tokens = exchange(site, code_from(redirect), pkce)
    id_token, access = tokens["id_token_claims"], tokens["access_token_claims"]
    assert id_token["iss"] == access["iss"] == site.issuer
    assert id_token["aud"] == site.app["client_id"] and id_token["nonce"] == NONCE
    assert id_token["name"] == "Carol Acme"

    # Signed in: the next authorization in this domain needs neither sign-in nor consent.
    again = browser.authorize(**params(site, Pkce(), state="again"))
    assert query_of(again.headers["location"])["state"] == "again", again.text[:300]


# --- a domain under the base URL's path --------------------------------------------------------


def test_the_code_flow_with_pkce_runs_in_a_domain_under_its_path(
    acme: Site, acme_browser: Browser
) -> None:
    assert_the_flow_runs(acme, acme_browser)


def test_the_pages_of_a_domain_name_it_and_link_under_its_prefix(
    server: Server, acme: Site, acme_browser: Browser
) -> None:
    error = acme_browser.authorize(**params(acme, Pkce(), client_id="no-such-app"))
    assert error.status_code == 400
    assert "Acme Corp" in error.text and "Identity domain" in error.text

    home = acme_browser.http.get(acme.base_url + "/")
    assert home.status_code == 200 and "Acme Corp" in home.text
    for link in ("/console/", "/.well-known/openid-configuration", "/oauth2/v1/keys"):
        assert f'href="/domains/acme{link}"' in home.text
        assert acme_browser.http.get(f"{server.base_url}/domains/acme{link}").status_code == 200
    # The stylesheet and icon are the base's, which serves them to every domain on its host.
    assert 'href="/static/tessera.css"' in home.text
    assert httpx.get(f"{server.base_url}/static/tessera.css").status_code == 200

    # The default domain's pages name no domain, as a single-domain deployment's.
    default_home = httpx.get(f"{server.base_url}/")
    assert "Identity domain" not in default_home.text and 'href="/console/"' in default_home.text


def test_authorize_knows_only_the_domains_own_apps(server: Server, acme: Site) -> None:
    """An app of the default domain is unknown in acme and the reverse: an error page, never a
    redirect to the other domain's redirect URI."""
    default, browser = Browser(server.base_url), acme.browser()
    try:
        foreign = browser.authorize(**demo_params(server))
        assert foreign.status_code == 400 and "location" not in foreign.headers
        assert "Acme Corp" in foreign.text
        reverse = default.authorize(**params(acme, Pkce()))
        assert reverse.status_code == 400 and "location" not in reverse.headers
    finally:
        default.close()
        browser.close()


# --- sessions never cross domains ---------------------------------------------------------------


def test_a_domains_session_signs_nobody_in_to_the_default_domain(
    server: Server, acme: Site, acme_browser: Browser
) -> None:
    code_from(sign_in(acme, acme_browser))
    default = acme_browser.visit(server.base_url)  # the same browser, the same cookie jar
    try:
        # acme's cookies are not sent to the default domain's paths...
        asked = default.authorize(**demo_params(server))
        assert is_login_page(asked), asked.text[:300]
        assert "Identity domain" not in asked.text
        # ...and the default domain's sign-in leaves acme's session as it was.
        alice_signs_in(server, default)
        assert query_of(acme_browser.authorize(**params(acme, Pkce())).headers["location"])["code"]
    finally:
        default.close()


def test_the_default_domains_session_signs_nobody_in_to_a_domain(
    server: Server, acme: Site, acme_browser: Browser
) -> None:
    default = acme_browser.visit(server.base_url)
    try:
        alice_signs_in(server, default)
        # The default domain's session cookie has path '/', so the browser sends it to acme
        # too; acme reads only its own cookie name and asks for a sign-in.
        session = next(c for c in acme_browser.http.cookies.jar if c.name == "tessera_session")
        assert session.path == "/"
        asked = acme_browser.authorize(**params(acme, Pkce()))
        assert is_login_page(asked) and "Acme Corp" in asked.text
    finally:
        default.close()


def test_a_session_id_of_one_domain_is_unknown_in_another(
    server: Server, acme: Site, acme_browser: Browser
) -> None:
    """A cookie copied under the other domain's name: each domain looks sessions up in its own
    data only."""
    code_from(sign_in(acme, acme_browser))
    acme_session = acme_browser.http.cookies["tessera_session" + acme.suffix]
    forged = Browser(server.base_url)
    try:
        forged.http.cookies.set("tessera_session", acme_session, domain="127.0.0.1", path="/")
        assert is_login_page(forged.authorize(**demo_params(server)))
        alice_signs_in(server, forged)
        default_session = forged.http.cookies.get("tessera_session", path="/")
        assert default_session and default_session != acme_session
    finally:
        forged.close()
    reverse = acme.browser()
    try:
        reverse.http.cookies.set(
            "tessera_session" + acme.suffix, default_session, domain="127.0.0.1", path="/domains/"
        )
        assert is_login_page(reverse.authorize(**params(acme, Pkce())))
    finally:
        reverse.close()
    # Signing in with acme's session id in the default domain's cookie ended nothing of acme's.
    assert query_of(acme_browser.authorize(**params(acme, Pkce())).headers["location"])["code"]


def test_signing_out_of_a_domain_leaves_the_default_domains_session(
    server: Server, acme: Site, acme_browser: Browser
) -> None:
    pkce = Pkce()
    code = code_from(acme_browser.sign_in_and_authorize("carol", PASSWORD, **params(acme, pkce)))
    id_token = exchange(acme, code, pkce)["id_token"]
    default = acme_browser.visit(server.base_url)
    try:
        alice_signs_in(server, default)
        # An acme ID token is no hint at the default domain's logout (another issuer, keys).
        refused = default.http.get("/oauth2/v1/userlogout", params={"id_token_hint": id_token})
        assert refused.status_code == 400 and "id_token_hint" in refused.text

        out = acme_browser.http.get(
            "oauth2/v1/userlogout",
            params={
                "id_token_hint": id_token,
                "post_logout_redirect_uri": REDIRECT_URI,
                "state": "bye",
            },
        )
        assert out.status_code == 303 and out.headers["location"] == REDIRECT_URI + "?state=bye"
        expired = set_cookies(out)["tessera_session" + acme.suffix]
        assert "max-age=0" in expired and "path=/domains/acme/;" in expired + ";"
        assert "tessera_session" not in set_cookies(out)

        assert is_login_page(acme_browser.authorize(**params(acme, Pkce())))
        assert code_from(default.authorize(**demo_params(server)))
    finally:
        default.close()


def test_signing_out_of_a_domain_after_confirming_shows_the_domain(
    acme: Site, acme_browser: Browser
) -> None:
    code_from(sign_in(acme, acme_browser))
    confirm = acme_browser.http.get("oauth2/v1/userlogout")
    assert confirm.status_code == 200 and "Acme Corp" in confirm.text
    assert form_action(confirm) == "/domains/acme/oauth2/v1/userlogout"
    target = str(confirm.url.join(form_action(confirm)))
    done = acme_browser.http.post(target, data=form_fields(confirm.text))
    assert done.status_code == 200 and "signed out" in done.text and "Acme Corp" in done.text
    assert is_login_page(acme_browser.authorize(**params(acme, Pkce())))


# --- a domain with a host name of its own --------------------------------------------------------


def test_the_code_flow_with_pkce_runs_at_a_domains_own_host(server: Server, hosted: Site) -> None:
    browser = hosted.browser()
    try:
        assert_the_flow_runs(hosted, browser)
        assert {c.domain for c in browser.http.cookies.jar} == {HOST}  # host-only cookies
        style = browser.http.get("/static/tessera.css")
        assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    finally:
        browser.close()
    # Not served under the base's path as well.
    elsewhere = httpx.get(f"{server.base_url}/domains/hosted/.well-known/openid-configuration")
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "unknown_domain"
