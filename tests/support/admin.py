"""Getting tokens for the admin API the way the console does: the code flow with PKCE as the
first-party public console app of the domain (`tessera-console` in the default domain,
`tessera-console-<domain id>` in another), at the domain's issuer."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.flow import Browser, Pkce, code_from

__all__ = ["admin_client", "console_token", "domain_console_token", "operator_token"]

ADMIN_SCOPE = "urn:tessera:admin"
OPERATOR_SCOPE = "urn:tessera:operator"


def _console_flow(
    issuer: str, client_id: str, scope: str, username: str, password: str
) -> dict[str, str]:
    pkce = Pkce()
    redirect = f"{issuer}/console/"
    browser = Browser(issuer)
    try:
        response = browser.sign_in_and_authorize(
            username,
            password,
            response_type="code",
            client_id=client_id,
            redirect_uri=redirect,
            scope=scope,
            state="st",
            code_challenge=pkce.challenge,
            code_challenge_method="S256",
        )
        tokens = httpx.post(
            f"{issuer}/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code_from(response),
                "redirect_uri": redirect,
                "client_id": client_id,
                "code_verifier": pkce.verifier,
            },
        )
        assert tokens.status_code == 200, tokens.text
        return dict(tokens.json())
    finally:
        browser.close()


def console_token(base_url: str, username: str, password: str) -> dict[str, str]:
    """Sign in to the default domain's console and return its token response (admin scope)."""
    scope = f"openid profile {base_url}/admin{ADMIN_SCOPE}"
    return _console_flow(base_url, "tessera-console", scope, username, password)


def operator_token(
    base_url: str, username: str, password: str, *, admin: bool = True
) -> dict[str, str]:
    """Like `console_token`, with the operator scope too (the default domain's administrators
    may hold it), as the console asks for it; `admin=False`: the operator scope alone."""
    scopes = [f"{base_url}/admin{ADMIN_SCOPE}"] if admin else []
    scope = " ".join(["openid profile", *scopes, f"{base_url}/admin{OPERATOR_SCOPE}"])
    return _console_flow(base_url, "tessera-console", scope, username, password)


def domain_console_token(domain: dict[str, Any], username: str, password: str) -> dict[str, str]:
    """Sign in to a domain's console (`domain`: its view, as the admin API or the CLI's `--json`
    shows it) as one of its administrators."""
    issuer = domain["issuer"]
    scope = f"openid profile {issuer}/admin{ADMIN_SCOPE}"
    return _console_flow(issuer, f"tessera-console-{domain['id']}", scope, username, password)


def admin_client(issuer: str, token: str) -> httpx.Client:
    """An HTTP client of the admin API at `issuer` (a domain's), with the bearer token."""
    return httpx.Client(
        base_url=f"{issuer}/admin/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
