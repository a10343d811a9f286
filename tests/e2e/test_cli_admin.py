"""The admin CLI, run as a real subprocess against a fresh SQLite data directory.

Issue 2, item 4 and "Must show": every command's `--json` output; bad input (bad redirect URIs,
duplicate names, empty or weak passwords, unknown scopes) exits 2 with a clear message on
stderr and writes nothing. docs/security.md rules 5 (redirect URIs at registration) and 23 (secrets
are shown once and stored only as hashes).

One data directory is shared by the module (each CLI call costs about half a second); a test
that changes it only adds what no other test looks at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import SECRET_KEY, base_env, run_cli, stored_data

PASSWORD = "Correct-Horse-Battery-9"
AUDIENCE = "https://integration.tessera.test"
SCOPE = "urn:opc:resource:consumer::all"
ORACLE_SCOPE = f"{AUDIENCE}:443{SCOPE}"
APP = "Integration client"
HEX_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Domain:
    data_dir: Path
    env: dict[str, str]
    alice: dict[str, Any]
    resource: dict[str, Any]
    app: dict[str, Any]


def cli_json(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    """Run `tessera … --json`, which must succeed, and parse what it prints."""
    return json.loads(run_cli(env, *args, "--json", input=input).stdout)


def refused(env: dict[str, str], *args: str, input: str | None = None) -> str:
    """Run `tessera … --json`, which must be refused as bad input; return the error message."""
    result = run_cli(env, *args, "--json", input=input, check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return str(json.loads(result.stderr.strip().splitlines()[-1])["error"])


def usernames(env: dict[str, str]) -> list[str]:
    return [u["username"] for u in cli_json(env, "admin", "users", "list")]


def app_names(env: dict[str, str]) -> list[str]:
    return [a["name"] for a in cli_json(env, "admin", "apps", "list")]


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    """A fresh data dir with a user, the integration resource and a confidential app."""
    data_dir = tmp_path_factory.mktemp("cli")
    env = base_env(data_dir)
    run_cli(env, "migrate")  # admin commands never create a database (issue 12)
    alice = cli_json(
        env,
        *("admin", "users", "create", "alice", "--password-stdin"),
        *("--name", "Alice Example", "--email", "alice@example.test"),
        input=PASSWORD + "\n",
    )
    resource = cli_json(
        env,
        *("admin", "resources", "create", "--name", "Integration service"),
        *("--audience", AUDIENCE, "--scope", SCOPE),
    )
    app = cli_json(
        env,
        *("admin", "apps", "create", "--name", APP),
        *("--redirect-uri", "https://app.example.test/cb"),
        *("--grant-type", "authorization_code", "--grant-type", "client_credentials"),
        *("--allow-scope", "openid", "--allow-scope", ORACLE_SCOPE),
    )
    return Domain(data_dir, env, alice, resource, app)


# --- users -------------------------------------------------------------------------------------


def test_users_create_json_prints_the_hex_id_and_the_username(domain: Domain) -> None:
    assert HEX_ID.fullmatch(domain.alice["id"])  # the `sub` of alice's tokens
    assert domain.alice["username"] == "alice"
    assert domain.alice["display_name"] == "Alice Example"
    assert domain.alice["email"] == "alice@example.test"
    assert domain.alice["is_admin"] is False
    assert domain.alice["disabled"] is False


def test_users_create_json_prints_no_password_or_hash(domain: Domain) -> None:
    printed = json.dumps(domain.alice)
    assert PASSWORD not in printed
    assert "argon2" not in printed and "password_hash" not in domain.alice


def test_users_list_json_lists_the_created_user(domain: Domain) -> None:
    (listed,) = [
        u for u in cli_json(domain.env, "admin", "users", "list") if u["username"] == "alice"
    ]
    assert listed == domain.alice


def test_users_show_json_finds_the_user_by_name_and_by_id(domain: Domain) -> None:
    assert cli_json(domain.env, "admin", "users", "show", "alice") == domain.alice
    assert cli_json(domain.env, "admin", "users", "show", domain.alice["id"]) == domain.alice


# --- resources ---------------------------------------------------------------------------------


def test_resources_create_json_prints_the_audience_and_its_oracle_scopes(domain: Domain) -> None:
    assert HEX_ID.fullmatch(domain.resource["id"])
    assert domain.resource["name"] == "Integration service"
    assert domain.resource["audience"] == AUDIENCE
    assert domain.resource["scopes"] == [SCOPE]
    assert domain.resource["oracle_scopes"] == [AUDIENCE + SCOPE]


# --- apps --------------------------------------------------------------------------------------


def test_apps_create_json_prints_the_client_id_and_the_client_secret(domain: Domain) -> None:
    assert HEX_ID.fullmatch(domain.app["client_id"])
    assert domain.app["type"] == "confidential"
    assert len(domain.app["client_secret"]) >= 43  # 256 bits, base64url
    assert domain.app["redirect_uris"] == ["https://app.example.test/cb"]
    assert domain.app["grant_types"] == ["authorization_code", "client_credentials"]


def test_apps_create_stores_the_oracle_scope_against_the_registered_audience(
    domain: Domain,
) -> None:
    assert domain.app["allowed_scopes"] == ["openid", AUDIENCE + SCOPE]


def test_apps_show_json_never_shows_the_secret(domain: Domain) -> None:
    result = run_cli(domain.env, "admin", "apps", "show", domain.app["client_id"], "--json")
    assert domain.app["client_secret"] not in result.stdout
    shown = json.loads(result.stdout)
    assert "client_secret" not in shown
    assert all(set(s) == {"created_at", "expires_at"} for s in shown["secrets"])


def test_apps_list_json_never_shows_the_secret(domain: Domain) -> None:
    result = run_cli(domain.env, "admin", "apps", "list", "--json")
    assert domain.app["client_secret"] not in result.stdout
    assert all("client_secret" not in app for app in json.loads(result.stdout))


def test_the_client_secret_is_not_stored_in_the_database_files(domain: Domain) -> None:
    stored = stored_data(domain.env, domain.data_dir)
    assert any(name.startswith(("tessera.db", "postgresql:")) for name in stored), list(stored)
    secret = domain.app["client_secret"].encode()
    for name, content in stored.items():  # the database (its WAL too), anything else written
        assert secret not in content, name


def test_a_public_app_has_no_secret(domain: Domain) -> None:
    app = cli_json(
        domain.env,
        *("admin", "apps", "create", "--name", "Native CLI", "--public"),
        *("--redirect-uri", "http://127.0.0.1/callback"),
    )
    assert app["type"] == "public"
    assert "client_secret" not in app
    assert app["secrets"] == []


def test_rotate_secret_returns_a_new_secret_and_keeps_the_old_one_for_the_grace(
    domain: Domain,
) -> None:
    rotated = cli_json(domain.env, "admin", "apps", "rotate-secret", APP, "--grace", "600")
    assert rotated["client_id"] == domain.app["client_id"]
    assert rotated["client_secret"] not in (None, domain.app["client_secret"])
    assert len(rotated["client_secret"]) >= 43
    current, previous = rotated["secrets"]
    assert current["expires_at"] is None
    assert previous["expires_at"] is not None  # the old secret works until then


# --- signing keys ------------------------------------------------------------------------------


def key_states(keys: list[dict[str, Any]], alg: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"active": [], "next": [], "retired": []}
    for key in keys:
        if key["alg"] == alg:
            found[key["state"]].append(key["kid"])
    return found


def test_keys_list_json_shows_one_active_and_one_next_key_per_algorithm(domain: Domain) -> None:
    keys = cli_json(domain.env, "admin", "keys", "list")
    for alg in ("ES256", "RS256"):
        found = key_states(keys, alg)
        assert (len(found["active"]), len(found["next"])) == (1, 1)
    assert all(set(k) >= {"kid", "alg", "state", "created_at", "retire_after"} for k in keys)
    assert not any("private" in field for key in keys for field in key)


def test_keys_rotate_signs_with_the_key_published_as_next(domain: Domain) -> None:
    before = key_states(cli_json(domain.env, "admin", "keys", "list"), "ES256")
    (rotated,) = cli_json(domain.env, "admin", "keys", "rotate", "--alg", "ES256")
    assert rotated["alg"] == "ES256"
    assert [rotated["active"]] == before["next"]
    after = key_states(cli_json(domain.env, "admin", "keys", "list"), "ES256")
    assert after["active"] == before["next"]
    assert after["next"] == [rotated["next"]]
    assert before["active"][0] in after["retired"]  # still published for its tokens


def test_keys_rotate_refuses_an_unknown_algorithm(domain: Domain) -> None:
    assert "unknown algorithm 'HS256'" in refused(
        domain.env, "admin", "keys", "rotate", "--alg", "HS256"
    )


# --- configuration -----------------------------------------------------------------------------


def test_config_show_json_redacts_the_secret_key(domain: Domain) -> None:
    result = run_cli(domain.env, "config", "show", "--json")
    assert SECRET_KEY not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["secret_key"] == "********"
    assert shown["data_dir"] == str(domain.data_dir)
    expected = domain.env.get(
        "TESSERA_DATABASE_URL", f"sqlite:///{domain.data_dir.resolve() / 'tessera.db'}"
    )
    assert shown["database_url"] == expected


# --- bad input: exit 2, a clear message, nothing written ---------------------------------------


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example.test/cb", "http: is allowed only for loopback"),
        ("javascript:alert(document.cookie)", "the javascript: scheme is not allowed"),
        ("https://app.example.test/cb#fragment", "must not contain a fragment"),
        ("https://*.example.test/cb", "wildcards are not allowed"),
    ],
)
def test_apps_create_refuses_a_bad_redirect_uri(domain: Domain, uri: str, reason: str) -> None:
    message = refused(
        domain.env, "admin", "apps", "create", "--name", "Refused app", "--redirect-uri", uri
    )
    assert message.startswith(f"redirect URI {uri!r}: ")
    assert reason in message
    assert "Refused app" not in app_names(domain.env)


def test_users_create_refuses_a_duplicate_username(domain: Domain) -> None:
    message = refused(
        domain.env, "admin", "users", "create", "alice", "--password-stdin", input=PASSWORD
    )
    assert message == "a user named 'alice' already exists"
    assert usernames(domain.env) == ["alice"]


def test_users_create_refuses_a_username_differing_only_in_case(domain: Domain) -> None:
    message = refused(
        domain.env, "admin", "users", "create", "ALICE", "--password-stdin", input=PASSWORD
    )
    assert message == "a user named 'ALICE' already exists"
    assert usernames(domain.env) == ["alice"]


def test_users_create_refuses_an_empty_password(domain: Domain) -> None:
    message = refused(domain.env, "admin", "users", "create", "bob", "--password-stdin", input="\n")
    assert message == "the password is empty"
    assert usernames(domain.env) == ["alice"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt-pw", "at least 12 characters"),
        ("qwerty123456", "too common"),
        ("bob-the-builder-2026", "must not contain the username"),
    ],
)
def test_users_create_refuses_a_weak_password(domain: Domain, password: str, reason: str) -> None:
    message = refused(
        domain.env, "admin", "users", "create", "bob", "--password-stdin", input=password + "\n"
    )
    assert reason in message
    assert usernames(domain.env) == ["alice"]


def test_a_refusal_without_json_is_one_readable_error_on_stderr(domain: Domain) -> None:
    args = ("admin", "users", "create", "bob", "--password-stdin")
    result = run_cli(domain.env, *args, input="Sh0rt-pw\n", check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: the password must have at least 12 characters")
    assert "Traceback" not in result.stderr


def test_apps_create_refuses_a_duplicate_name(domain: Domain) -> None:
    message = refused(
        domain.env,
        *("admin", "apps", "create", "--name", APP, "--redirect-uri", "https://other.test/cb"),
    )
    assert message == f"an app named {APP!r} already exists"
    apps = [a for a in cli_json(domain.env, "admin", "apps", "list") if a["name"] == APP]
    assert [a["client_id"] for a in apps] == [domain.app["client_id"]]
    assert apps[0]["redirect_uris"] == ["https://app.example.test/cb"]


@pytest.mark.parametrize(
    "audience", [AUDIENCE, "https://INTEGRATION.tessera.test:443/"], ids=["same", "respelled"]
)
def test_resources_create_refuses_a_duplicate_audience(domain: Domain, audience: str) -> None:
    message = refused(
        domain.env,
        *("admin", "resources", "create", "--name", "Second integration"),
        *("--audience", audience, "--scope", "other"),
    )
    assert message == f"a resource with the audience {audience!r} already exists"
    resources = cli_json(domain.env, "admin", "resources", "list")
    assert [r["id"] for r in resources] == [domain.resource["id"]]


def test_apps_create_refuses_an_unknown_scope(domain: Domain) -> None:
    message = refused(
        domain.env,
        *("admin", "apps", "create", "--name", "Refused app"),
        *("--redirect-uri", "https://app.example.test/cb"),
        *("--allow-scope", "https://unregistered.example.test:443" + SCOPE),
    )
    assert message.startswith("unknown scope 'https://unregistered.example.test:443")
    assert "Refused app" not in app_names(domain.env)


def test_apps_create_refuses_client_credentials_for_a_public_app(domain: Domain) -> None:
    message = refused(
        domain.env,
        *("admin", "apps", "create", "--name", "Refused app", "--public"),
        *("--grant-type", "client_credentials"),
    )
    assert message == "a public app cannot use client_credentials: it has no secret"
    assert "Refused app" not in app_names(domain.env)


# --- issue 12: edit, delete, piped output ------------------------------------------------------


def test_apps_update_edits_with_the_create_rules_and_refuses_bad_input(domain: Domain) -> None:
    app = cli_json(
        domain.env,
        *("admin", "apps", "create", "--name", "Editable CLI app"),
        *("--redirect-uri", "https://edit.example.test/cb"),
    )
    ref = app["client_id"]
    assert "javascript" in refused(
        domain.env, "admin", "apps", "update", ref, "--redirect-uri", "javascript:alert(1)"
    )
    assert "unknown scope" in refused(
        domain.env, "admin", "apps", "update", ref, "--scope", "https://nowhere.testx"
    )
    assert "already exists" in refused(domain.env, "admin", "apps", "update", ref, "--name", APP)
    assert "nothing to change" in refused(domain.env, "admin", "apps", "update", ref)
    assert "no app" in refused(domain.env, "admin", "apps", "update", "no-such-app", "--name", "x")
    edited = cli_json(
        domain.env,
        *("admin", "apps", "update", ref, "--redirect-uri", "https://edit.example.test/cb2"),
        *("--redirect-uri", "https://edit.example.test/cb3", "--scope", "openid"),
        *("--scope", AUDIENCE + SCOPE, "--access-ttl", "600", "--refresh-token-ttl", "7200"),
        *("--post-logout-redirect-uri", "https://edit.example.test/"),
    )
    assert edited["redirect_uris"] == [
        "https://edit.example.test/cb2",
        "https://edit.example.test/cb3",
    ]
    assert edited["allowed_scopes"] == ["openid", AUDIENCE + SCOPE]
    assert (edited["access_token_ttl"], edited["refresh_token_ttl"]) == (600, 7200)
    assert edited["post_logout_redirect_uris"] == ["https://edit.example.test/"]
    assert edited["version"] == app["version"] + 1
    assert edited["name"] == "Editable CLI app"  # what was not given is kept


def test_resources_update_renames_and_refuses_removing_a_scope_an_app_allows(
    domain: Domain,
) -> None:
    assert APP in refused(
        domain.env, "admin", "resources", "update", AUDIENCE, "--scope", "urn:other"
    )
    updated = cli_json(
        domain.env,
        *("admin", "resources", "update", AUDIENCE, "--name", "Integration service (renamed)"),
        *("--scope", SCOPE, "--scope", "urn:tessera:integration:monitor", "--access-ttl", "600"),
    )
    assert updated["name"] == "Integration service (renamed)"
    assert updated["scopes"] == [SCOPE, "urn:tessera:integration:monitor"]
    assert updated["access_token_ttl"] == 600
    assert updated["audience"] == AUDIENCE
    cleared = cli_json(domain.env, "admin", "resources", "update", AUDIENCE, "--no-access-token-ttl")
    assert cleared["access_token_ttl"] is None


def test_users_delete_removes_the_account_and_refuses_an_unknown_user(domain: Domain) -> None:
    created = cli_json(
        domain.env, "admin", "users", "create", "short-lived", "--password-stdin", input=PASSWORD
    )
    gone = cli_json(domain.env, "admin", "users", "delete", "short-lived")
    assert gone == {"deleted": created["id"], "username": "short-lived"}
    assert "short-lived" not in usernames(domain.env)
    assert "no user" in refused(domain.env, "admin", "users", "delete", "short-lived")


def test_piped_tables_print_full_ids_without_truncation_even_when_narrow(domain: Domain) -> None:
    """Rich once cut ids to fit 80 (or $COLUMNS) columns with an ellipsis when piped."""
    narrow = {**domain.env, "COLUMNS": "30"}
    users = run_cli(narrow, "admin", "users", "list").stdout
    assert "…" not in users and "..." not in users
    header, *rows = users.splitlines()
    assert header.split("\t")[:2] == ["username", "id (sub)"]
    assert ["alice", domain.alice["id"]] in [row.split("\t")[:2] for row in rows]
    apps = run_cli(narrow, "admin", "apps", "list").stdout
    assert "…" not in apps
    assert domain.app["client_id"] in apps.split()
    shown = run_cli(narrow, "admin", "apps", "show", APP).stdout
    assert f"client_id\t{domain.app['client_id']}" in shown.splitlines()
