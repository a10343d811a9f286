"""Pushed authorization requests (RFC 9126) in the client library: when the login pushes, what
it pushes and how it authenticates, what the browser is sent to, and the errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tessera.client.cache import TokenCache
from tessera.client.discovery import discover
from tessera.client.errors import ClientError, LoginError, PushedRequestError
from tessera.client.login import login
from tessera.client.par import pushed_authorization_url, read_pushed_response
from tessera.client.pkce import s256_challenge
from tessera.client.tokens import unverified_jwt
from tests.unit.client.fakes import ISSUER, FakeIdp, UserAgent

PAR = "/oauth2/v1/par"
AUTHORIZE = "/oauth2/v1/authorize"


def run_login(tmp_path: Path, idp: FakeIdp, **kwargs: object) -> UserAgent:
    agent = UserAgent(idp)
    login(
        ISSUER,
        "cli",
        scopes=["https://api.test:443urn:x:all"],
        opener=agent,
        cache=TokenCache(tmp_path),
        http=idp.client(),
        timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )
    return agent


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_discovery_reads_the_par_metadata() -> None:
    idp = FakeIdp(par=True, require_par=True, auth_algs=["ES256"])
    metadata = discover(ISSUER, idp.client())
    assert metadata.pushed_authorization_request_endpoint == f"{ISSUER}{PAR}"
    assert metadata.require_pushed_authorization_requests is True
    assert metadata.auth_signing_algs == ("ES256",)
    plain = discover(ISSUER, FakeIdp().client())
    assert plain.pushed_authorization_request_endpoint is None
    assert plain.auth_signing_algs is None


def test_an_advertised_par_endpoint_gets_the_whole_request_and_the_browser_only_its_uri(
    tmp_path: Path,
) -> None:
    idp = FakeIdp(par=True)
    agent = run_login(tmp_path, idp, acr_values=["urn:tessera:acr:mfa"], max_age=300)
    [pushed] = idp.calls(PAR)
    assert pushed["response_type"] == "code"
    assert pushed["client_id"] == "cli"
    assert pushed["scope"] == "openid https://api.test:443urn:x:all"
    assert pushed["redirect_uri"].startswith("http://127.0.0.1:")
    assert pushed["code_challenge_method"] == "S256"
    assert pushed["state"] and pushed["nonce"]
    assert (pushed["acr_values"], pushed["max_age"]) == ("urn:tessera:acr:mfa", "300")
    # RFC 9126 §4: the browser carries client_id and request_uri, nothing else.
    [url] = agent.urls
    assert url.startswith(f"{ISSUER}{AUTHORIZE}?")
    assert query(url) == {"client_id": "cli", "request_uri": "urn:ietf:params:oauth:request_uri:1"}
    # No preflight GET: it would use the one-time request_uri up.
    assert idp.calls(AUTHORIZE) == []
    exchange = idp.calls("/oauth2/v1/token")[0]
    assert s256_challenge(exchange["code_verifier"]) == pushed["code_challenge"]
    assert exchange["redirect_uri"] == pushed["redirect_uri"]


def test_a_public_app_pushes_with_its_client_id_only(tmp_path: Path) -> None:
    idp = FakeIdp(par=True)
    run_login(tmp_path, idp)
    [headers] = idp.headers(PAR)
    assert "authorization" not in headers
    assert "client_assertion" not in idp.calls(PAR)[0]


def test_a_confidential_app_authenticates_its_push_with_its_secret(tmp_path: Path) -> None:
    idp = FakeIdp(par=True)
    run_login(tmp_path, idp, client_secret="s3cret")
    [headers] = idp.headers(PAR)
    assert headers["authorization"].startswith("Basic ")


def test_a_private_key_app_signs_its_push_with_its_own_assertion(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    idp = FakeIdp(par=True)
    run_login(tmp_path, idp, private_key=key_file)
    pushed, exchange = idp.calls(PAR)[0], idp.calls("/oauth2/v1/token")[0]
    push_claims = unverified_jwt(pushed["client_assertion"])[1]
    token_claims = unverified_jwt(exchange["client_assertion"])[1]
    assert push_claims["aud"] == token_claims["aud"] == ISSUER
    assert push_claims["jti"] != token_claims["jti"]  # one assertion per request


def test_no_par_sends_a_plain_request_after_the_preflight(tmp_path: Path) -> None:
    idp = FakeIdp(par=True)
    agent = run_login(tmp_path, idp, par=False)
    assert idp.calls(PAR) == []
    assert "request_uri" not in query(agent.urls[0])
    assert query(agent.urls[0])["code_challenge_method"] == "S256"
    assert len([p for p, _, _ in idp.requests if p == AUTHORIZE]) == 1  # the preflight


def test_no_par_against_a_server_that_requires_it_fails_before_the_browser(
    tmp_path: Path,
) -> None:
    idp = FakeIdp(par=True, require_par=True)
    agent = UserAgent(idp)
    with pytest.raises(LoginError, match="requires pushed authorization requests") as raised:
        login(ISSUER, "cli", opener=agent, cache=TokenCache(tmp_path), http=idp.client(), par=False)
    assert raised.value.hint is not None and "--no-par" in raised.value.hint
    assert agent.urls == []


def test_without_an_advertised_endpoint_the_request_is_plain(tmp_path: Path) -> None:
    idp = FakeIdp()
    agent = run_login(tmp_path, idp)
    assert idp.calls(PAR) == []
    assert "scope" in query(agent.urls[0])


@pytest.mark.parametrize(
    ("status", "body", "error", "hint"),
    [
        (401, {"error": "invalid_client", "error_description": "bad key"}, "invalid_client", "--private-key"),
        (400, {"error": "invalid_scope"}, "invalid_scope", "--scope"),
        (400, {"error": "invalid_request", "error_description": "redirect_uri"}, "invalid_request", "redirect URI"),
    ],
)
def test_a_refused_push_ends_the_login_with_the_oauth_error_and_what_to_do(
    tmp_path: Path, status: int, body: dict[str, str], error: str, hint: str
) -> None:
    idp = FakeIdp(par=True, par_answer=(status, body))
    agent = UserAgent(idp)
    with pytest.raises(PushedRequestError) as raised:
        login(ISSUER, "cli", opener=agent, cache=TokenCache(tmp_path), http=idp.client())
    assert raised.value.error == error
    assert raised.value.status == status
    assert raised.value.description == body.get("error_description")
    assert f"refused the pushed authorization request ({error}" in raised.value.message
    assert raised.value.hint is not None and hint in raised.value.hint
    assert agent.urls == []  # the user was never sent anywhere
    assert idp.calls("/oauth2/v1/token") == []
    assert TokenCache(tmp_path).find("default") is None


def response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", f"{ISSUER}{PAR}"), **kwargs)  # type: ignore[arg-type]


def test_read_pushed_response_accepts_201_with_a_request_uri() -> None:
    pushed = read_pushed_response(
        response(201, json={"request_uri": "urn:ietf:params:oauth:request_uri:x", "expires_in": 60})
    )
    assert (pushed.request_uri, pushed.expires_in) == ("urn:ietf:params:oauth:request_uri:x", 60)


@pytest.mark.parametrize(
    "body", [{}, {"request_uri": ""}, {"request_uri": 5}, {"request_uri": "x" * 5000}]
)
def test_a_success_without_a_usable_request_uri_is_an_error(body: dict[str, object]) -> None:
    with pytest.raises(ClientError, match="without a request_uri"):
        read_pushed_response(response(201, json=body))


@pytest.mark.parametrize(
    "kwargs", [{"text": "not found"}, {"json": {"error": "not_found", "error_description": "x"}}]
)
def test_a_missing_endpoint_suggests_no_par(kwargs: dict[str, object]) -> None:
    with pytest.raises(PushedRequestError) as raised:
        read_pushed_response(response(404, **kwargs))
    assert raised.value.hint is not None and "--no-par" in raised.value.hint


def test_an_error_without_json_is_a_server_error() -> None:
    with pytest.raises(PushedRequestError, match=r"server_error: HTTP 502"):
        read_pushed_response(response(502, text="bad gateway"))


def test_the_authorization_url_keeps_an_existing_query() -> None:
    url = pushed_authorization_url(f"{ISSUER}/authorize?tenant=a", "cli", "urn:x:1")
    assert url == f"{ISSUER}/authorize?tenant=a&client_id=cli&request_uri=urn%3Ax%3A1"
