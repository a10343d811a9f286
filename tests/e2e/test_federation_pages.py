"""The federation pages without an upstream provider (docs/federation.md), over HTTP against
the real server: the sign-in page's provider buttons (enabled providers only), home-realm
discovery at the sign-in form and at the authorization endpoint, our public keys for
`private_key_jwt`, and the refusals that need no upstream: an unknown or disabled provider, an
unreachable one, a callback without the browser's sealed request, and a forged test ticket —
each a page that says what went wrong, creating, linking and signing in nothing.
(The round trips through real upstreams are in tests/e2e/test_federation*.py of the tests.)"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tessera.context import Context
from tessera.domain.model import FederatedIdentity, UpstreamProvider
from tessera.oauth.federation.secrets import PROVIDER_KEY_PURPOSE, new_client_key
from tests.e2e.test_account_pages import Account, new_user
from tests.e2e.test_federation import last_refusal, refusal_detail
from tests.support.flow import Browser, demo_app, form_fields, query_of
from tests.support.server import Server, free_port

DOMAIN = "corp.example"


def _provider(ctx: Context, name: str, **fields: object) -> UpstreamProvider:
    now = ctx.clock()
    values: dict[str, object] = {
        "id": "up_" + secrets.token_hex(8),
        "name": name,
        "display_name": name.replace("-", " ").title(),
        # Nothing listens there: a start must fail at discovery, with a page.
        "issuer": f"http://127.0.0.1:{free_port()}/{name}",
        "client_id": "tessera-" + name,
        "auth_method": "client_secret_basic",
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    provider = UpstreamProvider(**values)  # type: ignore[arg-type]
    ctx.store.upstream_providers.add(provider)
    return provider


@pytest.fixture(scope="module")
def providers(server: Server) -> Iterator[dict[str, UpstreamProvider]]:
    """Made before any page of the module is shown (the sign-in page caches the list 2 s)."""
    with server.store_context() as ctx:
        keyed_id = "up_" + secrets.token_hex(8)
        sealed, kid = new_client_key(ctx.subkey(PROVIDER_KEY_PURPOSE), keyed_id)
        made = {
            "corp": _provider(ctx, "corp", display_name="Corp SSO", email_domains=(DOMAIN,)),
            "off": _provider(ctx, "off", display_name="Old SSO", enabled=False),
            "keyed": _provider(
                ctx,
                "keyed",
                id=keyed_id,
                display_name="Keyed SSO",
                auth_method="private_key_jwt",
                private_key_sealed=sealed,
                key_id=kid,
            ),
        }
        yield made


def _counts(server: Server) -> tuple[int, int]:
    """Users, and links of every provider."""
    with server.store_context() as ctx:
        links = sum(
            ctx.store.federated_identities.count_for_provider(p.id)
            for p in ctx.store.upstream_providers.list()
        )
        return len(ctx.store.users.list()), links


def _login_page(browser: Browser, server: Server, **extra: str) -> httpx.Response:
    app = demo_app(server)
    page = browser.authorize(
        response_type="code",
        client_id=app["client_id"],
        redirect_uri=app["redirect_uri"],
        scope="openid",
        state="s1",
        **extra,
    )
    return page


def test_the_sign_in_page_has_a_button_per_enabled_provider(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    page = _login_page(browser, server)
    assert page.status_code == 200, page.text[:500]
    text = html.unescape(page.text)
    assert 'id="sign-in-providers"' in text
    assert "Sign in with Corp SSO" in text and "Sign in with Keyed SSO" in text
    assert "Old SSO" not in text  # disabled
    authz = form_fields(page.text)["authz"]
    found = re.search(r'id="provider-corp" href="([^"]+)"', text)
    assert found, text[:800]
    start = found.group(1)
    assert urlsplit(start).path == "/oauth2/v1/federation/corp/start"
    assert query_of(start)["authz"] == authz
    # A provider claims an e-mail domain: the password may be left empty.
    assert "Username or work e-mail" in text and 'id="home-realm-note"' in text


def test_an_address_of_a_providers_domain_goes_to_that_provider(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    page = _login_page(browser, server)
    fields = form_fields(page.text)
    sent = browser.http.post(
        "/oauth2/v1/login",
        data={**fields, "username": f"Ada@{DOMAIN.upper()}", "password": ""},
    )
    assert sent.status_code == 303, sent.text[:500]
    location = sent.headers["location"]
    assert urlsplit(location).path == "/oauth2/v1/federation/corp/start"
    assert query_of(location)["login_hint"] == f"Ada@{DOMAIN.upper()}"
    assert query_of(location)["authz"] == fields["authz"]
    # Another address signs in here, and an empty password is asked for, not counted.
    other = browser.http.post(
        "/oauth2/v1/login", data={**fields, "username": "ada@elsewhere.example", "password": ""}
    )
    assert other.status_code == 400 and "Enter your password." in other.text
    # Not a subdomain nor a look-alike.
    for username in (f"ada@mail.{DOMAIN}", f"ada@evil-{DOMAIN}"):
        refused = browser.http.post(
            "/oauth2/v1/login", data={**fields, "username": username, "password": "wrong"}
        )
        assert refused.status_code == 401, username


def test_a_login_hint_of_a_providers_domain_skips_the_sign_in_page(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    hinted = _login_page(browser, server, login_hint=f"bob@{DOMAIN}")
    assert hinted.status_code == 302, hinted.text[:500]
    location = hinted.headers["location"]
    assert urlsplit(location).path == "/oauth2/v1/federation/corp/start"
    assert query_of(location)["login_hint"] == f"bob@{DOMAIN}"
    plain = _login_page(browser, server, login_hint="bob@elsewhere.example")
    assert plain.status_code == 200 and 'value="bob@elsewhere.example"' in plain.text


def test_our_public_keys_for_private_key_jwt(
    server: Server, providers: dict[str, UpstreamProvider]
) -> None:
    keyed = httpx.get(f"{server.base_url}/oauth2/v1/federation/keyed/jwks")
    assert keyed.status_code == 200
    assert keyed.headers["content-type"].startswith("application/json")
    (key,) = keyed.json()["keys"]
    assert key["kid"] == providers["keyed"].key_id
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # never the private parts
    none = httpx.get(f"{server.base_url}/oauth2/v1/federation/corp/jwks")
    assert none.status_code == 200 and none.json() == {"keys": []}
    unknown = httpx.get(f"{server.base_url}/oauth2/v1/federation/nobody/jwks")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_an_unknown_or_disabled_provider_does_not_start(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    for name in ("nobody", "off"):
        page = browser.http.get(f"/oauth2/v1/federation/{name}/start")
        assert page.status_code == 404, name
        assert "Unknown sign-in provider" in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_an_unreachable_provider_is_a_page_back_to_sign_in(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    page = _login_page(browser, server)
    authz = form_fields(page.text)["authz"]
    started = browser.http.get("/oauth2/v1/federation/corp/start", params={"authz": authz})
    assert started.status_code == 502, started.text[:500]
    assert "Corp SSO is not available" in started.text
    assert 'id="back-link"' in started.text and "Back to sign-in" in started.text
    assert browser.http.cookies.get("tessera_federation") is None  # nothing in flight
    # An expired or altered request is refused before the provider is asked.
    stale = browser.http.get("/oauth2/v1/federation/corp/start", params={"authz": "client_id=x"})
    assert stale.status_code == 400 and "not valid any more" in stale.text


def test_a_callback_without_the_browsers_request_creates_nothing(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    before = _counts(server)
    audited = last_refusal(server)
    answer = browser.http.get(
        "/oauth2/v1/federation/corp/callback",
        params={"code": "c" * 43, "state": "s" * 43, "iss": providers["corp"].issuer},
    )
    assert answer.status_code == 400
    assert "Sign-in not completed" in answer.text
    assert "not started in this browser" in answer.text
    assert "tessera_session" not in answer.headers.get("set-cookie", "")
    assert _counts(server) == before
    assert refusal_detail(server, audited) == "no valid federation cookie"
    # A cookie that is not ours is the same page, refused because the cookie does not open.
    audited = last_refusal(server)
    browser.http.cookies.set("tessera_federation", "forged", path="/oauth2/v1/federation")
    forged = browser.http.get(
        "/oauth2/v1/federation/corp/callback", params={"code": "c", "state": "s"}
    )
    assert forged.status_code == 400 and "not started in this browser" in forged.text
    assert _counts(server) == before
    assert refusal_detail(server, audited) == "the cookie is not valid"


def test_a_forged_test_ticket_is_refused(
    server: Server, providers: dict[str, UpstreamProvider], browser: Browser
) -> None:
    page = browser.http.get("/oauth2/v1/federation/corp/test", params={"ticket": "forged"})
    assert page.status_code == 400
    assert "This test link is not valid" in page.text


def test_the_account_page_lists_linked_providers_and_unlinks(
    server: Server, providers: dict[str, UpstreamProvider]
) -> None:
    username = new_user(server, email="linked@example.com")
    with server.store_context() as ctx:
        user = ctx.store.users.get_by_username(username)
        assert user is not None
        ctx.store.federated_identities.link(
            FederatedIdentity(
                provider_id=providers["corp"].id,
                subject="corp-sub-1",
                user_id=user.id,
                created_at=ctx.clock() - timedelta(days=1),
                email="linked@corp.example",
            )
        )
    account = Account(server.base_url, username)
    try:
        page = account.get("/account/security")
        assert page.status_code == 200, page.text[:500]
        text = html.unescape(page.text)
        assert "Linked sign-in providers" in text and 'id="linked-providers"' in text
        assert "linked@corp.example" in text
        assert 'id="link-keyed"' in text and "Link Keyed SSO" in text
        assert 'id="link-corp"' not in text  # linked already
        removed = account.post(
            "/account/security/providers/unlink",
            page,
            provider_id=providers["corp"].id,
            subject="corp-sub-1",
        )
        assert removed.status_code == 303, removed.text[:500]
        assert removed.headers["location"].endswith("?done=provider-unlinked")
        shown = account.http.get(removed.headers["location"])
        assert "unlinked from your account" in shown.text
        assert 'id="linked-providers"' not in shown.text
        # Not the user's link (any more): refused with the page.
        again = account.post(
            "/account/security/providers/unlink",
            shown,
            provider_id=providers["corp"].id,
            subject="corp-sub-1",
        )
        assert again.status_code == 400 and "not linked to your account" in again.text
        # Linking: an unknown provider is refused on the page; an unreachable one is a page
        # back to the account, with nothing linked.
        unknown = account.post("/account/security/providers/link", shown, provider="nobody")
        assert unknown.status_code == 404 and "not available" in unknown.text
        down = account.post("/account/security/providers/link", shown, provider="corp")
        assert down.status_code == 502, down.text[:500]
        assert "Corp SSO is not available" in down.text and "Back to your account" in down.text
    finally:
        account.close()
