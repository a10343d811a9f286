"""The browser login against a fake identity domain: discovery, the loopback, the exchange."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tessera.client.cache import TokenCache
from tessera.client.discovery import check_issuer_url, discover
from tessera.client.errors import DiscoveryError, LoginError
from tessera.client.login import login, requested_scopes
from tessera.client.pkce import s256_challenge
from tessera.client.preflight import preflight_error
from tests.unit.client.fakes import ISSUER, FakeIdp


class FakeBrowser:
    """An opener that plays a user who signs in: it goes straight back to the callback."""

    def __init__(self, idp: FakeIdp, **override: str) -> None:
        self.idp, self.override = idp, override
        self.seen: dict[str, str] = {}

    def __call__(self, url: str) -> None:
        self.seen = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.idp.nonce = self.seen.get("nonce")
        params = {"code": "the-code", "state": self.seen["state"], "iss": ISSUER, **self.override}
        httpx.get(self.seen["redirect_uri"], params=params, timeout=5)


def test_login_sends_pkce_s256_state_and_nonce_and_caches_the_tokens(tmp_path: Path) -> None:
    idp = FakeIdp()
    cache = TokenCache(tmp_path)
    opener = FakeBrowser(idp)
    session = login(
        ISSUER,
        "cli",
        scopes=["https://api.test:443urn:x:all"],
        opener=opener,
        cache=cache,
        http=idp.client(),
        timeout=5,
    )
    query = opener.seen
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["scope"] == "openid https://api.test:443urn:x:all"
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert query["redirect_uri"].endswith("/callback")
    exchange = idp.calls("/oauth2/v1/token")[0]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code"] == "the-code"
    assert exchange["client_id"] == "cli"
    assert exchange["redirect_uri"] == query["redirect_uri"]
    assert s256_challenge(exchange["code_verifier"]) == query["code_challenge"]
    stored = cache.find("default")
    assert stored is not None and stored.tokens == session.tokens


def test_a_wrong_issuer_in_the_redirect_fails_before_the_exchange(tmp_path: Path) -> None:
    idp = FakeIdp()
    with pytest.raises(LoginError, match="another issuer"):
        login(
            ISSUER,
            "cli",
            opener=FakeBrowser(idp, iss="https://mixup.test"),
            cache=TokenCache(tmp_path),
            http=idp.client(),
            timeout=5,
        )
    assert idp.calls("/oauth2/v1/token") == []
    assert TokenCache(tmp_path).find("default") is None


def test_an_id_token_with_another_nonce_fails_the_login(tmp_path: Path) -> None:
    idp = FakeIdp()

    def opener(url: str) -> None:
        FakeBrowser(idp)(url)
        idp.nonce = "replayed"

    with pytest.raises(LoginError, match="nonce"):
        login(ISSUER, "cli", opener=opener, cache=TokenCache(tmp_path), http=idp.client())


def test_discovery_refuses_metadata_naming_another_issuer() -> None:
    idp = FakeIdp(metadata_issuer="https://evil.test")
    with pytest.raises(DiscoveryError, match="names another issuer"):
        discover(ISSUER, idp.client())


@pytest.mark.parametrize("url", ["http://id.example.test", "ftp://x", "not a url", f"{ISSUER}?a=1"])
def test_issuers_must_be_https_except_on_loopback(url: str) -> None:
    with pytest.raises(DiscoveryError):
        check_issuer_url(url)


def test_loopback_http_issuers_are_allowed() -> None:
    assert check_issuer_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_issuer_url("http://localhost:8000") == "http://localhost:8000"


def test_openid_is_always_asked_for_once() -> None:
    assert requested_scopes([]) == ["openid"]
    assert requested_scopes(["a b", "openid", "a"]) == ["openid", "a", "b"]


# --- the preflight of the authorization request (issue 12) -------------------------------------


def test_an_unknown_client_fails_before_the_browser_is_opened(tmp_path: Path) -> None:
    idp = FakeIdp(clients=())
    opened: list[str] = []
    with pytest.raises(LoginError) as raised:
        login(
            ISSUER,
            "nobody",
            opener=opened.append,
            cache=TokenCache(tmp_path),
            http=idp.client(),
            timeout=300,
        )
    assert opened == []  # never waited on the loopback
    assert "client 'nobody'" in raised.value.message
    assert "HTTP 400: unknown client" in raised.value.message
    assert raised.value.hint is not None and "--client-id" in raised.value.hint
    assert idp.calls("/oauth2/v1/token") == []


def test_the_preflight_accepts_the_login_page_and_a_redirect_to_it() -> None:
    redirect_uri = "http://127.0.0.1:5000/callback"
    for status, location in ((200, None), (302, "/login?authz=x"), (303, f"{ISSUER}/login")):
        assert (
            preflight_error(status, location, "", client_id="cli", redirect_uri=redirect_uri)
            is None
        )


def test_the_preflight_refuses_an_error_redirect_to_our_loopback() -> None:
    redirect_uri = "http://127.0.0.1:5000/callback"
    location = f"{redirect_uri}?error=invalid_scope&error_description=no+such+scope&state=s"
    error = preflight_error(302, location, "", client_id="cli", redirect_uri=redirect_uri)
    assert error is not None
    assert (
        error.message
        == "the identity domain refused the sign-in request (invalid_scope: no such scope)"
    )


def test_the_preflight_reports_a_foreign_error_page_by_its_status() -> None:
    error = preflight_error(
        404, None, "<html>Not Found</html>", client_id="cli", redirect_uri="http://127.0.0.1/cb"
    )
    assert error is not None and error.message.endswith("(HTTP 404)")
