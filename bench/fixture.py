"""The benchmark's users of a domain: the demo's confidential app, its resource and its user,
in the default domain or in any other (every URL is built from the domain's issuer)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

__all__ = ["Fixture", "hidden_fields"]

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in _HIDDEN.findall(html)}


class Fixture:
    """A domain with a confidential app allowed every grant, and a user who has consented:
    `credentials` in the form of the demo's `demo-credentials.json`."""

    def __init__(self, issuer: str, credentials: dict[str, Any]) -> None:
        self.issuer = issuer
        self.app = credentials["confidential_app"]
        self.auth = (self.app["client_id"], self.app["client_secret"])
        self.scope = credentials["resource"]["scope"]
        self.audience = credentials["resource"]["audience"]
        self.user = credentials["user"]
        self.admin = credentials["admin"]

    def url(self, path: str) -> str:
        return self.issuer + path

    def authorize_params(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.app["client_id"],
            "redirect_uri": self.app["redirect_uri"],
            "scope": self.scope,
            "state": "b",
        }

    async def sign_in(
        self,
        client: httpx.AsyncClient,
        params: dict[str, str],
        user: dict[str, str],
        consent: bool = False,
    ) -> str:
        """authorize, login, (consent): the code of the redirect to the app."""
        client.cookies.clear()
        page = await client.get(self.url("/oauth2/v1/authorize"), params=params)
        response = await client.post(
            self.url("/oauth2/v1/login"),
            data={
                **hidden_fields(page.text),
                "username": user["username"],
                "password": user["password"],
            },
        )
        # Back to authorize: the location is relative to the server's root.
        response = await client.get(response.url.join(response.headers["location"]))
        if response.status_code == 200 and consent:
            response = await client.post(
                self.url("/oauth2/v1/consent"),
                data={**hidden_fields(response.text), "decision": "allow"},
            )
        return httpx.URL(response.headers["location"]).params["code"]

    async def flow(self, client: httpx.AsyncClient, consent: bool = False) -> dict[str, Any]:
        """One whole code flow: authorize, login, (consent), code, token."""
        code = await self.sign_in(client, self.authorize_params(), self.user, consent)
        token = await client.post(
            self.url("/oauth2/v1/token"),
            auth=self.auth,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.app["redirect_uri"],
            },
        )
        token.raise_for_status()
        return dict(token.json())
