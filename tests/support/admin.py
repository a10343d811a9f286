"""Getting tokens for the admin API the way the console does: the code flow with PKCE as the
first-party public app `tessera-console`."""

from __future__ import annotations

import httpx

from tests.support.flow import Browser, Pkce, code_from

__all__ = ["console_token"]


def console_token(base_url: str, username: str, password: str) -> dict[str, str]:
    """Sign in through the console app and return its token response."""
    pkce = Pkce()
    redirect = f"{base_url}/console/"
    browser = Browser(base_url)
    try:
        response = browser.sign_in_and_authorize(
            username,
            password,
            response_type="code",
            client_id="tessera-console",
            redirect_uri=redirect,
            scope=f"openid profile {base_url}/adminurn:tessera:admin",
            state="st",
            code_challenge=pkce.challenge,
            code_challenge_method="S256",
        )
        tokens = httpx.post(
            f"{base_url}/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code_from(response),
                "redirect_uri": redirect,
                "client_id": "tessera-console",
                "code_verifier": pkce.verifier,
            },
        )
        assert tokens.status_code == 200, tokens.text
        return dict(tokens.json())
    finally:
        browser.close()
