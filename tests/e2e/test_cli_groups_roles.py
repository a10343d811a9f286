"""`tessera admin groups …`, `tessera admin roles …` and resources' roles, run as real
subprocesses against a fresh data directory (issue 19, item 4): every command's `--json`, the
tables for people, and bad input (an unknown user, a taken group name, a role the resource does
not declare, a role not held, a declared role still granted) exits 2 with a message that says
what to do, writing nothing. `--domain` selects another identity domain as for every admin
command (docs/groups-and-roles.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import base_env, run_cli

PASSWORD = "Correct-Horse-Battery-9"
AUDIENCE = "https://integration.tessera.test"
RESOURCE = "Integration service"


@dataclass(frozen=True)
class Domain:
    data_dir: Path
    env: dict[str, str]
    resource: dict[str, Any]
    users: dict[str, dict[str, Any]]


def cli_json(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    return json.loads(run_cli(env, *args, "--json", input=input).stdout)


def refused(env: dict[str, str], *args: str) -> dict[str, str]:
    """Run `tessera … --json`, refused as bad input: the error and its hint."""
    result = run_cli(env, *args, "--json", check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    return dict(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    data_dir = tmp_path_factory.mktemp("cli-groups")
    env = base_env(data_dir)
    run_cli(env, "migrate")
    users = {
        name: cli_json(env, "admin", "users", "create", name, "--password-stdin",
                       input=PASSWORD + "\n")
        for name in ("alice", "bob", "carol")
    }
    resource = cli_json(
        env,
        *("admin", "resources", "create", "--name", RESOURCE, "--audience", AUDIENCE),
        *("--scope", "urn:opc:resource:consumer::all"),
        *("--role", "ServiceDeveloper=Builds and deploys integrations"),
        *("--role", "ServiceMonitor", "--include-groups"),
    )
    return Domain(data_dir, env, resource, users)


def test_resources_declare_roles_and_the_groups_claim(domain: Domain) -> None:
    assert domain.resource["roles"] == [
        {"name": "ServiceDeveloper", "description": "Builds and deploys integrations"},
        {"name": "ServiceMonitor", "description": ""},
    ]
    assert domain.resource["include_groups"] is True
    shown = run_cli(domain.env, "admin", "resources", "show", RESOURCE).stdout
    assert "ServiceDeveloper\tBuilds and deploys integrations" in shown
    listed = run_cli(domain.env, "admin", "resources", "list").stdout
    assert "ServiceDeveloper, ServiceMonitor" in listed
    error = refused(domain.env, "admin", "resources", "update", RESOURCE, "--role", "Bad Name")
    assert "not a role name" in error["error"]


def test_groups_create_list_show_update_and_delete(domain: Domain) -> None:
    created = cli_json(domain.env, "admin", "groups", "create", "Auditors",
                       "--description", "Read the books", "--member", "alice")
    assert created["name"] == "Auditors" and created["description"] == "Read the books"
    assert [m["username"] for m in created["members"]] == ["alice"]
    assert created["roles"] == []
    (listed,) = [g for g in cli_json(domain.env, "admin", "groups", "list")
                 if g["name"] == "Auditors"]
    assert listed["member_count"] == 1 and listed["id"] == created["id"]
    table = run_cli(domain.env, "admin", "groups", "list").stdout
    assert f"Auditors\t{created['id']}\t1\tRead the books" in table

    assert "already exists" in refused(domain.env, "admin", "groups", "create", "auditors")["error"]
    updated = cli_json(domain.env, "admin", "groups", "update", "auditors",
                       "--name", "Internal audit")
    assert updated["name"] == "Internal audit" and updated["id"] == created["id"]
    nothing = refused(domain.env, "admin", "groups", "update", "Internal audit")
    assert nothing["error"] == "nothing to change" and "--name" in nothing["hint"]

    gone = cli_json(domain.env, "admin", "groups", "delete", created["id"])
    assert gone == {"deleted": created["id"], "name": "Internal audit", "tokens_revoked": False}
    missing = refused(domain.env, "admin", "groups", "show", "Internal audit")
    assert missing["error"] == "no group 'Internal audit'"
    assert "tessera admin groups list" in missing["hint"]


def test_members_are_added_and_removed(domain: Domain) -> None:
    cli_json(domain.env, "admin", "groups", "create", "Operators")
    added = cli_json(domain.env, "admin", "groups", "add-member", "Operators", "bob", "carol")
    assert [m["username"] for m in added["members"]] == ["bob", "carol"]
    error = refused(domain.env, "admin", "groups", "add-member", "Operators", "dave")
    assert error["error"] == "no user 'dave'" and "tessera admin users list" in error["hint"]
    shown = cli_json(domain.env, "admin", "groups", "show", "Operators")
    assert [m["username"] for m in shown["members"]] == ["bob", "carol"]  # nothing written
    removed = cli_json(domain.env, "admin", "groups", "remove-member", "Operators", "carol",
                       "--revoke-tokens")
    assert [m["username"] for m in removed["members"]] == ["bob"]
    assert removed["tokens_revoked"] is True
    people = run_cli(domain.env, "admin", "groups", "show", "Operators").stdout
    assert "bob\tbob\t" + domain.users["bob"]["id"] in people


def test_roles_are_granted_listed_shown_and_revoked(domain: Domain) -> None:
    cli_json(domain.env, "admin", "groups", "create", "Developers", "--member", "alice")
    granted = cli_json(domain.env, "admin", "roles", "grant", RESOURCE, "ServiceDeveloper",
                       "--group", "developers")
    assert granted["principal_kind"] == "group" and granted["principal_name"] == "Developers"
    assert granted["resource"] == AUDIENCE and granted["granted_by"].startswith("cli:")
    cli_json(domain.env, "admin", "roles", "grant", AUDIENCE, "ServiceMonitor", "--user", "alice")
    again = refused(domain.env, "admin", "roles", "grant", RESOURCE, "ServiceMonitor",
                    "--user", "alice")
    assert "already has the role" in again["error"]
    undeclared = refused(domain.env, "admin", "roles", "grant", RESOURCE, "ServiceInvoker",
                         "--user", "bob")
    assert "declares no role 'ServiceInvoker'" in undeclared["error"]
    assert "ServiceDeveloper, ServiceMonitor" in undeclared["error"]
    both = refused(domain.env, "admin", "roles", "grant", RESOURCE, "ServiceMonitor",
                   "--user", "bob", "--group", "Developers")
    assert both["error"] == "give exactly one of --user, --group or --app"

    mine = cli_json(domain.env, "admin", "roles", "list", "--user", "alice")
    assert [(g["role"], g["principal_name"]) for g in mine] == [("ServiceMonitor", "alice")]
    every = cli_json(domain.env, "admin", "roles", "list", "--resource", RESOURCE)
    assert {(g["role"], g["principal_kind"]) for g in every} == {
        ("ServiceDeveloper", "group"), ("ServiceMonitor", "user")}
    effective = cli_json(domain.env, "admin", "roles", "show-user", "alice",
                         "--resource", RESOURCE)
    assert effective["roles"] == ["ServiceDeveloper", "ServiceMonitor"]
    assert effective["groups"] == ["Developers"]
    table = run_cli(domain.env, "admin", "roles", "show-user", "alice",
                    "--resource", RESOURCE).stdout
    assert f"alice\t{RESOURCE}\tServiceDeveloper, ServiceMonitor\tDevelopers" in table
    group_roles = cli_json(domain.env, "admin", "groups", "show", "Developers")["roles"]
    assert [g["role"] for g in group_roles] == ["ServiceDeveloper"]

    still = refused(domain.env, "admin", "resources", "update", RESOURCE,
                    "--role", "ServiceMonitor")
    assert "still granted: ServiceDeveloper" in still["error"]
    assert "tessera admin roles revoke" in still["error"]

    revoked = cli_json(domain.env, "admin", "roles", "revoke", RESOURCE, "ServiceMonitor",
                       "--user", "alice", "--revoke-tokens")
    assert revoked["role"] == "ServiceMonitor" and revoked["revoked_grants"] == 0
    not_held = refused(domain.env, "admin", "roles", "revoke", RESOURCE, "ServiceMonitor",
                       "--user", "alice")
    assert not_held["error"] == (
        f"'alice' does not have the role 'ServiceMonitor' on '{RESOURCE}'")
    printed = run_cli(domain.env, "admin", "roles", "revoke", RESOURCE, "ServiceDeveloper",
                      "--group", "Developers").stdout
    assert "Revoked ServiceDeveloper on Integration service from group Developers" in printed
    assert cli_json(domain.env, "admin", "roles", "list") == []
    dropped = cli_json(domain.env, "admin", "resources", "update", RESOURCE, "--no-roles",
                       "--no-include-groups")
    assert dropped["roles"] == [] and dropped["include_groups"] is False


def test_an_unknown_principal_or_resource_says_where_to_look(domain: Domain) -> None:
    app = refused(domain.env, "admin", "roles", "grant", RESOURCE, "ServiceMonitor",
                  "--app", "Nowhere")
    assert app["error"] == "no app 'Nowhere'" and "tessera admin apps list" in app["hint"]
    resource = refused(domain.env, "admin", "roles", "list", "--resource", "Nowhere")
    assert "tessera admin resources list" in resource["hint"]


def test_groups_live_in_the_domain_chosen_with_domain(domain: Domain) -> None:
    cli_json(domain.env, "admin", "domains", "create", "acme")
    made = cli_json(domain.env, "admin", "--domain", "acme", "groups", "create", "Acme team")
    assert [g["id"] for g in cli_json(domain.env, "admin", "--domain", "acme",
                                      "groups", "list")] == [made["id"]]
    assert "Acme team" not in [g["name"] for g in cli_json(domain.env, "admin", "groups", "list")]
