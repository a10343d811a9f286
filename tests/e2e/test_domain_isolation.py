"""Nothing of one identity domain is valid in another, end to end over HTTP (issue 14, "Must
show"; docs/domains.md).

Two domains, alpha and beta, on one server hold the same things under the same names: an
administrator `alice`, a user `carol`, a resource with the same audience, an app `Portal` and a
resource-server app. Every artifact issued in alpha and presented to beta is refused with the
protocol's error: client credentials (RFC 6749 §5.2 `invalid_client`), access tokens at
introspection (RFC 7662 §2.2 `active: false`), userinfo (RFC 6750 §3.1 `invalid_token`), the admin
API and a resource server configured for beta; refresh tokens and authorization codes
(`invalid_grant`); the session cookie (beta asks for a sign-in); the revocation feed; failed
sign-ins (throttling). The same holds between the default domain and another (an operator's
token apart), and for a domain with a host name of its own. Each domain has its own issuer,
keys and settings. A user's revocation in alpha reaches alpha's resource server within 1 s and
touches nothing of beta. A disabled domain answers `403 domain_disabled`; a deleted one `404
unknown_domain`, keeps no row in any table, its resource servers fail closed, and a new domain
of the same name (and issuer) accepts nothing of the old one.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tessera.resource import InvalidTokenError, RevocationFeed, TokenError, TokenValidator
from tests.support.admin import console_token, domain_console_token, operator_token
from tests.support.domains import (
    ADMIN_PASSWORD,
    create_domain,
    discovery_status,
    domain_cli,
    domain_rows,
)
from tests.support.flow import Browser, ConnectTo, code_from
from tests.support.flow import user_tokens as demo_user_tokens
from tests.support.server import Server, create_resource

AUDIENCE = "https://orders.example.test"  # the same audience in both domains
SCOPE = AUDIENCE + "urn:orders:read"
REDIRECT_URI = "http://127.0.0.1:8080/callback"
PASSWORD = "Quartz-Meadow-Ferry-2026"


@dataclass
class Site:
    """One domain and what is registered in it, as its administrators and apps see it."""

    server: Server
    domain: dict[str, Any]  # the CLI's view
    portal: dict[str, Any]  # the confidential app `Portal` (with its secret)
    rs: dict[str, Any]  # a resource-server app of the resource (introspection, the feed)
    carol: dict[str, Any]  # the user `carol`

    @property
    def name(self) -> str:
        return str(self.domain["name"])

    @property
    def issuer(self) -> str:
        return str(self.domain["issuer"])

    def url(self, path: str) -> str:
        return self.issuer + path

    def cli(self, *args: str, input: str | None = None) -> Any:
        """`tessera admin --domain <name> <args> --json`."""
        return domain_cli(self.server, self.name, *args, input=input)

    @property
    def portal_auth(self) -> tuple[str, str]:
        return self.portal["client_id"], self.portal["client_secret"]

    @property
    def rs_auth(self) -> tuple[str, str]:
        return self.rs["client_id"], self.rs["client_secret"]


def _site(server: Server, name: str) -> Site:
    domain = create_domain(server, name, display_name=name.title())
    site = Site(server, domain, {}, {}, {})
    cli = site.cli
    carol = cli("users", "create", "carol", "--password-stdin", input=PASSWORD + "\n")
    resource = create_resource(server, "Orders", AUDIENCE, "urn:orders:read", domain=domain)
    portal = cli(
        *("apps", "create", "--name", "Portal", "--redirect-uri", REDIRECT_URI),
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *("--grant-type", "client_credentials"),
        *("--allow-scope", "openid", "--allow-scope", "profile"),
        *("--allow-scope", "offline_access", "--allow-scope", SCOPE),
    )
    rs = cli(
        *("apps", "create", "--name", "Orders API", "--grant-type", "client_credentials"),
        *("--resource-server-for", resource["id"]),
    )
    site.portal, site.rs, site.carol = portal, rs, carol
    return site


@pytest.fixture(scope="module")
def sites(server: Server) -> dict[str, Site]:
    return {name: _site(server, name) for name in ("alpha", "beta")}


@pytest.fixture(scope="module")
def alpha(sites: dict[str, Site]) -> Site:
    return sites["alpha"]


@pytest.fixture(scope="module")
def beta(sites: dict[str, Site]) -> Site:
    return sites["beta"]


# --- getting artifacts ------------------------------------------------------------------------


def authorize_params(site: Site, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": site.portal["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid profile offline_access {SCOPE}",
        "state": uuid.uuid4().hex,
        **extra,
    }


def user_code(site: Site, username: str = "carol", password: str = PASSWORD) -> str:
    """Sign `username` in to the site's Portal with a fresh browser; the code it gets."""
    browser = Browser(site.issuer)
    try:
        return code_from(browser.sign_in_and_authorize(username, password, **authorize_params(site)))
    finally:
        browser.close()


def token(site: Site, data: dict[str, str], auth: tuple[str, str] | None) -> httpx.Response:
    return httpx.post(site.url("/oauth2/v1/token"), data=data, auth=auth, timeout=30)


def redeem(site: Site, code: str, auth: tuple[str, str]) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    return token(site, data, auth)


def user_tokens(site: Site, username: str = "carol", password: str = PASSWORD) -> dict[str, Any]:
    response = redeem(site, user_code(site, username, password), site.portal_auth)
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert body.get("refresh_token"), body
    return body


def app_token(site: Site) -> str:
    response = token(site, {"grant_type": "client_credentials", "scope": SCOPE}, site.portal_auth)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def introspect(site: Site, value: str, auth: tuple[str, str]) -> httpx.Response:
    return httpx.post(site.url("/oauth2/v1/introspect"), data={"token": value}, auth=auth)


def active(site: Site, value: str) -> bool:
    response = introspect(site, value, site.rs_auth)
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


def assert_invalid_token(response: httpx.Response) -> None:
    """RFC 6750 §3.1: 401 with a Bearer challenge naming `invalid_token`."""
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def resource_server(site: Site, feed: RevocationFeed | None = None) -> TokenValidator:
    """What a resource server of the site's resource builds (`tessera.resource`)."""
    return TokenValidator(site.issuer, AUDIENCE, revocation=feed)


def refused_by(
    validator: TokenValidator, value: str, error: type[TokenError] = InvalidTokenError
) -> bool:
    """The resource server refuses the token as invalid; with `error=TokenError`, also when it
    cannot vouch for it (its feed is stale)."""
    try:
        validator.validate(value, scopes=["urn:orders:read"])
    except error:
        return True
    return False


# --- the same names, two things -----------------------------------------------------------------


def test_the_same_names_in_two_domains_are_different_things(alpha: Site, beta: Site) -> None:
    assert alpha.domain["id"] != beta.domain["id"]
    assert alpha.issuer != beta.issuer
    assert alpha.domain["admin"]["username"] == beta.domain["admin"]["username"] == "alice"
    assert alpha.domain["admin"]["id"] != beta.domain["admin"]["id"]
    assert alpha.carol["username"] == beta.carol["username"] == "carol"
    assert alpha.carol["id"] != beta.carol["id"]
    assert alpha.portal["name"] == beta.portal["name"] == "Portal"
    assert alpha.portal["client_id"] != beta.portal["client_id"]
    assert alpha.portal["client_secret"] != beta.portal["client_secret"]
    # Each domain lists only its own.
    names = [u["username"] for u in domain_cli_list(alpha, "users")]
    assert sorted(names) == ["alice", "carol"]
    ids = {u["id"] for u in domain_cli_list(beta, "users")}
    assert alpha.carol["id"] not in ids and beta.carol["id"] in ids


def domain_cli_list(site: Site, group: str) -> list[dict[str, Any]]:
    return list(site.cli(group, "list"))


def test_each_domain_has_its_own_issuer_and_signing_keys(
    server: Server, alpha: Site, beta: Site
) -> None:
    kids: dict[str, set[str]] = {}
    for issuer in (server.issuer, alpha.issuer, beta.issuer):
        metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
        assert metadata["issuer"] == issuer
        for endpoint in ("jwks_uri", "token_endpoint", "introspection_endpoint"):
            assert metadata[endpoint].startswith(issuer + "/oauth2/v1/"), metadata[endpoint]
        kids[issuer] = {k["kid"] for k in httpx.get(metadata["jwks_uri"]).json()["keys"]}
        assert kids[issuer]
    assert not kids[alpha.issuer] & kids[beta.issuer]
    assert not kids[server.issuer] & (kids[alpha.issuer] | kids[beta.issuer])
    claims = jwt_claims(app_token(alpha))
    assert claims["iss"] == alpha.issuer and claims["aud"] == AUDIENCE


def jwt_claims(value: str) -> dict[str, Any]:
    segment = value.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def test_the_default_domain_and_another_refuse_each_others_tokens(
    server: Server, alpha: Site
) -> None:
    demo = server.demo
    demo_app = demo["confidential_app"]
    demo_auth = (demo_app["client_id"], demo_app["client_secret"])
    default_user = demo_user_tokens(
        server,
        demo["user"]["username"],
        demo["user"]["password"],
        scope=f"openid profile offline_access {demo['resource']['scope']}",
        state=uuid.uuid4().hex,
    )
    # An administrator of the default domain without the operator scope is no operator.
    default_admin = console_token(server.base_url, "admin", demo["admin"]["password"])
    users = "/admin/v1/users"
    assert introspect(alpha, default_user["access_token"], alpha.rs_auth).json() == {
        "active": False
    }
    assert_invalid_token(
        httpx.get(alpha.url("/oauth2/v1/userinfo"), headers=bearer(default_user["access_token"]))
    )
    for value in (default_user["access_token"], default_admin["access_token"]):
        assert_invalid_token(httpx.get(alpha.url(users), headers=bearer(value)))
    # (An operator's token, with the operator scope, is accepted there: the contrast.)
    operator = operator_token(server.base_url, "admin", demo["admin"]["password"])
    assert httpx.get(alpha.url(users), headers=bearer(operator["access_token"])).status_code == 200
    refresh = {"grant_type": "refresh_token", "refresh_token": default_user["refresh_token"]}
    assert_oauth_error(token(alpha, refresh, alpha.portal_auth), 400, "invalid_grant")
    assert_oauth_error(
        token(alpha, {"grant_type": "client_credentials"}, demo_auth), 401, "invalid_client"
    )

    # And the other way round: alpha's artifacts are nothing in the default domain.
    mine = user_tokens(alpha)
    default = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": mine["access_token"]},
        auth=demo_auth,
    )
    assert default.status_code == 200 and default.json() == {"active": False}, default.text
    assert_invalid_token(
        httpx.get(f"{server.base_url}/oauth2/v1/userinfo", headers=bearer(mine["access_token"]))
    )
    admin_alpha = domain_console_token(alpha.domain, "alice", ADMIN_PASSWORD)["access_token"]
    for value in (mine["access_token"], admin_alpha):
        assert_invalid_token(httpx.get(f"{server.base_url}{users}", headers=bearer(value)))
    refresh = {"grant_type": "refresh_token", "refresh_token": mine["refresh_token"]}
    default_token = httpx.post(f"{server.base_url}/oauth2/v1/token", data=refresh, auth=demo_auth)
    assert_oauth_error(default_token, 400, "invalid_grant")
    cc = {"grant_type": "client_credentials", "scope": SCOPE}
    default_token = httpx.post(f"{server.base_url}/oauth2/v1/token", data=cc, auth=alpha.portal_auth)
    assert_oauth_error(default_token, 401, "invalid_client")


# --- client credentials --------------------------------------------------------------------------


def test_an_apps_credentials_are_unknown_in_another_domain(alpha: Site, beta: Site) -> None:
    grant = {"grant_type": "client_credentials", "scope": SCOPE}
    assert token(alpha, grant, alpha.portal_auth).status_code == 200
    refused = token(beta, grant, alpha.portal_auth)
    assert_oauth_error(refused, 401, "invalid_client")
    assert refused.headers["www-authenticate"].startswith("Basic")
    # In the body (client_secret_post) too, and with beta's secret under alpha's id.
    posted = {**grant, "client_id": alpha.portal["client_id"]}
    posted["client_secret"] = alpha.portal["client_secret"]
    assert_oauth_error(token(beta, posted, None), 401, "invalid_client")
    mixed = (alpha.portal["client_id"], beta.portal["client_secret"])
    assert_oauth_error(token(beta, grant, mixed), 401, "invalid_client")


# --- access tokens -----------------------------------------------------------------------------


def test_an_access_token_is_inactive_at_another_domains_introspection(
    alpha: Site, beta: Site
) -> None:
    for value in (app_token(alpha), user_tokens(alpha)["access_token"]):
        assert active(alpha, value) is True
        assert introspect(beta, value, beta.rs_auth).json() == {"active": False}
        # Nor may alpha's resource server ask beta (its credentials are unknown there).
        assert_oauth_error(introspect(beta, value, alpha.rs_auth), 401, "invalid_client")


def test_an_access_token_gets_no_userinfo_in_another_domain(alpha: Site, beta: Site) -> None:
    value = user_tokens(alpha)["access_token"]
    mine = httpx.get(alpha.url("/oauth2/v1/userinfo"), headers=bearer(value))
    assert mine.status_code == 200, mine.text
    assert mine.json()["sub"] == alpha.carol["id"]
    assert_invalid_token(httpx.get(beta.url("/oauth2/v1/userinfo"), headers=bearer(value)))
    assert_invalid_token(httpx.post(beta.url("/oauth2/v1/userinfo"), headers=bearer(value)))


def test_a_token_is_refused_by_another_domains_admin_api(alpha: Site, beta: Site) -> None:
    admin_alpha = domain_console_token(alpha.domain, "alice", ADMIN_PASSWORD)["access_token"]
    admin_beta = domain_console_token(beta.domain, "alice", ADMIN_PASSWORD)["access_token"]
    users = "/admin/v1/users"
    assert httpx.get(alpha.url(users), headers=bearer(admin_alpha)).status_code == 200
    assert httpx.get(beta.url(users), headers=bearer(admin_beta)).status_code == 200
    for value, site in [
        (admin_alpha, beta),
        (admin_beta, alpha),
        (user_tokens(alpha)["access_token"], beta),
        (app_token(alpha), beta),
    ]:
        assert_invalid_token(httpx.get(site.url(users), headers=bearer(value)))
        created = httpx.post(
            site.url(users),
            headers=bearer(value),
            json={"username": "mallory", "password": "Intruder-Password-2026"},
        )
        assert_invalid_token(created)
    assert "mallory" not in [u["username"] for u in domain_cli_list(beta, "users")]


def test_a_domains_admin_api_finds_nothing_of_another_domain(alpha: Site, beta: Site) -> None:
    """No object of beta is reachable through alpha's admin API, even by its id."""
    admin_alpha = domain_console_token(alpha.domain, "alice", ADMIN_PASSWORD)["access_token"]
    admin_beta = domain_console_token(beta.domain, "alice", ADMIN_PASSWORD)["access_token"]
    beta_tokens = user_tokens(beta)
    grants = httpx.get(
        beta.url(f"/admin/v1/users/{beta.carol['id']}/grants"), headers=bearer(admin_beta)
    )
    assert grants.status_code == 200 and grants.json(), grants.text
    grant_id = grants.json()[0]["grant_id"]
    with httpx.Client(base_url=alpha.url("/admin/v1"), headers=bearer(admin_alpha)) as api:
        assert api.get("/users/carol").json()["id"] == alpha.carol["id"]
        for method, path in [
            ("GET", f"/users/{beta.carol['id']}"),
            ("GET", f"/users/{beta.carol['id']}/grants"),
            ("POST", f"/users/{beta.carol['id']}/revoke-tokens"),
            ("PATCH", f"/users/{beta.carol['id']}"),
            ("DELETE", f"/users/{beta.carol['id']}"),
            ("GET", f"/apps/{beta.portal['client_id']}"),
            ("POST", f"/apps/{beta.portal['client_id']}/revoke-tokens"),
            ("POST", f"/apps/{beta.portal['client_id']}/rotate-secret"),
            ("DELETE", f"/apps/{beta.portal['client_id']}"),
            ("DELETE", f"/grants/{grant_id}"),
        ]:
            body = {"disabled": True} if method == "PATCH" else None
            response = api.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    # beta's objects are untouched.
    assert active(beta, beta_tokens["access_token"]) is True
    refresh = {"grant_type": "refresh_token", "refresh_token": beta_tokens["refresh_token"]}
    assert token(beta, refresh, beta.portal_auth).status_code == 200
    assert app_token(beta)


def test_revoking_at_another_domain_revokes_nothing(alpha: Site, beta: Site) -> None:
    """RFC 7009 §2.2: the revocation endpoint answers 200 for a token it does not know, and
    that token lives on in its own domain."""
    tokens = user_tokens(alpha)
    for hint, value in [
        ("refresh_token", tokens["refresh_token"]),
        ("access_token", tokens["access_token"]),
    ]:
        data = {"token": value, "token_type_hint": hint}
        revoked = httpx.post(beta.url("/oauth2/v1/revoke"), data=data, auth=beta.portal_auth)
        assert revoked.status_code == 200, revoked.text
        refused = httpx.post(beta.url("/oauth2/v1/revoke"), data=data, auth=alpha.portal_auth)
        assert_oauth_error(refused, 401, "invalid_client")
    assert active(alpha, tokens["access_token"]) is True
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert token(alpha, refresh, alpha.portal_auth).status_code == 200


def test_an_access_token_is_refused_by_a_resource_server_of_another_domain(
    alpha: Site, beta: Site
) -> None:
    at_alpha, at_beta = resource_server(alpha), resource_server(beta)
    for value in (app_token(alpha), user_tokens(alpha)["access_token"]):
        assert not refused_by(at_alpha, value)
        assert refused_by(at_beta, value)  # same audience, another issuer and keys
    value = user_tokens(beta)["access_token"]
    assert not refused_by(at_beta, value)
    assert refused_by(at_alpha, value)


# --- refresh tokens and codes ------------------------------------------------------------------


def test_a_refresh_token_is_refused_by_another_domain(alpha: Site, beta: Site) -> None:
    refresh = user_tokens(alpha)["refresh_token"]
    grant = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert_oauth_error(token(beta, grant, beta.portal_auth), 400, "invalid_grant")
    assert_oauth_error(token(beta, grant, alpha.portal_auth), 401, "invalid_client")
    # Nothing happened to it at home: it still rotates there.
    rotated = token(alpha, grant, alpha.portal_auth)
    assert rotated.status_code == 200, rotated.text


def test_an_authorization_code_is_refused_by_another_domain(alpha: Site, beta: Site) -> None:
    code = user_code(alpha)
    assert_oauth_error(redeem(beta, code, beta.portal_auth), 400, "invalid_grant")
    assert_oauth_error(redeem(beta, code, alpha.portal_auth), 401, "invalid_client")
    # Unknown in beta, it was not burnt there: alpha redeems it once.
    redeemed = redeem(alpha, code, alpha.portal_auth)
    assert redeemed.status_code == 200, redeemed.text


# --- the session cookie ---------------------------------------------------------------------


def wants_sign_in(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'name="password"' in response.text


def test_a_session_of_one_domain_signs_nobody_in_to_another(alpha: Site, beta: Site) -> None:
    browser = Browser(alpha.issuer)
    try:
        code_from(browser.sign_in_and_authorize("carol", PASSWORD, **authorize_params(alpha)))
        # Signed in at alpha: alpha hands out a code without asking again.
        code_from(browser.authorize(**authorize_params(alpha)))
        # The same browser at beta is asked to sign in.
        at_beta = browser.visit(beta.issuer)
        try:
            assert wants_sign_in(at_beta.authorize(**authorize_params(beta)))
            # Even alpha's cookies copied under beta's names and path sign nobody in.
            alpha_suffix, beta_suffix = f"_{alpha.domain['id']}", f"_{beta.domain['id']}"
            copied = 0
            for cookie in list(browser.http.cookies.jar):
                if cookie.name.endswith(alpha_suffix) and cookie.value:
                    name = cookie.name[: -len(alpha_suffix)] + beta_suffix
                    at_beta.http.cookies.set(
                        name, cookie.value, domain=cookie.domain, path=f"/domains/{beta.name}"
                    )
                    copied += 1
            assert copied, [c.name for c in browser.http.cookies.jar]
            response = at_beta.authorize(**authorize_params(beta))
            assert wants_sign_in(response), response.headers.get("location")
        finally:
            at_beta.close()
    finally:
        browser.close()


def test_failed_sign_ins_in_one_domain_throttle_nobody_in_another(
    alpha: Site, beta: Site
) -> None:
    for site in (alpha, beta):
        site.cli("users", "create", "erin", "--password-stdin", input=PASSWORD + "\n")
    browser = Browser(alpha.issuer)
    try:
        page = browser.authorize(**authorize_params(alpha))
        statuses = []
        for _ in range(12):  # the free failures, then a wait is asked (RFC 6585 §4)
            page = browser.login(page, "erin", "Wrong-Password-2026")
            statuses.append(page.status_code)
            if page.status_code == 429:
                break
        assert statuses[-1] == 429, statuses
        assert browser.login(page, "erin", PASSWORD).status_code == 429
    finally:
        browser.close()
    # beta's erin is another account: she signs in at once.
    code = user_code(beta, "erin")
    assert redeem(beta, code, beta.portal_auth).status_code == 200


# --- the revocation feed ---------------------------------------------------------------------


def test_the_revocation_feed_is_read_only_by_the_domains_own_resource_servers(
    alpha: Site, beta: Site
) -> None:
    feed = "/oauth2/v1/revocations"
    mine = httpx.get(alpha.url(feed), params={"since": 0}, auth=alpha.rs_auth)
    assert mine.status_code == 200, mine.text
    assert "events" in mine.json()
    assert_oauth_error(
        httpx.get(beta.url(feed), params={"since": 0}, auth=alpha.rs_auth), 401, "invalid_client"
    )
    assert_oauth_error(
        httpx.get(alpha.url(feed), params={"since": 0}, auth=beta.rs_auth), 401, "invalid_client"
    )
    with pytest.raises(httpx.HTTPStatusError):
        RevocationFeed(beta.issuer, *alpha.rs_auth).poll_once()


# --- revocation of a user --------------------------------------------------------------------


def poll(check: Callable[[], bool], seconds: float) -> bool:
    """Whether `check` comes true within `seconds` (a functional bound, asked every 20 ms)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def test_a_users_revocation_reaches_the_domains_resource_server_and_not_another(
    alpha: Site, beta: Site
) -> None:
    for site in (alpha, beta):
        site.cli("users", "create", "dave", "--password-stdin", input=PASSWORD + "\n")
    dave_alpha = user_tokens(alpha, "dave")
    dave_beta = user_tokens(beta, "dave")
    feeds = [
        RevocationFeed(site.issuer, *site.rs_auth, wait_seconds=5).start() for site in (alpha, beta)
    ]
    try:
        at_alpha, at_beta = resource_server(alpha, feeds[0]), resource_server(beta, feeds[1])
        assert feeds[0].synced and feeds[1].synced
        assert not refused_by(at_alpha, dave_alpha["access_token"])
        assert not refused_by(at_beta, dave_beta["access_token"])

        admin = domain_console_token(alpha.domain, "alice", ADMIN_PASSWORD)["access_token"]
        dave_sub = next(u["id"] for u in domain_cli_list(alpha, "users") if u["username"] == "dave")
        revoked = httpx.post(
            alpha.url(f"/admin/v1/users/{dave_sub}/revoke-tokens"), headers=bearer(admin)
        )
        assert revoked.status_code == 200, revoked.text
        assert poll(lambda: refused_by(at_alpha, dave_alpha["access_token"]), 1.0), (
            f"alpha's resource server kept accepting the token: {feeds[0].last_error}"
        )
        assert active(alpha, dave_alpha["access_token"]) is False
        refresh = {"grant_type": "refresh_token", "refresh_token": dave_alpha["refresh_token"]}
        assert_oauth_error(token(alpha, refresh, alpha.portal_auth), 400, "invalid_grant")

        # beta's dave is another user: his tokens live on, also after the CLI revokes alpha's.
        alpha.cli("tokens", "revoke", "--user", "dave")
        assert not refused_by(at_beta, dave_beta["access_token"])
        assert active(beta, dave_beta["access_token"]) is True
        refresh = {"grant_type": "refresh_token", "refresh_token": dave_beta["refresh_token"]}
        rotated = token(beta, refresh, beta.portal_auth)
        assert rotated.status_code == 200, rotated.text
        assert not refused_by(at_beta, rotated.json()["access_token"])
        # The revocation is in alpha's feed (so the key is the user's id) and not in beta's.
        assert any(e["key"] == dave_sub for e in feed_events(alpha))
        assert all(e["key"] != dave_sub for e in feed_events(beta))
    finally:
        for feed in feeds:
            feed.stop()


def feed_events(site: Site) -> list[dict[str, Any]]:
    response = httpx.get(site.url("/oauth2/v1/revocations"), params={"since": 0}, auth=site.rs_auth)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


# --- settings --------------------------------------------------------------------------------


def lifetime(value: str) -> int:
    claims = jwt_claims(value)
    return int(claims["exp"]) - int(claims["iat"])


def test_a_domains_settings_apply_to_it_alone(server: Server, alpha: Site, beta: Site) -> None:
    before = lifetime(app_token(alpha))
    assert lifetime(app_token(beta)) == before != 120
    server.cli_json("admin", "domains", "update", "beta", "--setting", "access_token_ttl=120")
    try:
        # Nodes see a changed domain within their domain cache's lifetime.
        assert poll(lambda: lifetime(app_token(beta)) == 120, 10.0)
        assert lifetime(app_token(alpha)) == before
        assert lifetime(user_tokens(alpha)["access_token"]) == before
    finally:
        server.cli_json("admin", "domains", "update", "beta", "--setting", "access_token_ttl=")
    assert poll(lambda: lifetime(app_token(beta)) == before, 10.0)


# --- disabled and deleted domains ------------------------------------------------------------


def every_endpoint(server: Server, name: str, site: Site | None = None) -> list[httpx.Response]:
    """One request to each kind of endpoint of the domain `name`."""
    base = f"{server.base_url}/domains/{name}"
    auth = site.portal_auth if site else ("someone", "secret")
    grant = {"grant_type": "client_credentials", "scope": SCOPE}
    return [
        httpx.get(f"{base}/.well-known/openid-configuration"),
        httpx.get(f"{base}/oauth2/v1/keys"),
        httpx.post(f"{base}/oauth2/v1/token", data=grant, auth=auth),
        httpx.post(f"{base}/oauth2/v1/introspect", data={"token": "x"}, auth=auth),
        httpx.get(f"{base}/oauth2/v1/userinfo", headers=bearer("x")),
        httpx.get(f"{base}/oauth2/v1/revocations", auth=auth),
        httpx.get(f"{base}/admin/v1/users", headers=bearer("x")),
        httpx.get(f"{base}/oauth2/v1/authorize", params={"client_id": "x"}),
    ]


def test_a_disabled_domain_answers_domain_disabled(server: Server) -> None:
    gamma = _site(server, "gamma")
    value = app_token(gamma)
    server.cli_json("admin", "domains", "disable", "gamma")
    # Every node sees the change within its domain cache's lifetime (a couple of seconds).
    assert poll(lambda: discovery_status(server, "gamma") == 403, 10.0)
    for response in every_endpoint(server, "gamma", gamma):
        assert_oauth_error(response, 403, "domain_disabled")
    assert_oauth_error(introspect(gamma, value, gamma.rs_auth), 403, "domain_disabled")
    page = httpx.get(gamma.url("/oauth2/v1/authorize"), headers={"Accept": "text/html"})
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert "Gamma" in page.text
    # Its token is nothing elsewhere either.
    default_rs = resource_server_default(server)
    assert refused_by(default_rs, value)

    server.cli_json("admin", "domains", "enable", "gamma")
    assert poll(lambda: discovery_status(server, "gamma") == 200, 10.0)
    assert active(gamma, value) is True  # disabling revoked nothing


def resource_server_default(server: Server) -> TokenValidator:
    return TokenValidator(server.issuer, AUDIENCE)


def test_a_deleted_domain_is_unknown_and_its_name_starts_afresh(server: Server) -> None:
    delta = _site(server, "delta")
    value = app_token(delta)
    tokens = user_tokens(delta)
    # A resource server of delta, following its feed (briefly trusted when silent, for the test).
    feed = RevocationFeed(delta.issuer, *delta.rs_auth, wait_seconds=1, max_staleness=3).start()
    follower = resource_server(delta, feed)
    assert not refused_by(follower, tokens["access_token"])
    held = domain_rows(server, delta.domain["id"])
    assert held["users"] and held["clients"] and held["signing_keys"] and held["grants"]
    gone = server.cli_json("admin", "domains", "delete", "delta", "--yes")
    assert gone["deleted"] == "delta" and gone["rows"] > 0
    # Nothing of it is left in any table.
    assert set(domain_rows(server, delta.domain["id"]).values()) == {0}
    # Its resource servers fail closed once its feed stops answering: nothing it issued works.
    try:
        assert poll(lambda: refused_by(follower, tokens["access_token"], TokenError), 15.0), feed.last_error
        assert "404" in (feed.last_error or "")
    finally:
        feed.stop()
    assert poll(lambda: discovery_status(server, "delta") == 404, 10.0)
    for response in every_endpoint(server, "delta", delta):
        assert_oauth_error(response, 404, "unknown_domain")

    # A new domain of the same name (and issuer) is a new domain: nothing of the old one is
    # valid there, though its issuer string is the same.
    again = _site(server, "delta")
    assert again.domain["id"] != delta.domain["id"]
    assert again.issuer == delta.issuer
    assert poll(lambda: discovery_status(server, "delta") == 200, 10.0)
    assert introspect(again, value, again.rs_auth).json() == {"active": False}
    assert introspect(again, tokens["access_token"], again.rs_auth).json() == {"active": False}
    assert refused_by(resource_server(again), value)
    assert refused_by(resource_server(again), tokens["access_token"])
    assert_invalid_token(
        httpx.get(again.url("/oauth2/v1/userinfo"), headers=bearer(tokens["access_token"]))
    )
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert_oauth_error(token(again, refresh, again.portal_auth), 400, "invalid_grant")
    grant = {"grant_type": "client_credentials", "scope": SCOPE}
    assert_oauth_error(token(again, grant, delta.portal_auth), 401, "invalid_client")


HOST = "login.hosted.test"


def test_a_domain_with_its_own_host_and_a_domain_under_a_path_refuse_each_others_artifacts(
    server: Server, alpha: Site
) -> None:
    domain = create_domain(server, "hosted", host=HOST)
    assert domain["issuer"] == f"https://{HOST}"
    hosted = Site(server, domain, {}, {}, {})
    create_resource(
        server, "Orders", AUDIENCE, "urn:orders:read", domain=domain, headers={"Host": HOST}
    )
    hosted.portal = hosted.cli(
        *("apps", "create", "--name", "Portal", "--grant-type", "client_credentials"),
        *("--allow-scope", SCOPE),
    )
    at_host = {"Host": HOST}
    grant = {"grant_type": "client_credentials", "scope": SCOPE}
    mine = httpx.post(
        f"{server.base_url}/oauth2/v1/token", data=grant, auth=hosted.portal_auth, headers=at_host
    )
    assert mine.status_code == 200, mine.text
    hosted_token = mine.json()["access_token"]
    assert jwt_claims(hosted_token)["iss"] == f"https://{HOST}"
    # alpha's app at the hosted domain; the hosted domain's app at alpha and at the default.
    theirs = httpx.post(
        f"{server.base_url}/oauth2/v1/token", data=grant, auth=alpha.portal_auth, headers=at_host
    )
    assert_oauth_error(theirs, 401, "invalid_client")
    assert_oauth_error(token(alpha, grant, hosted.portal_auth), 401, "invalid_client")
    default = httpx.post(f"{server.base_url}/oauth2/v1/token", data=grant, auth=hosted.portal_auth)
    assert_oauth_error(default, 401, "invalid_client")
    # A resource server of the hosted domain (reaching https://<host> through the proxy's
    # stand-in) takes its token and refuses alpha's, of the same audience.
    proxy = httpx.Client(transport=ConnectTo(server.base_url), timeout=30)
    try:
        at_hosted = TokenValidator(f"https://{HOST}", AUDIENCE, http=proxy)
        assert not refused_by(at_hosted, hosted_token)
        assert refused_by(at_hosted, app_token(alpha))
        assert refused_by(resource_server(alpha), hosted_token)
    finally:
        proxy.close()
    # Its token is nothing to alpha; alpha's path is not served under the hosted domain's host.
    assert introspect(alpha, hosted_token, alpha.rs_auth).json() == {"active": False}
    assert_invalid_token(httpx.get(alpha.url("/oauth2/v1/userinfo"), headers=bearer(hosted_token)))
    crossed = httpx.post(
        f"{server.base_url}/domains/alpha/oauth2/v1/token",
        data=grant,
        auth=alpha.portal_auth,
        headers=at_host,
    )
    assert crossed.status_code == 404, crossed.text
    # Nor does the path of the hosted domain serve it (its URLs are its host's).
    assert_oauth_error(
        httpx.get(f"{server.base_url}/domains/hosted/.well-known/openid-configuration"),
        404,
        "unknown_domain",
    )
