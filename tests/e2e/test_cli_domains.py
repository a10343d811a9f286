"""`tessera admin domains …` and `tessera admin --domain NAME …`, run as real subprocesses
against a running node (issue 14, "Interfaces"; docs/domains.md).

A domain's life round trip with `--json`; `--domain` scoping (users, audit); refusals (unknown
domain, reserved or taken names, the default domain); deletion leaves no row of the domain in
any table; the domain's `password_min_length`. On SQLite and on PostgreSQL
(`TESSERA_TEST_DB=postgresql`). Each test uses domains of its own names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.domains import (
    ADMIN_PASSWORD,
    create_domain,
    discovery_status,
    domain_cli,
    domain_rows,
    every_page,
    query,
)
from tests.support.server import Server, create_resource, run_cli

PASSWORD = "Correct-Horse-Battery-9"  # 23 characters
AUDIENCE = "https://api.doomed.test"
SCOPE = "read"


def refused(server: Server, *args: str, input: str | None = None, env: Any = None) -> str:
    """Run `tessera … --json`, which must be refused as bad input (exit 2, nothing on stdout,
    no traceback); return the error and its hint."""
    result = run_cli(env or server.env, *args, "--json", input=input, check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])
    return f"{error['error']} | {error.get('hint', '')}"


def eventually(check: Callable[[], bool]) -> None:
    """The node caches domain rows briefly (`DOMAIN_TTL_SECONDS`): wait for it to see a change."""
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, "the node did not see the change"
        time.sleep(0.2)


def audit_types(server: Server, domain_id: str) -> list[str]:
    return [
        str(r[0])
        for r in query(server, "SELECT type FROM audit_events WHERE domain_id = :id", id=domain_id)
    ]


# --- the round trip ------------------------------------------------------------------------------


def test_create_show_update_disable_enable_round_trip(server: Server) -> None:
    created = create_domain(server, "acme", display_name="Acme Corp")
    issuer = f"{server.base_url}/domains/acme"
    assert created["name"] == "acme"
    assert created["display_name"] == "Acme Corp"
    assert created["issuer"] == issuer
    assert created["discovery"] == f"{issuer}/.well-known/openid-configuration"
    assert created["console"] == f"{issuer}/console/"
    assert created["enabled"] is True and created["default"] is False
    assert created["host"] is None and created["settings"] == {}
    assert created["admin"]["username"] == "alice"
    assert ADMIN_PASSWORD not in json.dumps(created)

    # The node serves it at once (its keys and console app were created with it).
    discovery = httpx.get(created["discovery"], timeout=10).json()
    assert discovery["issuer"] == issuer
    assert httpx.get(discovery["jwks_uri"], timeout=10).json()["keys"]

    shown = server.cli_json("admin", "domains", "show", "acme")
    assert shown == {k: v for k, v in created.items() if k != "admin"}
    assert server.cli_json("admin", "domains", "show", created["id"]) == shown

    updated = server.cli_json(
        *("admin", "domains", "update", "acme", "--display-name", "Acme Inc."),
        *("--setting", "access_token_ttl=600", "--setting", "password_min_length=14"),
    )
    assert updated["display_name"] == "Acme Inc."
    assert updated["settings"] == {"access_token_ttl": 600, "password_min_length": 14}
    assert updated["version"] == shown["version"] + 1
    unset = server.cli_json("admin", "domains", "update", "acme", "--setting", "access_token_ttl=")
    assert unset["settings"] == {"password_min_length": 14}

    disabled = server.cli_json("admin", "domains", "disable", "acme")
    assert disabled["enabled"] is False and disabled["disabled_at"]
    eventually(lambda: discovery_status(server, "acme") == 403)
    answer = httpx.get(created["discovery"], timeout=10)
    assert answer.json()["error"] == "domain_disabled"
    # Operators still manage a disabled domain, told that it is disabled.
    result = server.cli("admin", "--domain", "acme", "users", "list", "--json")
    assert [u["username"] for u in json.loads(result.stdout)] == ["alice"]
    assert "disabled" in result.stderr

    enabled = server.cli_json("admin", "domains", "enable", "acme")
    assert enabled["enabled"] is True and enabled["disabled_at"] is None
    eventually(lambda: discovery_status(server, "acme") == 200)

    # Every change is audited in the default domain's log, where the operators are.
    operator_events = audit_types(server, "default")
    for event in ("created", "updated", "disabled", "enabled"):
        assert f"admin.domain_{event}" in operator_events


def test_list_pages_through_every_domain_in_name_order(server: Server) -> None:
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        create_domain(server, name, admin=None)
    seen, pages = every_page(
        lambda after: server.cli_json(
            "admin", "domains", "list", "--limit", "2", *(["--after", after] if after else [])
        ),
        2,
    )
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(names) <= set(seen) and "default" in seen
    assert pages >= 3
    everything = server.cli_json("admin", "domains", "list")
    assert [d["name"] for d in everything["domains"]] == seen
    assert everything["next_after"] is None


def test_bad_input_is_refused_with_exit_code_2(server: Server) -> None:
    assert "reserved" in refused(server, "admin", "domains", "create", "admin")
    assert "lower-case letters" in refused(server, "admin", "domains", "create", "bad_name")
    create_domain(server, "taken", admin=None)
    assert "already exists" in refused(server, "admin", "domains", "create", "taken")
    assert "unknown domain settings" in refused(
        server, "admin", "domains", "create", "other", "--setting", "colour=7"
    )
    assert "whole number" in refused(
        server, "admin", "domains", "create", "other", "--setting", "session_ttl=long"
    )
    assert "at least 30" in refused(
        server, "admin", "domains", "update", "taken", "--setting", "access_token_ttl=5"
    )
    assert "not a host name" in refused(
        server, "admin", "domains", "update", "taken", "--host", "http://x.test/"
    )
    assert "cannot be disabled" in refused(server, "admin", "domains", "disable", "default")
    assert "cannot be deleted" in refused(server, "admin", "domains", "delete", "default", "--yes")
    assert "no identity domain 'ghost'" in refused(server, "admin", "domains", "show", "ghost")
    assert "other" not in [
        d["name"] for d in server.cli_json("admin", "domains", "list")["domains"]
    ]


def test_a_host_is_claimed_and_released(server: Server) -> None:
    created = create_domain(server, "movable", admin=None)
    host = "login.movable.test"
    assert "not both" in refused(
        server, "admin", "domains", "update", "movable", "--host", host, "--no-host"
    )

    def issuer_at_host() -> str:
        url = f"{server.base_url}/.well-known/openid-configuration"
        return str(httpx.get(url, headers={"Host": host}, timeout=10).json()["issuer"])

    claimed = server.cli_json("admin", "domains", "update", "movable", "--host", host)
    assert claimed["host"] == host and claimed["issuer"] == f"https://{host}"
    # Its console app follows the new issuer; the node serves it at its host only.
    console = domain_cli(server, "movable", "apps", "show", f"tessera-console-{created['id']}")
    assert console["redirect_uris"] == [f"https://{host}/console/"]
    eventually(lambda: issuer_at_host() == f"https://{host}")
    assert discovery_status(server, "movable") == 404

    released = server.cli_json("admin", "domains", "update", "movable", "--no-host")
    assert released["host"] is None and released["issuer"] == created["issuer"]
    console = domain_cli(server, "movable", "apps", "show", f"tessera-console-{created['id']}")
    assert console["redirect_uris"] == [created["console"]]
    eventually(lambda: discovery_status(server, "movable") == 200)
    assert issuer_at_host() == server.base_url


# --- --domain ------------------------------------------------------------------------------------


def test_users_of_a_domain_are_its_own(server: Server) -> None:
    one = create_domain(server, "scope-one")
    two = create_domain(server, "scope-two")
    carol_one = domain_cli(
        server, "scope-one", "users", "create", "carol", "--password-stdin", input=PASSWORD
    )
    carol_two = domain_cli(
        server, "scope-two", "users", "create", "carol", "--password-stdin", input=PASSWORD
    )
    assert carol_one["id"] != carol_two["id"]  # same name, two users
    assert one["admin"]["id"] != two["admin"]["id"]

    listed = {u["username"]: u["id"] for u in domain_cli(server, "scope-one", "users", "list")}
    assert listed == {"alice": one["admin"]["id"], "carol": carol_one["id"]}
    by_id = domain_cli(server, two["id"], "users", "show", "carol")  # --domain takes an id too
    assert by_id["id"] == carol_two["id"]
    default_users = [u["id"] for u in server.cli_json("admin", "users", "list")]
    assert carol_one["id"] not in default_users and carol_two["id"] not in default_users
    assert "no user 'carol'" in refused(server, "admin", "users", "show", "carol")

    # TESSERA_DOMAIN is the same as --domain.
    env = {**server.env, "TESSERA_DOMAIN": "scope-two"}
    result = run_cli(env, "admin", "users", "show", "carol", "--json")
    assert json.loads(result.stdout)["id"] == carol_two["id"]

    # The audit events land in the log of the domain that was changed.
    assert "admin.user_created" in audit_types(server, one["id"])
    assert "admin.user_created" in audit_types(server, two["id"])
    two_log = query(server, "SELECT * FROM audit_events WHERE domain_id = :id", id=two["id"])
    assert carol_one["id"] not in json.dumps(two_log, default=str)


def test_an_unknown_domain_is_refused_with_a_hint(server: Server) -> None:
    message = refused(server, "admin", "--domain", "nowhere", "users", "list")
    assert "no identity domain 'nowhere'" in message
    assert "tessera admin domains list" in message
    env = {**server.env, "TESSERA_DOMAIN": "nowhere"}
    assert "nowhere" in refused(server, "admin", "apps", "list", env=env)


# --- delete --------------------------------------------------------------------------------------


def test_delete_removes_every_row_of_the_domain(server: Server) -> None:
    doomed = create_domain(server, "doomed")
    keeper = create_domain(server, "keeper")
    domain_id = doomed["id"]
    domain_cli(server, "doomed", "users", "create", "bob", "--password-stdin", input=PASSWORD)
    create_resource(server, "API", AUDIENCE, SCOPE, domain=doomed)
    app = domain_cli(
        server, "doomed", "apps", "create", "--name", "Worker",
        "--grant-type", "client_credentials", "--allow-scope", AUDIENCE + SCOPE,
    )  # fmt: skip
    token = httpx.post(
        f"{doomed['issuer']}/oauth2/v1/token",
        data={"grant_type": "client_credentials", "scope": AUDIENCE + SCOPE},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    domain_cli(server, "doomed", "tokens", "revoke", "--user", "bob")
    domain_cli(server, "doomed", "keys", "rotate")
    before = domain_rows(server, domain_id)
    for table in ("domains", "users", "clients", "resources", "signing_keys", "audit_events"):
        assert before[table] > 0, (table, before)
    kept = domain_rows(server, keeper["id"])

    # Without a terminal to ask in, a confirmation is needed.
    assert "--yes" in refused(server, "admin", "domains", "delete", "doomed", input="")
    assert server.cli_json("admin", "domains", "show", "doomed")["enabled"] is True

    gone = server.cli_json("admin", "domains", "delete", "doomed", "--yes")
    assert gone["deleted"] == "doomed" and gone["id"] == domain_id
    assert gone["rows"] >= sum(before.values()) - before["domains"]  # its data's rows

    assert set(domain_rows(server, domain_id).values()) == {0}  # its own row too
    assert domain_rows(server, keeper["id"]) == kept  # another domain keeps everything
    assert "no identity domain 'doomed'" in refused(server, "admin", "domains", "show", "doomed")
    names = [d["name"] for d in server.cli_json("admin", "domains", "list")["domains"]]
    assert "doomed" not in names and "keeper" in names
    assert "no identity domain" in refused(server, "admin", "--domain", "doomed", "users", "list")
    assert "admin.domain_deleted" in audit_types(server, "default")

    # The node stops serving it and whatever it issued.
    eventually(lambda: discovery_status(server, "doomed") == 404)
    introspected = httpx.post(
        f"{doomed['issuer']}/oauth2/v1/introspect",
        data={"token": token.json()["access_token"]},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert introspected.status_code == 404
    assert introspected.json()["error"] == "unknown_domain"

    # The name can be taken again, by a new domain with a new id and nothing of the old one.
    again = create_domain(server, "doomed", admin=None)
    assert again["id"] != domain_id
    assert domain_cli(server, "doomed", "users", "list") == []


# --- the domain's password policy ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["create", "users"])
def test_the_domains_password_min_length_is_enforced(server: Server, where: str) -> None:
    name = f"strict-{where}"
    fourteen = "Tessera-Pw-142"  # passes the default policy (12), not a minimum of 16
    assert len(fourteen) == 14
    args = ["admin", "domains", "create", name, "--setting", "password_min_length=16"]
    if where == "create":
        # The first administrator is held to the new domain's policy; nothing is created.
        message = refused(
            server, *args, "--admin", "root", "--admin-password-stdin", input=fourteen
        )
        assert "at least 16 characters" in message
        assert "no identity domain" in refused(server, "admin", "domains", "show", name)
    create_domain(server, name, admin=("root", PASSWORD), settings={"password_min_length": 16})

    users = ("admin", "--domain", name, "users")
    message = refused(server, *users, "create", "dave", "--password-stdin", input=fourteen)
    assert "at least 16 characters" in message
    assert [u["username"] for u in domain_cli(server, name, "users", "list")] == ["root"]
    domain_cli(server, name, "users", "create", "dave", "--password-stdin", input=PASSWORD)
    message = refused(server, *users, "set-password", "dave", "--password-stdin", input=fourteen)
    assert "at least 16 characters" in message

    # The default domain keeps its own policy; without the setting the domain does too.
    if where == "users":
        server.cli_json(
            "admin", "users", "create", "erin-" + name, "--password-stdin", input=fourteen
        )
    server.cli_json("admin", "domains", "update", name, "--setting", "password_min_length=")
    domain_cli(server, name, "users", "set-password", "dave", "--password-stdin", input=fourteen)
