"""Step-up (RFC 9470) in `tessera.client`: reading the challenge robustly, asking for
`acr_values` / `max_age` on the authorization request (§4), and `BearerAuth`'s one step-up and
one retry per request, against the fake identity domain of fakes.py and a fake API."""

from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.errors import LoginError, StepUpRequired
from tessera.client.login import browser_step_up, login
from tessera.client.session import Session, login_command
from tessera.client.stepup import StepUp, parse_challenges, step_up_challenge
from tessera.client.tokens import Endpoints, TokenSet
from tests.unit.client.fakes import ISSUER, FakeIdp, fake_jwt
from tests.unit.client.test_login import FakeBrowser

MFA = "urn:tessera:acr:mfa"
PR = "urn:tessera:acr:phishing-resistant"
CHALLENGE = f'Bearer error="insufficient_user_authentication", acr_values="{MFA}", max_age="300"'
ENDPOINTS = Endpoints(ISSUER, f"{ISSUER}/oauth2/v1/token", f"{ISSUER}/oauth2/v1/revoke")


def challenge_of(*values: str, status: int = 401) -> StepUp | None:
    return step_up_challenge(
        httpx.Response(status, headers=[("WWW-Authenticate", value) for value in values])
    )


# --- reading the challenge ---------------------------------------------------------------------


def test_the_rfc9470_challenges_are_read() -> None:
    assert challenge_of(CHALLENGE) == StepUp((MFA,), 300, None)
    assert challenge_of(  # RFC 9470 Figure 2 and 3, unquoted max_age, other scheme spelling
        'bEaReR error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", acr_values="myACR"'
    ) == StepUp(("myACR",), None, "A different authentication level is required")
    assert challenge_of("Bearer error=insufficient_user_authentication, max_age=5") == StepUp(
        (), 5, None
    )


def test_quoted_strings_escapes_and_several_challenges_are_understood() -> None:
    found = challenge_of(
        'Basic realm="a, b", charset="UTF-8", Newauth realm="x", title="say \\"hi\\", then"',
        f'DPoP algs="ES256", Bearer realm="api", error="insufficient_user_authentication", '
        f'error_description="needs \\"MFA\\", sorry", acr_values="{PR}  {MFA}", max_age="60"',
    )
    assert found == StepUp((PR, MFA), 60, 'needs "MFA", sorry')
    assert parse_challenges(['Basic realm="a, b", Bearer error="x"']) == [
        ("basic", {"realm": "a, b"}),
        ("bearer", {"error": "x"}),
    ]


@pytest.mark.parametrize(
    "values",
    [
        ('Bearer error="invalid_token"',),
        ('Basic error="insufficient_user_authentication"',),
        ('Bearer realm="x", Basic error="insufficient_user_authentication"',),
        ("",),
        ('Bearer error="insufficient_user_authentication',),  # unterminated quote
        ("=,,= \" \\ Bearer",),
        ("Bearer abc==",),  # a token68 credential, no params
        ("\x00" * 100000,),
    ],
)
def test_anything_else_is_not_a_step_up(values: tuple[str, ...]) -> None:
    assert challenge_of(*values) is None


def test_only_a_401_is_a_step_up_and_a_bad_max_age_is_ignored() -> None:
    assert challenge_of(CHALLENGE, status=403) is None
    for bad in ('"-5"', '"5s"', '"99999999999"', '""'):
        found = challenge_of(f"Bearer error=insufficient_user_authentication, max_age={bad}")
        assert found is not None and found.max_age is None


# --- asking for it (RFC 9470 §4) ----------------------------------------------------------------


def test_login_sends_acr_values_and_max_age(tmp_path: Path) -> None:
    idp = FakeIdp()
    browser = FakeBrowser(idp)
    login(
        ISSUER,
        "cli",
        opener=browser,
        cache=TokenCache(tmp_path),
        http=idp.client(),
        timeout=5,
        acr_values=[f"{PR} {MFA}", MFA],
        max_age=0,
    )
    assert browser.seen["acr_values"] == f"{PR} {MFA}"
    assert browser.seen["max_age"] == "0"


def test_a_plain_login_sends_neither(tmp_path: Path) -> None:
    idp = FakeIdp()
    browser = FakeBrowser(idp)
    login(ISSUER, "cli", opener=browser, cache=TokenCache(tmp_path), http=idp.client(), timeout=5)
    assert "acr_values" not in browser.seen and "max_age" not in browser.seen


# --- stepping up -------------------------------------------------------------------------------


def cached(tmp_path: Path, id_token: str | None = fake_jwt({"sub": "u1"})) -> TokenCache:
    """A login of u1 (the fake identity domain's user)."""
    cache = TokenCache(tmp_path)
    tokens = TokenSet("at-0", expires_at=time.time() + 3600, refresh_token="rt-0", id_token=id_token)
    cache.save(CacheEntry("default", "cli", ENDPOINTS, tokens, scopes=("openid", "api")))
    return cache


def api(strong: bool = True) -> tuple[httpx.MockTransport, list[str]]:
    """An API that challenges the first token (and every token unless `strong`)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        seen.append(token)
        if token == "at-0" or not strong:
            return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}, json={})
        return httpx.Response(200, json={"body": request.content.decode()})

    return httpx.MockTransport(handler), seen


def stepping_session(cache: TokenCache, idp: FakeIdp, browser: FakeBrowser) -> Session:
    handler = browser_step_up(opener=browser, http=idp.client(), timeout=5)
    return Session.load("default", cache=cache, http=idp.client(), step_up=handler)


def test_a_challenge_steps_up_caches_the_new_tokens_and_retries_once(tmp_path: Path) -> None:
    idp, cache = FakeIdp(), cached(tmp_path)
    browser = FakeBrowser(idp)
    session = stepping_session(cache, idp, browser)
    transport, seen = api()
    with httpx.Client(transport=transport, auth=session.auth()) as http:
        response = http.post("https://api.test/pay", content=b"payload")
    assert response.status_code == 200
    assert response.json() == {"body": "payload"}  # the body was sent again
    assert len(seen) == 2 and seen[0] == "at-0"
    assert browser.seen["acr_values"] == MFA and browser.seen["max_age"] == "300"
    assert browser.seen["scope"] == "openid api"  # the login's scopes, asked for again
    assert [f["grant_type"] for f in idp.calls("/oauth2/v1/token")] == ["authorization_code"]
    stored = cache.find("default")
    assert stored is not None and stored.tokens.access_token == seen[1]
    assert stored.tokens == session.tokens


def test_never_more_than_one_step_up_per_request(tmp_path: Path) -> None:
    idp = FakeIdp()
    session = stepping_session(cached(tmp_path), idp, FakeBrowser(idp))
    transport, seen = api(strong=False)
    with httpx.Client(transport=transport, auth=session.auth()) as http:
        response = http.get("https://api.test/pay")
    assert response.status_code == 401  # the API's answer, once the one retry failed too
    assert len(seen) == 2
    assert len(idp.calls("/oauth2/v1/token")) == 1  # one sign-in, no refresh either


def test_without_a_way_to_sign_in_step_up_required_says_what_to_run(tmp_path: Path) -> None:
    idp = FakeIdp()
    session = Session.load("default", cache=cached(tmp_path), http=idp.client())
    transport, seen = api()
    with (
        httpx.Client(transport=transport, auth=session.auth()) as http,
        pytest.raises(StepUpRequired) as caught,
    ):
        http.get("https://api.test/pay")
    assert (caught.value.acr_values, caught.value.max_age) == ((MFA,), 300)
    assert MFA in caught.value.message
    assert caught.value.hint == (
        f"run: tessera login --issuer {ISSUER} --client-id cli --acr {MFA} --max-age 300"
    )
    assert seen == ["at-0"] and idp.calls("/oauth2/v1/token") == []


def test_a_step_up_that_cannot_compare_users_is_refused(tmp_path: Path) -> None:
    idp = FakeIdp()
    cache = cached(tmp_path, id_token=None)  # a login without openid
    session = stepping_session(cache, idp, FakeBrowser(idp))
    transport, _ = api()
    with (
        httpx.Client(transport=transport, auth=session.auth()) as http,
        pytest.raises(LoginError, match="cannot be compared"),
    ):
        http.get("https://api.test/pay")
    stored = cache.find("default")
    assert stored is not None and stored.tokens.access_token == "at-0"


def test_a_step_up_as_another_user_is_refused(tmp_path: Path) -> None:
    idp = FakeIdp()  # its ID tokens are u1's
    cache = cached(tmp_path, id_token=fake_jwt({"sub": "u0"}))
    session = stepping_session(cache, idp, FakeBrowser(idp))
    transport, _ = api()
    with (
        httpx.Client(transport=transport, auth=session.auth()) as http,
        pytest.raises(LoginError, match="another user"),
    ):
        http.get("https://api.test/pay")
    stored = cache.find("default")
    assert stored is not None and stored.tokens.access_token == "at-0"


def test_the_session_of_login_can_step_up(tmp_path: Path) -> None:
    idp = FakeIdp()
    browser = FakeBrowser(idp)
    session = login(
        ISSUER, "cli", opener=browser, cache=TokenCache(tmp_path), http=idp.client(), timeout=5
    )
    first = session.tokens.access_token

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        if token == first:
            return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=session.auth()) as http:
        assert http.get("https://api.test/pay").status_code == 200
    assert browser.seen["acr_values"] == MFA


def test_async_requests_step_up_too(tmp_path: Path) -> None:
    import anyio

    idp = FakeIdp()
    browser = FakeBrowser(idp)
    session = stepping_session(cached(tmp_path), idp, browser)

    async def main() -> tuple[int, str]:
        async def handler(request: httpx.Request) -> httpx.Response:
            token = request.headers["authorization"].removeprefix("Bearer ")
            if token == "at-0":
                return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})
            return httpx.Response(200, content=request.content)

        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, auth=session.auth()) as http:
            response = await http.post("https://api.test/pay", json={"a": 1})
            return response.status_code, response.text

    with ThreadPoolExecutor(1) as pool:
        status, text = pool.submit(anyio.run, main).result(timeout=30)
    assert (status, json.loads(text)) == (200, {"a": 1})
    assert browser.seen["max_age"] == "300"


def test_the_login_line_to_paste_is_quoted_for_a_shell() -> None:
    """The acr values come from an API's header: a hostile one stays one word of the line."""
    hostile = StepUp(acr_values=("$(touch /tmp/pwned)",), max_age=60, description="")
    line = login_command(ISSUER, "cli", "default", hostile)
    assert line.endswith("--acr '$(touch /tmp/pwned)' --max-age 60")
    assert shlex.split(line)[-3] == "$(touch /tmp/pwned)"
