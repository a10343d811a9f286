"""Sessions: refresh a little before expiry, retry once after a 401, revoke on logout."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.errors import ClientError, LoginExpired, NotLoggedIn
from tessera.client.session import DEFAULT_REFRESH_MARGIN, Session, refresh_margin
from tessera.client.tokens import Endpoints, TokenSet
from tests.unit.client.fakes import ISSUER, FakeIdp

ENDPOINTS = Endpoints(ISSUER, f"{ISSUER}/oauth2/v1/token", f"{ISSUER}/oauth2/v1/revoke")


def cached(
    tmp_path: Path, expires_in: float, refresh: str | None = "rt-0", secret: str | None = None
) -> TokenCache:
    cache = TokenCache(tmp_path)
    cache.save(
        CacheEntry(
            profile="default",
            client_id="cli",
            endpoints=ENDPOINTS,
            tokens=TokenSet("at-0", expires_at=time.time() + expires_in, refresh_token=refresh),
            client_secret=secret,
        )
    )
    return cache


def session(cache: TokenCache, idp: FakeIdp, margin: float = 60) -> Session:
    return Session.load("default", cache=cache, http=idp.client(), margin=margin)


def test_not_logged_in_says_which_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(NotLoggedIn) as caught:
        Session.load("work", cache=TokenCache(tmp_path))
    assert caught.value.hint is not None
    assert "tessera login --issuer URL --client-id ID --profile work" in caught.value.hint


def test_a_fresh_token_is_used_as_is(tmp_path: Path) -> None:
    idp = FakeIdp()
    s = session(cached(tmp_path, 3600), idp)
    assert s.access_token() == "at-0"
    assert idp.calls("/oauth2/v1/token") == []


def test_a_token_within_the_margin_is_refreshed_and_the_cache_updated(tmp_path: Path) -> None:
    idp = FakeIdp()
    cache = cached(tmp_path, 30)
    s = session(cache, idp, margin=40)
    token = s.access_token()
    assert token != "at-0"
    assert idp.calls("/oauth2/v1/token") == [
        {"grant_type": "refresh_token", "refresh_token": "rt-0", "client_id": "cli"}
    ]
    on_disk = cache.find("default")
    assert on_disk is not None
    assert on_disk.tokens.access_token == token
    assert on_disk.tokens.refresh_token == "rt-1"  # rotated


def test_a_confidential_app_refreshes_with_basic_authentication(tmp_path: Path) -> None:
    idp = FakeIdp()
    s = session(cached(tmp_path, 0, secret="p@ss word"), idp)
    s.access_token()
    _, form, headers = idp.requests[-1]
    assert "client_id" not in form and "client_secret" not in form
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before base64
    assert headers["authorization"] == "Basic " + base64.b64encode(b"cli:p%40ss+word").decode()


def test_the_margin_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_CLIENT_REFRESH_MARGIN", raising=False)
    assert refresh_margin() == DEFAULT_REFRESH_MARGIN
    monkeypatch.setenv("TESSERA_CLIENT_REFRESH_MARGIN", "40")
    assert refresh_margin() == 40
    monkeypatch.setenv("TESSERA_CLIENT_REFRESH_MARGIN", "soon")
    with pytest.raises(ClientError, match="TESSERA_CLIENT_REFRESH_MARGIN"):
        refresh_margin()


def test_another_process_refreshed_meanwhile_its_token_is_taken(tmp_path: Path) -> None:
    idp = FakeIdp()
    cache = cached(tmp_path, 0)
    s = session(cache, idp)
    other = cache.find("default")
    assert other is not None
    cache.save(other.with_tokens(TokenSet("at-other", expires_at=time.time() + 3600)))
    assert s.access_token() == "at-other"
    assert idp.calls("/oauth2/v1/token") == []


def test_invalid_grant_on_refresh_means_log_in_again(tmp_path: Path) -> None:
    idp = FakeIdp(refresh_error="invalid_grant")
    s = session(cached(tmp_path, 0), idp)
    with pytest.raises(LoginExpired) as caught:
        s.access_token()
    assert caught.value.hint and f"tessera login --issuer {ISSUER} --client-id cli" in (
        caught.value.hint
    )


def test_expired_without_refresh_token_means_log_in_again(tmp_path: Path) -> None:
    s = session(cached(tmp_path, 0, refresh=None), FakeIdp())
    with pytest.raises(LoginExpired, match="no refresh token"):
        s.access_token()


def api(valid: set[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in valid:
            return httpx.Response(200, json={"ok": True, "body": request.content.decode()})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    return httpx.MockTransport(handler)


def test_auth_retries_once_after_a_401_with_a_refreshed_token(tmp_path: Path) -> None:
    idp = FakeIdp()
    s = session(cached(tmp_path, 3600), idp)  # fresh by the clock, but revoked at the API
    seen: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        seen.add(token)
        if token == "at-0":
            return httpx.Response(401)
        return httpx.Response(200, json={"body": request.content.decode()})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=s.auth()) as http:
        response = http.post("https://api.test/x", content=b"payload")
    assert response.status_code == 200
    assert response.json() == {"body": "payload"}  # the body was sent again
    assert len(seen) == 2
    assert len(idp.calls("/oauth2/v1/token")) == 1


def test_auth_does_not_retry_twice(tmp_path: Path) -> None:
    idp = FakeIdp()
    s = session(cached(tmp_path, 3600), idp)
    with httpx.Client(transport=api(set()), auth=s.auth()) as http:
        response = http.get("https://api.test/x")
    assert response.status_code == 401
    assert len(idp.calls("/oauth2/v1/token")) == 1


def test_async_auth_refreshes_too(tmp_path: Path) -> None:
    import anyio

    idp = FakeIdp()
    s = session(cached(tmp_path, 0), idp)

    async def main() -> int:
        async def handler(request: httpx.Request) -> httpx.Response:
            token = request.headers["authorization"].removeprefix("Bearer ")
            return httpx.Response(200 if token != "at-0" else 401)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=s.auth()) as http:
            return (await http.get("https://api.test/x")).status_code

    # In a thread of its own: Playwright's sync API may own this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(anyio.run, main).result(timeout=30) == 200
    assert s.refreshed


def test_logout_revokes_the_refresh_token_then_the_access_token_and_forgets(
    tmp_path: Path,
) -> None:
    idp = FakeIdp()
    cache = cached(tmp_path, 3600)
    s = session(cache, idp)
    assert s.logout() is True
    assert idp.revoked == ["rt-0", "at-0"]
    assert [f["token_type_hint"] for f in idp.calls("/oauth2/v1/revoke")] == [
        "refresh_token",
        "access_token",
    ]
    assert cache.find("default") is None


def test_logout_keeps_the_tokens_when_revocation_fails_unless_forget(tmp_path: Path) -> None:
    cache = cached(tmp_path, 3600)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    broken = httpx.Client(transport=httpx.MockTransport(down))
    s = Session.load("default", cache=cache, http=broken)
    with pytest.raises(ClientError, match="cannot reach"):
        s.logout()
    assert cache.find("default") is not None
    assert s.logout(forget_on_error=True) is False
    assert cache.find("default") is None
