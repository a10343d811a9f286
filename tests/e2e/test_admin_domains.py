"""Identity domains through the admin API (docs/domains.md): operators manage them at
`/admin/v1/domains` and act inside any domain, audited there as `operator:<sub>`; a domain's
administrators manage only it, and their tokens are refused by every other domain."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.admin import (
    admin_client,
    console_token,
    domain_console_token,
    operator_token,
)
from tests.support.domains import every_page
from tests.support.server import Server

ROOT_PASSWORD = "Tessera-Demo-Root-2026"  # the demo's default-domain administrator `admin`
ADMIN = ("alice", "Violet-Harbor-Lantern-58")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def operator(server: Server) -> Iterator[httpx.Client]:
    """The default domain's admin API with an operator's token (admin and operator scopes)."""
    token = operator_token(server.base_url, "admin", ROOT_PASSWORD)["access_token"]
    with admin_client(server.base_url, token) as client:
        yield client


@pytest.fixture(scope="module")
def operator_sub(operator: httpx.Client) -> str:
    sub: str = operator.get("/users/admin").json()["id"]
    return sub


def _name(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(3)}"


def _create(operator: httpx.Client, name: str, *, admin: bool = True, **body: Any
            ) -> dict[str, Any]:
    if admin:
        body["admin"] = {"username": ADMIN[0], "password": ADMIN[1]}
    response = operator.post("/domains", json={"name": name, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _as(operator: httpx.Client, issuer: str) -> httpx.Client:
    """The operator's token at another domain's admin API."""
    return admin_client(issuer, operator.headers["authorization"].removeprefix("Bearer "))


def _problem(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["status"] == status, body
    return body


def _events(client: httpx.Client, **query: str) -> list[dict[str, Any]]:
    response = client.get("/audit", params=query)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _logged(client: httpx.Client, wanted: Callable[[list[dict[str, Any]]], bool],
            **query: str) -> list[dict[str, Any]]:
    """The audit events once `wanted` holds of them: the node's audit flusher may be writing
    the last event while the audit endpoint's own flush finds the queue empty."""
    for _ in range(50):
        events = _events(client, **query)
        if wanted(events):
            return events
        time.sleep(0.1)
    return events


def test_an_operator_creates_shows_changes_disables_enables_and_deletes_a_domain(
        server: Server, operator: httpx.Client, operator_sub: str) -> None:
    name = _name("crud")
    created = _create(operator, name, display_name="Crud Corp",
                      settings={"access_token_ttl": 600})
    assert created["issuer"] == f"{server.base_url}/domains/{name}"
    assert created["display_name"] == "Crud Corp" and created["enabled"] is True
    assert created["default"] is False and created["host"] is None
    assert created["settings"] == {"access_token_ttl": 600}
    assert created["admin"]["username"] == ADMIN[0]
    assert created["discovery"] == f"{created['issuer']}/.well-known/openid-configuration"
    shown = {k: v for k, v in created.items() if k != "admin"}
    assert operator.get(f"/domains/{name}").json() == shown
    assert operator.get(f"/domains/{created['id']}").json() == shown  # by id too
    # The same view as the CLI's, field for field.
    assert server.cli_json("admin", "domains", "show", name) == shown

    changed = operator.patch(f"/domains/{name}", json={
        "display_name": "Crud Corporation", "settings": {"access_token_ttl": None,
                                                         "session_ttl": 1800}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] == "Crud Corporation"
    assert changed.json()["settings"] == {"session_ttl": 1800}
    assert changed.json()["version"] > created["version"]

    disabled = operator.post(f"/domains/{name}/disable")
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert disabled.json()["disabled_at"]
    enabled = operator.post(f"/domains/{name}/enable")
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True

    deleted = operator.delete(f"/domains/{name}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] == name and deleted.json()["rows"] > 0
    _problem(operator.get(f"/domains/{name}"), 404, "not_found")
    _problem(operator.delete(f"/domains/{name}"), 404, "not_found")

    # Each change is audited in the default domain's log, where the operators are.
    kinds = {"admin.domain_created", "admin.domain_updated", "admin.domain_disabled",
             "admin.domain_enabled", "admin.domain_deleted"}

    def of_domain(events: list[dict[str, Any]]) -> dict[str, str]:
        return {e["type"]: e["actor"] for e in events if e["details"].get("domain") == name}

    actors = of_domain(_logged(operator, lambda events: set(of_domain(events)) >= kinds))
    assert set(actors) >= kinds, actors
    assert set(actors.values()) == {f"operator:{operator_sub}"}


def test_the_domain_list_is_paged_in_name_order(operator: httpx.Client) -> None:
    stem = _name("page")
    names = [f"{stem}-{i}" for i in range(3)]
    for name in names:
        _create(operator, name, admin=False)

    def fetch(after: str | None) -> dict[str, Any]:
        page = operator.get("/domains", params={"limit": 2, **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        body: dict[str, Any] = page.json()
        return body

    seen, pages = every_page(fetch, 2)
    assert pages >= 2 and seen == sorted(seen) and len(set(seen)) == len(seen)
    assert set(names) <= set(seen)
    for bad in ("0", "1001", "x"):
        _problem(operator.get("/domains", params={"limit": bad}), 400, "invalid_request")
    for bad in ("a\u0000b", "a\nb", "z" * 256):
        _problem(operator.get("/domains", params={"after": bad}), 400, "invalid_request")
    # Any printable `after` is a place in the name order (the console finds names by prefix).
    found = operator.get("/domains", params={"after": stem + "-0" + "z" * 63, "limit": 1})
    assert [d["name"] for d in found.json()["domains"]] == [names[1]]
    assert operator.get("/domains", params={"after": "é~%"}).status_code == 200


def test_an_administrator_without_the_operator_scope_cannot_manage_domains(
        server: Server, operator: httpx.Client) -> None:
    token = console_token(server.base_url, "admin", ROOT_PASSWORD)["access_token"]
    with admin_client(server.base_url, token) as plain:
        assert plain.get("/users").status_code == 200  # still the default domain's admin
        for response in (plain.get("/domains"),
                         plain.post("/domains", json={"name": _name("nope")}),
                         plain.get("/domains/anything"),
                         plain.post("/domains/anything/disable"),
                         plain.delete("/domains/anything")):
            _problem(response, 403, "insufficient_scope")
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        # And a plain default-domain admin is not an operator in another domain.
        created = _create(operator, _name("plain"), admin=False)
        with _as(plain, created["issuer"]) as elsewhere:
            _problem(elsewhere.get("/users"), 401, "invalid_token")
    _problem(httpx.get(f"{server.base_url}/admin/v1/domains"), 401, "invalid_token")


def test_a_token_with_the_operator_scope_alone_is_an_operator_everywhere(
        server: Server, operator: httpx.Client, operator_sub: str) -> None:
    token = operator_token(server.base_url, "admin", ROOT_PASSWORD, admin=False)
    assert token["scope"].split() == ["openid", "profile", "urn:tessera:operator"]
    domain = _create(operator, _name("only-op"), admin=False)
    for issuer in (server.base_url, domain["issuer"]):
        with admin_client(issuer, token["access_token"]) as client:
            made = client.post("/users", json={"username": "dora",
                                               "password": "Amber-Lighthouse-Gravel-64"})
            assert made.status_code == 201, made.text
            events = _logged(client, bool, type="admin.user_created", user_id=made.json()["id"])
            assert [e["actor"] for e in events] == [f"operator:{operator_sub}"]
    with admin_client(server.base_url, token["access_token"]) as client:
        assert client.get("/domains", params={"limit": 1}).status_code == 200


def test_a_domain_administrator_token_is_refused_by_every_other_domain(
        server: Server, operator: httpx.Client) -> None:
    a = _create(operator, _name("iso-a"))
    b = _create(operator, _name("iso-b"))
    token = domain_console_token(a, *ADMIN)["access_token"]
    with admin_client(a["issuer"], token) as at_a:
        users = at_a.get("/users")
        assert users.status_code == 200, users.text
        assert [u["username"] for u in users.json()] == [ADMIN[0]]
        _problem(at_a.get("/domains"), 404, "not_found")  # domains: the default domain's only
    for issuer in (b["issuer"], server.base_url):
        with admin_client(issuer, token) as elsewhere:
            for response in (elsewhere.get("/users"), elsewhere.get("/audit"),
                             elsewhere.post("/users", json={"username": "x", "password": "y"}),
                             elsewhere.get("/domains")):
                _problem(response, 401, "invalid_token")
                assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # B's own administrator is refused by A just the same.
    b_token = domain_console_token(b, *ADMIN)["access_token"]
    with admin_client(a["issuer"], b_token) as at_a:
        _problem(at_a.get("/users"), 401, "invalid_token")


def test_an_operator_acting_in_a_domain_is_audited_there(
        operator: httpx.Client, operator_sub: str) -> None:
    domain = _create(operator, _name("acting"))
    with _as(operator, domain["issuer"]) as there:
        created = there.post("/users", json={"username": "bob",
                                             "password": "Copper-Meadow-Kettle-31"})
        assert created.status_code == 201, created.text
        bob = created.json()["id"]
        assert sorted(u["username"] for u in there.get("/users").json()) == ["alice", "bob"]
        events = _logged(there, bool, type="admin.user_created", user_id=bob)
        assert [e["actor"] for e in events] == [f"operator:{operator_sub}"]
        _problem(there.get("/domains"), 404, "not_found")
    # The domain's own administrator reads the same event in its log; the default domain's
    # log and users know nothing of it.
    own = domain_console_token(domain, *ADMIN)["access_token"]
    with admin_client(domain["issuer"], own) as admin_there:
        events = _events(admin_there, type="admin.user_created", user_id=bob)
        assert [e["actor"] for e in events] == [f"operator:{operator_sub}"]
    assert _events(operator, type="admin.user_created", user_id=bob) == []
    _problem(operator.get(f"/users/{bob}"), 404, "not_found")


def test_a_disabled_domain_answers_domain_disabled_until_enabled(
        server: Server, operator: httpx.Client) -> None:
    domain = _create(operator, _name("off"))
    discovery = domain["discovery"]
    with _as(operator, domain["issuer"]) as there:
        assert there.get("/users").status_code == 200
        assert httpx.get(discovery).status_code == 200
        assert operator.post(f"/domains/{domain['name']}/disable").status_code == 200
        for response in (there.get("/users"), there.post("/users", json={}),
                         httpx.get(discovery)):
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "domain_disabled"
        assert operator.post(f"/domains/{domain['name']}/enable").status_code == 200
        assert there.get("/users").status_code == 200
        assert httpx.get(discovery).json()["issuer"] == domain["issuer"]


def test_a_deleted_domain_is_gone_and_its_name_can_be_taken_again(
        server: Server, operator: httpx.Client) -> None:
    name = _name("gone")
    old = _create(operator, name)
    old_token = domain_console_token(old, *ADMIN)["access_token"]
    with _as(operator, old["issuer"]) as there:
        assert there.post("/users", json={"username": "carol", "password":
                                          "Silver-Orchard-Bridge-77"}).status_code == 201
    assert operator.delete(f"/domains/{name}").json()["deleted"] == name
    for response in (httpx.get(old["discovery"]),
                     httpx.get(f"{old['issuer']}/admin/v1/users",
                               headers={"Authorization": f"Bearer {old_token}"})):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "unknown_domain"

    new = _create(operator, name, admin=False)
    assert new["id"] != old["id"] and new["issuer"] == old["issuer"]
    with _as(operator, new["issuer"]) as there:
        assert there.get("/users").json() == []  # neither alice nor carol
        _problem(there.get("/users/carol"), 404, "not_found")
    # The old administrator's token names the same issuer but none of the new domain's keys.
    with admin_client(new["issuer"], old_token) as stale:
        _problem(stale.get("/users"), 401, "invalid_token")


def test_invalid_and_conflicting_domains_are_refused(
        server: Server, operator: httpx.Client) -> None:
    name = _name("dup")
    _create(operator, name, admin=False)
    _problem(operator.post("/domains", json={"name": name}), 409, "conflict")
    _problem(operator.post("/domains", json={"name": name.upper()}), 409, "conflict")
    for bad in ("Bad_Name!", "-x", "a" * 64, "admin", "default", "", "x\u0000y"):
        _problem(operator.post("/domains", json={"name": bad}), 400, "invalid_request")
    for body in ({"name": _name("x"), "colour": "red"},  # a misspelt field is refused
                 {"name": _name("x"), "host": "not a host"},
                 {"name": _name("x"), "host": "127.0.0.1"},
                 {"name": _name("x"), "settings": {"access_token_ttl": 1}},
                 {"name": _name("x"), "settings": {"no_such": 5}},
                 {"name": _name("x"), "settings": {"access_token_ttl": True}},
                 {"name": _name("x"), "admin": {"username": "a"}},
                 {"name": _name("x"), "admin": {"username": "a\u0000b", "password": ADMIN[1]}},
                 {"name": _name("x"), "admin": {**dict(zip(("username", "password"), ADMIN,
                                                           strict=True)), "email": "a\u0000b"}},
                 {"name": _name("x"), "display_name": "a\u0000b"},
                 {"name": 5}):
        _problem(operator.post("/domains", json=body), 400, "invalid_request")
    host = f"{_name('login')}.example.test"
    first = _create(operator, _name("host-a"), admin=False, host=host)
    assert first["host"] == host and first["issuer"] == f"https://{host}"
    _problem(operator.post("/domains", json={"name": _name("host-b"), "host": host.upper()}),
             409, "conflict")
    other = _create(operator, _name("host-c"), admin=False)
    _problem(operator.patch(f"/domains/{other['name']}", json={"host": host}), 409, "conflict")
    _problem(operator.patch("/domains/no-such-domain", json={}), 404, "not_found")
    for ref in ("a%00b", "a%09b", "x" * 300):  # no domain's name or id
        _problem(operator.get(f"/domains/{ref}"), 400, "invalid_request")
        _problem(operator.delete(f"/domains/{ref}"), 400, "invalid_request")
    # A NUL in any reference or filter is bad input, not a database error (PostgreSQL).
    for response in (operator.get("/users/a%00b"), operator.get("/audit", params={"type": "\0"}),
                     operator.post("/domains/a%00b/disable")):
        _problem(response, 400, "invalid_request")
    _problem(operator.post("/domains/default/disable"), 400, "invalid_request")
    _problem(operator.delete("/domains/default"), 400, "invalid_request")
    _problem(
        operator.patch("/domains/default", json={"settings": {"access_token_ttl": 600}}),
        400,
        "invalid_request",
    )


def test_an_operator_acts_in_a_domain_with_its_own_host_name(
        server: Server, operator: httpx.Client, operator_sub: str) -> None:
    host = f"{_name('id')}.example.test"
    domain = _create(operator, _name("hosted"), host=host)
    token = operator.headers["authorization"]
    users = httpx.get(f"{server.base_url}/admin/v1/users",
                      headers={"Host": host, "Authorization": token})
    assert users.status_code == 200, users.text
    assert [u["username"] for u in users.json()] == [ADMIN[0]]
    # Served at its host only: not under the base URL's /domains/<name>.
    moved = httpx.get(f"{server.base_url}/domains/{domain['name']}/admin/v1/users",
                      headers={"Authorization": token})
    assert moved.status_code == 404 and moved.json()["error"] == "unknown_domain"


def test_the_openapi_description_is_each_domains_own(
        server: Server, operator: httpx.Client) -> None:
    spec = httpx.get(f"{server.base_url}/admin/v1/openapi.json").json()
    description = spec["info"]["description"]
    assert "urn:tessera:operator" in description and "operator:<sub>" in description
    assert "/domains/<name>/admin/v1" in description
    domain_ops = {(method, path) for path, item in spec["paths"].items()
                  for method, op in item.items() if "domains" in op["tags"]}
    assert domain_ops == {("get", "/domains"), ("post", "/domains"), ("get", "/domains/{domain}"),
                          ("patch", "/domains/{domain}"), ("delete", "/domains/{domain}"),
                          ("post", "/domains/{domain}/disable"),
                          ("post", "/domains/{domain}/enable")}
    domain = _create(operator, _name("spec"), admin=False)
    theirs = httpx.get(f"{domain['issuer']}/admin/v1/openapi.json").json()
    assert theirs["servers"] == [{"url": f"/domains/{domain['name']}/admin/v1"}]
    assert f"`{domain['issuer']}/admin`" in theirs["info"]["description"]
    assert not any(path.startswith("/domains") for path in theirs["paths"])
    assert set(theirs["paths"]) == set(spec["paths"]) - {p for _, p in domain_ops}
