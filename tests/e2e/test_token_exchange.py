"""Token exchange (RFC 8693; docs/security.md rule 56) over HTTP: a user's token for resource A
(the integration service's audience) becomes, for an app an administrator allowed, a token for
resource B with the user as `sub` and the app in `act`, accepted by B's resource server
(`tessera.resource` on loopback); refused when the app or the target is not allowed, when the
scope widens, when the subject token is revoked or of another identity domain; and revoking the
user reaches the exchanged token at B's resource server, which follows the feed, within 1 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.admin import console_token, domain_console_token
from tests.support.backend import Backend
from tests.support.domains import ADMIN_PASSWORD as DOMAIN_ADMIN_PASSWORD
from tests.support.domains import create_domain
from tests.support.flow import demo_auth, token_request, user_tokens
from tests.support.server import Server, create_resource

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
CONSUMER = "urn:opc:resource:consumer::all"
ORDERS = "https://orders.tessera.test"  # resource B
REPORTS = "https://reports.tessera.test"  # registered, never allowed as a target
ALICE = ("alice", "Wonderland-Demo-2026")
BOB = ("bob", "Green-Meadow-Kite-2026")
ADMIN_PASSWORD = "Tessera-Demo-Root-2026"  # the demo administrator's


@pytest.fixture(scope="module")
def apps(server: Server) -> dict[str, tuple[str, str]]:
    """B and another resource; the gateway (resource server of A, allowed to exchange for B)
    and B's own resource server app (it follows the feed)."""
    for audience, name in ((ORDERS, "Orders"), (REPORTS, "Reports")):
        create_resource(server, name, audience, CONSUMER, "orders.write")
    gateway = server.cli_json(
        "admin", "apps", "create", "--name", "Gateway", "--grant-type", "client_credentials",
        "--allow-scope", f"{ORDERS}{CONSUMER}", "--allow-scope", f"{ORDERS}orders.write",
        "--allow-scope", f"{REPORTS}{CONSUMER}",
        "--resource-server-for", server.demo["resource"]["audience"])  # fmt: skip
    allowed = server.cli_json("admin", "apps", "token-exchange", "Gateway", "--audience", ORDERS)
    assert allowed["grant_types"] == ["client_credentials", TOKEN_EXCHANGE]
    assert allowed["token_exchange_audiences"] == [ORDERS]
    assert allowed["token_exchange_impersonation"] is False
    orders_api = server.cli_json(
        "admin", "apps", "create", "--name", "Orders API", "--grant-type", "client_credentials",
        "--resource-server-for", ORDERS)  # fmt: skip
    server.cli("admin", "users", "create", BOB[0], "--password-stdin", input=f"{BOB[1]}\n")
    return {
        "gateway": (gateway["client_id"], gateway["client_secret"]),
        "orders_api": (orders_api["client_id"], orders_api["client_secret"]),
    }


@pytest.fixture(scope="module")
def backend(server: Server, apps: dict[str, tuple[str, str]]) -> Iterator[Backend]:
    found = Backend(server.issuer, ORDERS, feed=apps["orders_api"]).start()
    try:
        yield found
    finally:
        found.stop()


def user_token(server: Server, who: tuple[str, str]) -> str:
    """A token of the user for A, from the code flow of the demo app."""
    scope = server.demo["resource"]["scope"]
    return str(user_tokens(server, *who, scope=scope)["access_token"])


def exchange(server: Server, creds: tuple[str, str], subject: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN,
        "audience": ORDERS,
        **form,
    }
    return token_request(server.base_url, data, auth=creds)


def error_of(response: httpx.Response) -> str:
    assert response.status_code in (400, 401), response.text
    return str(response.json()["error"])


def introspect(server: Server, creds: tuple[str, str], token: str) -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}/oauth2/v1/introspect", auth=creds,
                          data={"token": token})  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def call(backend: Backend, token: str) -> httpx.Response:
    return httpx.get(f"{backend.url}/orders/7", headers={"Authorization": f"Bearer {token}"})


def test_a_user_token_for_a_is_exchanged_for_a_token_for_b_with_act(
    server: Server, apps: dict[str, tuple[str, str]], backend: Backend
) -> None:
    assert TOKEN_EXCHANGE in httpx.get(
        f"{server.base_url}/.well-known/openid-configuration"
    ).json()["grant_types_supported"]
    subject = user_token(server, ALICE)
    assert call(backend, subject).status_code == 401  # A's token is not for B
    response = exchange(server, apps["gateway"], subject)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN and body["token_type"] == "Bearer"
    assert body["scope"] == CONSUMER and "refresh_token" not in body
    gateway = apps["gateway"][0]
    seen = call(backend, body["access_token"])
    assert seen.status_code == 200, seen.text
    assert seen.json() == {
        "sub": server.demo["user"]["sub"],
        "sub_type": "user",
        "client_id": gateway,
        "act": {"sub": gateway},
        "scope": [CONSUMER],
        "jkt": None,
    }
    answer = introspect(server, apps["orders_api"], body["access_token"])
    assert answer["active"] and answer["act"] == {"sub": gateway}
    assert answer["sub"] == server.demo["user"]["sub"] and answer["aud"] == ORDERS
    # The audit log names both identities: the user, the app and its `act`.
    event = audit(server, type="token.issued", client_id=gateway)[0]  # newest first
    assert event["user_id"] == server.demo["user"]["sub"]
    assert event["details"]["grant_type"] == TOKEN_EXCHANGE
    assert event["details"]["act"] == {"sub": gateway}


def audit(server: Server, **query: str) -> list[dict[str, Any]]:
    admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    response = httpx.get(f"{server.base_url}/admin/v1/audit", params=query,
                         headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_refused_when_the_app_or_the_target_is_not_allowed(
    server: Server, apps: dict[str, tuple[str, str]]
) -> None:
    subject = user_token(server, ALICE)
    # The demo app, the token's own client, is not allowed the grant.
    assert error_of(exchange(server, demo_auth(server), subject)) == "unauthorized_client"
    assert error_of(exchange(server, apps["gateway"], subject, audience=REPORTS)) == (
        "invalid_target"
    )
    unknown = exchange(server, apps["gateway"], subject, audience="https://unknown.test")
    assert error_of(unknown) == "invalid_target"
    unparsable = exchange(server, apps["gateway"], subject, resource="http://[::1")
    assert error_of(unparsable) == "invalid_target"
    # No longer allowed: refused; allowed again: works.
    server.cli_json("admin", "apps", "token-exchange", "Gateway", "--off")
    deadline = time.monotonic() + 10  # apps are cached for about two seconds
    while (answer := exchange(server, apps["gateway"], subject)).status_code == 200:
        assert time.monotonic() < deadline, "the app kept exchanging tokens"
        time.sleep(0.2)
    assert error_of(answer) == "unauthorized_client"
    admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
    again = httpx.put(
        f"{server.base_url}/admin/v1/apps/Gateway/token-exchange",
        json={"audiences": [ORDERS]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["token_exchange_audiences"] == [ORDERS]
    assert TOKEN_EXCHANGE in again.json()["grant_types"]
    assert exchange(server, apps["gateway"], subject).status_code == 200  # the cache was cleared


def test_refused_when_the_scope_widens(server: Server, apps: dict[str, tuple[str, str]]) -> None:
    subject = user_token(server, ALICE)  # consumer::all of A only
    wider = exchange(server, apps["gateway"], subject, scope=f"{CONSUMER} orders.write")
    assert error_of(wider) == "invalid_scope"
    narrow = exchange(server, apps["gateway"], subject, scope=f"{ORDERS}{CONSUMER}")
    assert narrow.status_code == 200 and narrow.json()["scope"] == CONSUMER


def test_refused_when_the_subject_token_is_revoked(
    server: Server, apps: dict[str, tuple[str, str]]
) -> None:
    subject = user_token(server, ALICE)
    revoked = httpx.post(f"{server.base_url}/oauth2/v1/revoke", auth=demo_auth(server),
                         data={"token": subject})  # fmt: skip
    assert revoked.status_code == 200
    refused = exchange(server, apps["gateway"], subject)
    assert error_of(refused) == "invalid_request"  # RFC 8693 §2.2.2
    assert "revoked" in refused.json()["error_description"]
    events = audit(server, type="token.refused")
    named = [e for e in events if e["details"]["reason"] == "subject_token is revoked"]
    assert named and named[0]["client_id"] == apps["gateway"][0]  # the authenticated app


def test_refused_for_a_token_of_another_domain(
    server: Server, apps: dict[str, tuple[str, str]]
) -> None:
    other = create_domain(server, "elsewhere", admin=("carol", DOMAIN_ADMIN_PASSWORD))
    foreign = domain_console_token(other, "carol", DOMAIN_ADMIN_PASSWORD)["access_token"]
    refused = exchange(server, apps["gateway"], foreign)
    assert error_of(refused) == "invalid_request"
    assert "of this domain" in refused.json()["error_description"]


def test_revoking_the_user_reaches_the_exchanged_token_at_b_within_a_second(
    server: Server, apps: dict[str, tuple[str, str]], backend: Backend
) -> None:
    subject = user_token(server, BOB)
    exchanged = exchange(server, apps["gateway"], subject)
    assert exchanged.status_code == 200, exchanged.text
    token = exchanged.json()["access_token"]
    assert call(backend, token).status_code == 200
    alice = exchange(server, apps["gateway"], user_token(server, ALICE)).json()["access_token"]
    bob_sub = call(backend, token).json()["sub"]
    admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]

    started = time.monotonic()
    revoked = httpx.post(f"{server.base_url}/admin/v1/users/{bob_sub}/revoke-tokens",
                         headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert introspect(server, apps["orders_api"], token) == {"active": False}  # at once
    refused_after = None
    while time.monotonic() - started < 5:
        if call(backend, token).status_code == 401:
            refused_after = time.monotonic() - started
            break
        time.sleep(0.02)
    assert refused_after is not None, "B's resource server kept accepting the token"
    assert refused_after < 1.0, f"refused only after {refused_after:.3f} s"
    assert call(backend, alice).status_code == 200  # another user's exchanged token works
    # And the revoked user's token cannot be exchanged again.
    assert error_of(exchange(server, apps["gateway"], subject)) == "invalid_request"
