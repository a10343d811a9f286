"""`tessera admin` and second factors (issue 15, item 6; docs/mfa.md), run as the real CLI
against a running node's database: a user's factors, resetting them, the domain's sign-in
policy and an app's own. Bad input exits 2 with a clear message and changes nothing.

Each test works in an identity domain of its own (`--domain`).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pyotp

from tests.support.domains import create_domain, domain_cli
from tests.support.flow import Browser, Pkce, form_fields
from tests.support.server import Server

PASSWORD = "Quartz-Meadow-Passw0rd-2026"
REDIRECT_URI = "http://127.0.0.1:8080/callback"
_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
_names = itertools.count(1)


def domain_with_carol(server: Server) -> dict[str, Any]:
    domain = create_domain(server, f"clifactors{next(_names)}", admin=None)
    name = domain["name"]
    domain_cli(server, name, "users", "create", "carol", "--password-stdin", input=PASSWORD + "\n")
    return domain


def refused(server: Server, name: str, *args: str) -> str:
    """`tessera admin --domain NAME <args…> --json`, refused as bad input: the message."""
    result = server.cli("admin", "--domain", name, *args, "--json", check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    error: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return f"{error['error']} | {error.get('hint', '')}"


def enroll_carol(domain: dict[str, Any], client_id: str) -> None:
    """carol signs in to a domain that requires a second factor: she sets up the app."""
    pkce = Pkce()
    with Browser(domain["issuer"]) as b:
        page = b.authorize(
            response_type="code", client_id=client_id, redirect_uri=REDIRECT_URI,
            scope="openid", state="st", code_challenge=pkce.challenge,
            code_challenge_method="S256",
        )  # fmt: skip
        page = b.follow(b.login(page, "carol", PASSWORD))
        secret = _SECRET.search(page.text)
        assert secret, page.text[:800]
        start = page.text.index('id="totp-form"')
        form = page.text[page.text.rindex("<form", 0, start) : page.text.index("</form>", start)]
        done = b.http.post(
            f"{domain['issuer']}/oauth2/v1/login/enroll",
            data={**form_fields(form), "code": pyotp.TOTP(secret.group(1)).now()},
        )
        assert done.status_code == 200 and 'id="recovery-codes"' in done.text, done.text[:800]


def test_factors_and_their_reset(server: Server) -> None:
    domain = domain_with_carol(server)
    name = domain["name"]
    empty = domain_cli(server, name, "users", "factors", "carol")
    assert empty["passkeys"] == [] and empty["authenticator_app"] is None
    assert empty["recovery_codes"]["left"] == 0 and empty["has_second_factor"] is False
    shown = server.cli("admin", "--domain", name, "users", "factors", "carol").stdout
    assert "Authenticator app: not set up" in shown and "0 left of 0" in shown

    app = domain_cli(
        server, name, "apps", "create", "--name", "Portal", "--redirect-uri", REDIRECT_URI,
        "--grant-type", "authorization_code", "--allow-scope", "openid",
    )  # fmt: skip
    domain_cli(server, name, "policy", "set", "--mfa", "required")
    enroll_carol(domain, app["client_id"])
    factors = domain_cli(server, name, "users", "factors", "carol")
    assert factors["authenticator_app"]["status"] == "active"
    assert factors["recovery_codes"]["left"] == 10 and factors["has_second_factor"] is True

    # No terminal to ask in: a reset needs --yes.
    message = refused(server, name, "users", "reset-factors", "carol")
    assert "needs a confirmation" in message and "--yes" in message
    assert "cannot reset 'keys'" in refused(
        server, name, "users", "reset-factors", "carol", "--only", "keys", "--yes"
    )
    assert "no user 'nobody'" in refused(server, name, "users", "reset-factors", "nobody", "--yes")
    assert domain_cli(server, name, "users", "factors", "carol")["has_second_factor"] is True

    reset = domain_cli(
        server, name, "users", "reset-factors", "carol", "--only", "recovery", "--yes"
    )
    assert reset["removed"] == {"passkeys": 0, "authenticator_app": 0, "recovery_codes": 10}
    assert reset["sessions_ended"] == 1
    left = domain_cli(server, name, "users", "factors", "carol")
    assert left["recovery_codes"]["total"] == 0 and left["authenticator_app"] is not None
    out = server.cli("admin", "--domain", name, "users", "reset-factors", "carol", "--yes").stdout
    assert "1 authenticator app(s)" in out and "0 session(s) ended" in out
    assert domain_cli(server, name, "users", "factors", "carol")["has_second_factor"] is False


def test_the_sign_in_policy(server: Server) -> None:
    name = domain_with_carol(server)["name"]
    assert domain_cli(server, name, "policy", "show") == {
        "domain": name, "mfa_policy": "optional", "admin_mfa_required": False,
    }  # fmt: skip
    both = domain_cli(server, name, "policy", "set", "--mfa", "off", "--require-admin-mfa")
    assert (both["mfa_policy"], both["admin_mfa_required"]) == ("off", True)
    kept = domain_cli(server, name, "policy", "set", "--mfa", "Required")
    assert (kept["mfa_policy"], kept["admin_mfa_required"]) == ("required", True)
    shown = server.cli("admin", "--domain", name, "policy", "show").stdout
    assert "required" in shown and "yes" in shown
    assert "mfa_policy must be one of: off, optional, required" in refused(
        server, name, "policy", "set", "--mfa", "sometimes"
    )
    assert "nothing to change" in refused(server, name, "policy", "set")
    back = domain_cli(server, name, "policy", "set", "--mfa", "default", "--no-require-admin-mfa")
    assert (back["mfa_policy"], back["admin_mfa_required"]) == ("optional", False)
    # The operators' view of the domain: the settings as its row has them.
    assert server.cli_json("admin", "domains", "show", name)["settings"] == {
        "admin_mfa_required": False
    }


def test_an_apps_own_policy(server: Server) -> None:
    name = domain_with_carol(server)["name"]
    app = domain_cli(
        server, name, "apps", "create", "--name", "Payroll", "--redirect-uri", REDIRECT_URI,
        "--mfa-policy", "required",
    )  # fmt: skip
    assert app["mfa_policy"] == "required"
    assert domain_cli(server, name, "apps", "show", "Payroll")["mfa_policy"] == "required"
    assert domain_cli(server, name, "apps", "update", "Payroll", "--name", "Pay")["mfa_policy"] == (
        "required"
    )
    updated = domain_cli(server, name, "apps", "update", "Pay", "--mfa-policy", "default")
    assert updated["mfa_policy"] is None
    assert "mfa_policy must be one of" in refused(
        server, name, "apps", "update", "Pay", "--mfa-policy", "always"
    )
    assert "mfa_policy must be one of" in refused(
        server, name, "apps", "create", "--name", "Other", "--public",
        "--redirect-uri", REDIRECT_URI, "--mfa-policy", "sometimes",
    )  # fmt: skip
    assert "Other" not in [a["name"] for a in domain_cli(server, name, "apps", "list")]
