"""Play the browser and the client of the authorization code flow over real HTTP.

`Browser` is an httpx client with a cookie jar that never follows redirects, so each test sees
every hop; it reads the hidden form fields of our login and consent pages like a browser would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

__all__ = ["Browser", "Pkce", "code_from", "form_fields", "query_of"]

_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the first form on a page."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = {k.lower(): unescape(v) for k, v in _ATTR.findall(tag)}
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def code_from(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), response.text[:500]
    query = query_of(response.headers["location"])
    assert "code" in query, query
    return query["code"]


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Browser:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def authorize(self, **params: str) -> httpx.Response:
        return self.http.get("/oauth2/v1/authorize?" + urlencode(params))

    def login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        fields = form_fields(page.text)
        assert "authz" in fields, page.text[:500]
        return self.http.post(
            "/oauth2/v1/login", data={**fields, "username": username, "password": password}
        )

    def consent(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        fields = form_fields(page.text)
        return self.http.post("/oauth2/v1/consent", data={**fields, "decision": decision})

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow one redirect back to us (login → authorize)."""
        location = response.headers["location"]
        assert location.startswith("/") or location.startswith(self.base_url), location
        return self.http.get(location)

    def sign_in_and_authorize(
        self, username: str, password: str, consent: bool = True, **params: str
    ) -> httpx.Response:
        """authorize → login page → login → authorize → (consent) → the redirect with a code."""
        response = self.authorize(**params)
        if response.status_code == 200 and 'name="password"' in response.text:
            response = self.follow(self.login(response, username, password))
        if response.status_code == 200 and 'value="allow"' in response.text and consent:
            response = self.consent(response)
        return response


def token_request(base_url: str, data: dict[str, str], auth: Any = None) -> httpx.Response:
    return httpx.post(f"{base_url}/oauth2/v1/token", data=data, auth=auth, timeout=30)
