"""Upstream sign-in providers through the admin API (issue 20, "Administration";
docs/federation.md): `/admin/v1/providers…` against a running node whose second identity
domain is the upstream OpenID provider (real discovery and JWKS). Creation checks the
upstream; `…/test` reports the discovery with a "try sign-in" URL; secrets are written, never
shown; private_key_jwt shows our public keys; every refusal is an RFC 9457 problem that writes
nothing; every change is audited; each domain has its own providers."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.admin import admin_client, console_token, domain_console_token
from tests.support.domains import ADMIN_PASSWORD as DOMAIN_ADMIN_PASSWORD
from tests.support.domains import create_domain
from tests.support.flow import Browser, demo_app
from tests.support.server import Server

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"
PROBLEM = "application/problem+json"
SECRET = "upstream-issued-Secret-0815"


@pytest.fixture(scope="module")
def upstream_domain(server: Server) -> dict[str, Any]:
    """A second identity domain on the same node: a real OpenID provider."""
    return create_domain(server, "upstream", display_name="Upstream Corp")


@pytest.fixture(scope="module")
def upstream(upstream_domain: dict[str, Any]) -> str:
    return str(upstream_domain["issuer"])


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    token = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    with admin_client(server.base_url, token) as client:
        yield client


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    return str(body["detail"])


def body(name: str, issuer: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "issuer": issuer, "client_id": f"{name}-client",
            "client_secret": SECRET, **extra}


def created(admin: httpx.Client, name: str, issuer: str, **extra: Any) -> dict[str, Any]:
    response = admin.post("/providers", json=body(name, issuer, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def eventually(check: Callable[[], bool]) -> None:
    """The audit sink writes in the background: wait for it."""
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, "the change was not audited"
        time.sleep(0.1)


def audited(admin: httpx.Client, type: str, provider_id: str) -> list[dict[str, Any]]:
    events = admin.get("/audit", params={"type": type}).json()["events"]
    return [e for e in events if e["details"].get("provider_id") == provider_id]


def test_the_openapi_description_documents_the_provider_routes(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/admin/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/providers"]) == {"get", "post"}
    assert set(paths["/providers/{provider}"]) == {"get", "patch", "delete"}
    assert set(paths["/providers/{provider}/test"]) == {"post"}
    assert {"400", "409"} <= set(paths["/providers"]["post"]["responses"])
    assert PROBLEM in paths["/providers/{provider}/test"]["post"]["responses"]["400"]["content"]
    schemas = spec["components"]["schemas"]
    out = set(schemas["ProviderOut"]["properties"])
    assert {"redirect_uri", "jwks", "has_client_secret", "linked_accounts"} <= out
    assert not {"client_secret", "secret_sealed", "private_key_sealed"} & out
    assert "client_secret" in schemas["ProviderCreate"]["properties"]
    assert "try_sign_in_url" in schemas["ProviderTestOut"]["properties"]


def test_a_token_is_needed(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/admin/v1/providers").status_code == 401
    posted = httpx.post(f"{server.base_url}/admin/v1/providers", json={})
    assert posted.status_code == 401


def test_providers_are_added_listed_shown_edited_and_removed(
    server: Server, admin: httpx.Client, upstream: str
) -> None:
    provider = created(
        admin, "corp", upstream, display_name="Corp SSO", email_domains=["Corp.Example.TEST"],
        scopes=["email", "groups"], groups_claim="groups", sync_groups=True,
    )
    assert provider["issuer"] == upstream and provider["enabled"] is True
    assert provider["redirect_uri"] == f"{server.base_url}/oauth2/v1/federation/corp/callback"
    assert provider["has_client_secret"] is True and provider["jwks"] == {"keys": []}
    assert provider["scopes"] == ["openid", "email", "groups"]
    assert provider["email_domains"] == ["corp.example.test"]
    assert provider["linked_accounts"] == 0 and provider["version"] == 1
    assert provider["sync_groups"] is True
    assert SECRET not in str(provider)

    assert [p["id"] for p in admin.get("/providers").json() if p["name"] == "corp"] == [
        provider["id"]
    ]
    assert admin.get("/providers/corp").json() == provider
    assert admin.get(f"/providers/{provider['id']}").json() == provider

    # Group sync reads the groups claim: the mapping cannot end while it is on.
    unmapped = admin.patch("/providers/corp", json={"groups_claim": None})
    assert "sync_groups needs a groups claim" in problem(unmapped, 400)
    assert admin.get("/providers/corp").json() == provider  # nothing written
    edited = admin.patch(
        "/providers/corp",
        json={"display_name": "Corp", "jit": False, "link_existing": True, "groups_claim": None,
              "sync_groups": False},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["sync_groups"] is False
    assert edited.json()["display_name"] == "Corp" and edited.json()["jit"] is False
    assert edited.json()["groups_claim"] is None and edited.json()["link_existing"] is True
    assert edited.json()["scopes"] == provider["scopes"]  # left out: kept
    disabled = admin.patch("/providers/corp", json={"enabled": False}).json()
    assert disabled["enabled"] is False
    rotated = admin.patch("/providers/corp", json={"client_secret": "the-next-one"}).json()
    assert rotated["has_client_secret"] is True and rotated["version"] > disabled["version"]

    gone = admin.delete("/providers/corp")
    assert gone.status_code == 200
    assert gone.json() == {"deleted": provider["id"], "name": "corp", "links_removed": 0}
    assert "no provider 'corp'" in problem(admin.get("/providers/corp"), 404)
    assert "no provider" in problem(admin.delete("/providers/corp"), 404)

    eventually(lambda: bool(audited(admin, "provider.deleted", provider["id"])))
    (made,) = audited(admin, "provider.created", provider["id"])
    assert made["details"]["issuer"] == upstream and SECRET not in str(made)
    changes = [e["details"]["changed"] for e in audited(admin, "provider.updated", provider["id"])]
    assert sorted(map(tuple, changes)) == [
        ("client_secret",),
        ("display_name", "groups_claim", "jit", "link_existing", "sync_groups"),
    ]
    assert audited(admin, "provider.disabled", provider["id"])


def test_the_sign_in_page_follows_each_change_at_once(
    server: Server, admin: httpx.Client, upstream: str
) -> None:
    # The node keeps its providers' list a moment for the sign-in page; the admin API's changes
    # reach this node's page at once (other nodes' within their cache's two seconds).
    browser = Browser(server.base_url)

    def buttons() -> bool:
        app = demo_app(server)
        page = browser.authorize(response_type="code", client_id=app["client_id"],
                                 redirect_uri=app["redirect_uri"], scope="openid", state="s")
        assert page.status_code == 200, page.text[:300]
        return "Sign in with Page SSO" in html.unescape(page.text)

    assert not buttons()  # the list is now cached
    created(admin, "page", upstream, display_name="Page SSO")
    assert buttons()
    assert admin.patch("/providers/page", json={"enabled": False}).status_code == 200
    assert not buttons()
    assert admin.patch("/providers/page", json={"enabled": True}).status_code == 200
    assert buttons()
    assert admin.delete("/providers/page").status_code == 200
    assert not buttons()


def test_test_checks_the_upstream_now_and_gives_a_try_sign_in_url(
    server: Server, admin: httpx.Client, upstream: str
) -> None:
    created(admin, "tested", upstream)
    response = admin.post("/providers/tested/test")
    assert response.status_code == 200, response.text
    result = response.json()
    check = result["check"]
    assert check["issuer"] == upstream and check["token_endpoint"] == f"{upstream}/oauth2/v1/token"
    assert check["iss_parameter_supported"] is True and check["auth_method_supported"] is True
    assert check["warnings"] == [] and check["key_ids"]
    served = httpx.get(check["jwks_uri"], timeout=10).json()
    assert sorted(check["key_ids"]) == sorted(k["kid"] for k in served["keys"])
    url = urlsplit(result["try_sign_in_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{server.base_url}/oauth2/v1/federation/tested/test"
    )
    # The API answers what the CLI prints (its response models drop nothing).
    printed = server.cli_json("admin", "providers", "test", "tested")
    assert set(printed) == set(result) and printed["check"] == check

    # The URL starts a test sign-in: off to the upstream's authorization endpoint as its client.
    started = httpx.get(result["try_sign_in_url"], follow_redirects=False, timeout=10)
    assert started.status_code == 303, started.text
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == check["authorization_endpoint"]
    sent = parse_qs(location.query)
    assert sent["client_id"] == ["tested-client"] and sent["code_challenge_method"] == ["S256"]
    assert sent["redirect_uri"] == [f"{server.base_url}/oauth2/v1/federation/tested/callback"]
    # Made for this provider only.
    created(admin, "other", upstream)
    moved = result["try_sign_in_url"].replace("/federation/tested/", "/federation/other/")
    assert httpx.get(moved, follow_redirects=False, timeout=10).status_code == 400

    # A provider saved without the check fails it later, with the reason.
    created(admin, "unreachable", f"{server.base_url}/domains/no-such-domain", check=False)
    assert "fails the discovery check" in problem(admin.post("/providers/unreachable/test"), 400)
    assert "no provider" in problem(admin.post("/providers/nobody/test"), 404)


def test_private_key_jwt_shows_our_public_keys(
    server: Server, admin: httpx.Client, upstream: str
) -> None:
    provider = created(admin, "keyed", upstream, auth_method="private_key_jwt", client_secret=None)
    (key,) = provider["jwks"]["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == provider["key_id"] and "d" not in key and "p" not in key
    assert provider["jwks_uri"] == f"{server.base_url}/oauth2/v1/federation/keyed/jwks"
    assert provider["has_client_secret"] is False
    rotated = admin.patch("/providers/keyed", json={"rotate_key": True}).json()
    assert rotated["key_id"] != provider["key_id"]
    assert "give no client secret" in problem(
        admin.patch("/providers/keyed", json={"client_secret": "x"}), 400
    )
    assert "needs the client secret" in problem(
        admin.patch("/providers/keyed", json={"auth_method": "client_secret_basic"}), 400
    )
    assert admin.get("/providers/keyed").json()["key_id"] == rotated["key_id"]


def test_bad_input_is_a_problem_and_writes_nothing(
    admin: httpx.Client, upstream: str
) -> None:
    created(admin, "taken", upstream, email_domains=["taken.test"])
    created(admin, "taken-two", upstream)
    before = admin.get("/providers").json()

    def refused(status: int, **fields: Any) -> str:
        values = body("refused", upstream)
        values.update(fields)
        return problem(admin.post("/providers", json=values), status)

    # OIDC Discovery §4.3: the document must name exactly the configured issuer.
    assert f"not {upstream}/" in refused(400, issuer=upstream + "/")
    assert "https" in refused(400, issuer="http://upstream.example.test")
    assert "no query" in refused(400, issuer=upstream + "?x=1")
    assert "lower-case letters" in refused(400, name="Refused")
    assert "already exists" in refused(409, name="taken")
    assert "taken.test already sends users" in refused(409, email_domains=["TAKEN.test"])
    assert "needs the client secret" in refused(400, client_secret=None)
    assert "not a scope" in refused(400, scopes=["two words"])
    extra = problem(admin.post("/providers", json={**body("x", upstream), "colour": "red"}), 400)
    assert "colour" in extra, extra
    none = problem(admin.post("/providers", json={**body("x", upstream), "auth_method": "none"}), 400)
    assert "auth_method" in none, none
    assert "already exists" in problem(
        admin.patch("/providers/taken-two", json={"name": "taken"}), 409
    )
    # A new issuer is checked as at creation.
    assert f"not {upstream}/" in problem(
        admin.patch("/providers/taken", json={"issuer": upstream + "/"}), 400
    )
    assert "not a key of ours" in problem(
        admin.patch("/providers/taken", json={"rotate_key": True}), 400
    )
    assert admin.get("/providers").json() == before


def test_each_domain_has_its_own_providers(
    server: Server, admin: httpx.Client, upstream_domain: dict[str, Any]
) -> None:
    token = domain_console_token(upstream_domain, "alice", DOMAIN_ADMIN_PASSWORD)
    with admin_client(upstream_domain["issuer"], token["access_token"]) as domain_admin:
        # The default domain as the upstream of the other domain.
        provider = created(domain_admin, "home", server.base_url)
        assert provider["redirect_uri"] == (
            f"{upstream_domain['issuer']}/oauth2/v1/federation/home/callback"
        )
        assert [p["name"] for p in domain_admin.get("/providers").json()] == ["home"]
        tested = domain_admin.post("/providers/home/test").json()
        assert tested["check"]["issuer"] == server.base_url
        assert tested["try_sign_in_url"].startswith(
            f"{upstream_domain['issuer']}/oauth2/v1/federation/home/test?ticket="
        )
    assert "no provider 'home'" in problem(admin.get("/providers/home"), 404)
