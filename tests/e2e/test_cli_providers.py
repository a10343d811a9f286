"""`tessera admin providers …` (issue 20, "Administration"; docs/federation.md), run as real
subprocesses against a running node whose second identity domain is the upstream OpenID
provider: its issuer serves real discovery and JWKS, so `add` checks them and `test` reports
them with a "try sign-in" URL. Every command's `--json`; the client secret from stdin or
`TESSERA_PROVIDER_SECRET`, never shown nor stored in the clear; private_key_jwt with a key of
ours; bad input (a wrong or unreachable issuer, a taken name or e-mail domain, a missing
secret) exits 2 with a message and writes nothing; `--domain` scoping; every change audited.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.domains import create_domain, query
from tests.support.server import Server, run_cli, stored_data

SECRET = "upstream-issued-Secret-4711"


@pytest.fixture(scope="module")
def upstream(server: Server) -> str:
    """The issuer of a second identity domain on the same node: a real OpenID provider."""
    created = create_domain(server, "upstream", display_name="Upstream Corp")
    return str(created["issuer"])


def cli_json(server: Server, *args: str, input: str | None = None, **env: str) -> Any:
    result = run_cli({**server.env, **env}, *args, "--json", input=input)
    return json.loads(result.stdout)


def refused(server: Server, *args: str, input: str | None = None, **env: str) -> str:
    """`tessera … --json` refused as bad input: exit 2, nothing on stdout, the error."""
    result = run_cli({**server.env, **env}, *args, "--json", input=input, check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])
    return f"{error['error']} | {error.get('hint', '')}"


def add(server: Server, name: str, issuer: str, *args: str, secret: str = SECRET) -> Any:
    return cli_json(
        server,
        *("admin", "providers", "add", name, "--issuer", issuer, "--client-id", f"{name}-client"),
        "--client-secret-stdin",
        *args,
        input=secret + "\n",
    )


def provider_events(server: Server, provider_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The audit events of the provider, oldest first: (type, details)."""
    rows = query(
        server,
        "SELECT type, CAST(details AS TEXT) FROM audit_events WHERE type LIKE 'provider.%' "
        "ORDER BY id",
    )
    found = [(str(t), json.loads(d)) for t, d in rows]
    return [(t, d) for t, d in found if d.get("provider_id") == provider_id]


def names(server: Server, *domain: str) -> list[str]:
    return [p["name"] for p in cli_json(server, "admin", *domain, "providers", "list")]


def test_add_checks_the_upstream_and_shows_what_to_register(
    server: Server, upstream: str
) -> None:
    view = add(
        server,
        "corp",
        upstream,
        *("--display-name", "Corp SSO", "--email-domain", "Corp.Example.TEST"),
        *("--groups-claim", "groups", "--scope", "email", "--scope", "groups"),
    )
    assert view["name"] == "corp" and view["issuer"] == upstream
    assert view["display_name"] == "Corp SSO" and view["enabled"] is True
    assert view["redirect_uri"] == f"{server.base_url}/oauth2/v1/federation/corp/callback"
    assert view["auth_method"] == "client_secret_basic" and view["has_client_secret"] is True
    assert view["jwks"] == {"keys": []} and view["jwks_uri"] is None
    assert view["scopes"] == ["openid", "email", "groups"]
    assert view["email_domains"] == ["corp.example.test"] and view["linked_accounts"] == 0
    assert view["created_by"].startswith("cli:")
    assert SECRET not in json.dumps(view)

    assert cli_json(server, "admin", "providers", "show", "corp") == view
    assert cli_json(server, "admin", "providers", "show", view["id"])["name"] == "corp"
    assert "corp" in names(server)
    table = run_cli(server.env, "admin", "providers", "list").stdout
    assert "corp\tCorp SSO\t" + upstream in table
    shown = run_cli(server.env, "admin", "providers", "show", "corp").stdout
    assert f"Redirect URI to register at the provider: {view['redirect_uri']}" in shown

    # Never in the clear at rest: the database files hold the sealed secret only.
    for name, data in stored_data(server.env, server.data_dir).items():
        assert SECRET.encode() not in data, name


def test_test_reports_the_discovery_and_a_try_sign_in_url(server: Server, upstream: str) -> None:
    add(server, "tested", upstream)
    result = cli_json(server, "admin", "providers", "test", "tested")
    check = result["check"]
    assert check["issuer"] == upstream
    assert check["authorization_endpoint"] == f"{upstream}/oauth2/v1/authorize"
    assert check["token_endpoint"] == f"{upstream}/oauth2/v1/token"
    assert check["iss_parameter_supported"] is True
    assert "S256" in check["code_challenge_methods_supported"]
    assert check["auth_method_supported"] is True and check["warnings"] == []
    assert check["key_ids"] and "RS256" in check["id_token_signing_alg_values_supported"]
    # The upstream's JWKS, as the upstream serves it.
    served = httpx.get(check["jwks_uri"], timeout=10).json()
    assert sorted(check["key_ids"]) == sorted(k["kid"] for k in served["keys"])

    url = urlsplit(result["try_sign_in_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{server.base_url}/oauth2/v1/federation/tested/test"
    )
    assert parse_qs(url.query)["ticket"]
    started = httpx.get(result["try_sign_in_url"], follow_redirects=False, timeout=10)
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith(check["authorization_endpoint"] + "?")
    assert "client_id=tested-client" in started.headers["location"]
    people = run_cli(server.env, "admin", "providers", "test", "tested").stdout
    assert "Try a sign-in through it" in people and result["try_sign_in_url"][:60] in people


def test_private_key_jwt_uses_a_key_of_ours(server: Server, upstream: str) -> None:
    view = cli_json(
        server,
        *("admin", "providers", "add", "keyed", "--issuer", upstream, "--client-id", "k"),
        *("--auth-method", "private_key_jwt"),
    )
    (key,) = view["jwks"]["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key
    assert key["kid"] == view["key_id"] and view["has_client_secret"] is False
    assert view["jwks_uri"] == f"{server.base_url}/oauth2/v1/federation/keyed/jwks"
    rotated = cli_json(server, "admin", "providers", "update", "keyed", "--rotate-key")
    assert rotated["key_id"] != view["key_id"] and rotated["version"] == view["version"] + 1
    assert "uses our own key" in refused(
        server, "admin", "providers", "update", "keyed", "--client-secret-stdin", input="x\n"
    )


def test_the_secret_comes_from_the_environment_and_rotates(
    server: Server, upstream: str
) -> None:
    view = cli_json(
        server,
        *("admin", "providers", "add", "env", "--issuer", upstream, "--client-id", "e"),
        *("--auth-method", "client_secret_post"),
        TESSERA_PROVIDER_SECRET="from-the-environment",
    )
    assert view["has_client_secret"] is True and view["auth_method"] == "client_secret_post"
    # An update takes a secret only when asked to: a lingering variable changes nothing.
    kept = cli_json(
        server, "admin", "providers", "update", "env", "--no-jit",
        TESSERA_PROVIDER_SECRET="stale",
    )
    assert kept["jit"] is False
    rotated = cli_json(
        server, "admin", "providers", "update", "env", "--rotate-secret",
        TESSERA_PROVIDER_SECRET="the-next-one",
    )
    assert rotated["has_client_secret"] is True
    changed = [d["changed"] for t, d in provider_events(server, view["id"]) if t.endswith("updated")]
    assert changed == [["jit"], ["client_secret"]]
    assert "no client secret given" in refused(
        server, "admin", "providers", "update", "env", "--rotate-secret"
    )


def test_enable_disable_update_and_remove(server: Server, upstream: str) -> None:
    add(server, "cycle", upstream, "--disabled")
    assert cli_json(server, "admin", "providers", "show", "cycle")["enabled"] is False
    assert cli_json(server, "admin", "providers", "enable", "cycle")["enabled"] is True
    assert cli_json(server, "admin", "providers", "disable", "cycle")["enabled"] is False
    updated = cli_json(
        server,
        *("admin", "providers", "update", "cycle", "--name", "cycle-two"),
        *("--link-existing", "--username-claim", "email", "--groups-claim", "roles"),
        *("--email-domain", "cycle.test", "--sync-groups"),
    )
    assert updated["name"] == "cycle-two" and updated["link_existing"] is True
    assert updated["sync_groups"] is True
    assert "sync_groups needs a groups claim" in refused(
        server, "admin", "providers", "update", "cycle-two", "--no-groups-claim"
    )
    assert updated["redirect_uri"].endswith("/oauth2/v1/federation/cycle-two/callback")
    assert updated["username_claim"] == "email" and updated["groups_claim"] == "roles"
    cleared = cli_json(
        server, "admin", "providers", "update", "cycle-two", "--no-groups-claim",
        "--no-email-domains", "--no-sync-groups",
    )
    assert cleared["groups_claim"] is None and cleared["email_domains"] == []
    assert cleared["sync_groups"] is False
    gone = cli_json(server, "admin", "providers", "remove", "cycle-two")
    assert gone == {"deleted": updated["id"], "name": "cycle-two", "links_removed": 0}
    assert "cycle-two" not in names(server)
    assert "no provider 'cycle-two'" in refused(server, "admin", "providers", "show", "cycle-two")
    assert [t for t, _ in provider_events(server, updated["id"])] == [
        "provider.created",
        "provider.enabled",
        "provider.disabled",
        "provider.updated",
        "provider.updated",
        "provider.deleted",
    ]


def test_bad_input_is_refused_and_nothing_written(server: Server, upstream: str) -> None:
    add(server, "taken", upstream, "--email-domain", "taken.test")
    before = names(server)

    def add_refused(name: str, issuer: str, *args: str) -> str:
        return refused(
            server,
            *("admin", "providers", "add", name, "--issuer", issuer, "--client-id", "c"),
            "--client-secret-stdin",
            *args,
            input=SECRET + "\n",
        )

    # Discovery §4.3: the document must name exactly the configured issuer.
    assert f"names issuer {upstream}, not {upstream}/" in add_refused("slash", upstream + "/")
    assert "fails the discovery check" in add_refused(
        "gone", f"{server.base_url}/domains/no-such-domain"
    )
    assert "https" in add_refused("remote", "http://upstream.example.test")
    assert "lower-case letters" in add_refused("Bad_Name", upstream)
    assert "already exists" in add_refused("taken", upstream)
    assert "taken.test already sends users" in add_refused(
        "other", upstream, "--email-domain", "TAKEN.test"
    )
    assert "one of" in add_refused("method", upstream, "--auth-method", "client_secret_jwt")
    # An empty value is refused like the admin API's, not replaced by the default.
    assert "one of" in add_refused("method", upstream, "--auth-method", "")
    assert "username claim" in add_refused("claim", upstream, "--username-claim", "")
    no_secret = refused(
        server,
        *("admin", "providers", "add", "nosecret", "--issuer", upstream, "--client-id", "c"),
    )
    assert "no client secret given" in no_secret and "--client-secret-stdin" in no_secret
    assert names(server) == before


def test_domain_selects_where_the_provider_lives(server: Server, upstream: str) -> None:
    create_domain(server, "downstream", admin=None)
    # The default domain as the upstream of another domain.
    view = cli_json(
        server,
        *("admin", "--domain", "downstream", "providers", "add", "home"),
        *("--issuer", server.base_url, "--client-id", "d"),
        "--client-secret-stdin",
        input=SECRET + "\n",
    )
    assert view["redirect_uri"] == (
        f"{server.base_url}/domains/downstream/oauth2/v1/federation/home/callback"
    )
    assert names(server, "--domain", "downstream") == ["home"]
    assert "home" not in names(server)
    test = cli_json(server, "admin", "--domain", "downstream", "providers", "test", "home")
    assert test["check"]["issuer"] == server.base_url
    assert test["try_sign_in_url"].startswith(
        f"{server.base_url}/domains/downstream/oauth2/v1/federation/home/test?ticket="
    )
    assert upstream != server.base_url
