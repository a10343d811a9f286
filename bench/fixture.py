"""The benchmark's users of a domain: the demo's confidential app, its resource and its user,
in the default domain or in any other (every URL is built from the domain's issuer)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

__all__ = ["Fixture", "allowed", "hidden_fields", "log_in", "redirected"]

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
        answer = await log_in(client, self.issuer, page, user)
        return redirected(await allowed(client, self.issuer, answer, consent)).params["code"]

    async def token(self, client: httpx.AsyncClient, code: str) -> dict[str, Any]:
        """The app redeems `code` at the token endpoint."""
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

    async def flow(self, client: httpx.AsyncClient, consent: bool = False) -> dict[str, Any]:
        """One whole code flow: authorize, login, (consent), code, token."""
        return await self.token(
            client, await self.sign_in(client, self.authorize_params(), self.user, consent)
        )

    async def federated_flow(
        self,
        client: httpx.AsyncClient,
        provider: str,
        upstream: str,
        user: dict[str, str],
        consent: bool = False,
    ) -> dict[str, Any]:
        """One whole sign-in through the provider `provider`, another Tessera domain whose
        issuer is `upstream` (docs/federation.md, "The round trip"), of a browser new to this
        domain: authorize, the sign-in page's button, our start, the upstream's authorize
        (its sign-in form as `user` only while the browser has no session there: the
        upstream's cookies are kept), (consent), our callback, authorize again, code, token."""
        upstream_path = httpx.URL(upstream).path.rstrip("/") + "/"
        for cookie in list(client.cookies.jar):  # this domain's cookies only
            if not cookie.path.startswith(upstream_path):
                client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
        page = await client.get(self.url("/oauth2/v1/authorize"), params=self.authorize_params())
        button = re.search(
            rf'href="([^"]*/oauth2/v1/federation/{provider}/start\?[^"]*)"', page.text
        )
        if button is None:
            raise _unexpected(page, f"no button for the provider {provider}")
        at_upstream = await client.get(
            redirected(await client.get(page.url.join(unescape(button[1]))))
        )
        if 'name="password"' in at_upstream.text:
            at_upstream = await log_in(client, upstream, at_upstream, user)
        callback = await client.get(
            redirected(await allowed(client, upstream, at_upstream, consent))
        )
        resumed = await client.get(redirected(callback))
        code = redirected(await allowed(client, self.issuer, resumed, consent)).params["code"]
        return await self.token(client, code)


def redirected(response: httpx.Response) -> httpx.URL:
    """Where a redirect goes (its location may be relative to the server's root)."""
    if not response.is_redirect:
        raise _unexpected(response, "not a redirect")
    return response.url.join(response.headers["location"])


def _unexpected(response: httpx.Response, what: str) -> httpx.HTTPStatusError:
    """An answer the flow did not expect: an error the driver counts (an `httpx.HTTPError`)."""
    message = f"{response.request.method} {response.url}: {response.status_code}, {what}"
    return httpx.HTTPStatusError(message, request=response.request, response=response)


async def log_in(
    client: httpx.AsyncClient, issuer: str, page: httpx.Response, user: dict[str, str]
) -> httpx.Response:
    """The sign-in form of `page` (the domain `issuer`'s authorize) as `user`, then back to
    authorize: its answer."""
    response = await client.post(
        issuer + "/oauth2/v1/login",
        data={
            **hidden_fields(page.text),
            "username": user["username"],
            "password": user["password"],
        },
    )
    return await client.get(redirected(response))


async def allowed(
    client: httpx.AsyncClient, issuer: str, response: httpx.Response, consent: bool
) -> httpx.Response:
    """Authorize's answer `response`; on its consent page, allowed when `consent`."""
    if response.status_code == 200 and consent:
        return await client.post(
            issuer + "/oauth2/v1/consent",
            data={**hidden_fields(response.text), "decision": "allow"},
        )
    return response
