"""Pushed authorization requests (RFC 9126) over real HTTP.

A confidential app (client_secret_basic) and a public app (PKCE) push their requests to
`/oauth2/v1/par` and send the browser with nothing but client_id and request_uri (§4); the
user signs in and consents across several requests while the pushed request travels sealed;
the code is exchanged. Refused: a request_uri used twice, by another app, or after its
lifetime; a push without client authentication (§2.3: 401 invalid_client); bad pushed
parameters (each the authorization endpoint's error, nothing issued); a plain authorization
request for an app or a domain that requires PAR (§6); a changed pushed request in the forms.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.domains import create_domain, domain_cli
from tests.support.flow import (
    Browser,
    Pkce,
    basic_auth,
    code_from,
    exchange_code,
    form_fields,
    query_of,
    token_request,
)
from tests.support.server import Server, running_server

PREFIX = "urn:ietf:params:oauth:request_uri:"
SHORT_TTL = 5  # seconds: TESSERA_PAR_TTL of the expiry test's server (the minimum)
EXPIRED = "start again"

_names = itertools.count(1)


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ttl = {"TESSERA_PAR_TTL": str(SHORT_TTL)}
    with running_server(tmp_path_factory.mktemp("idp-short-par"), extra_env=ttl) as srv:
        yield srv


# --- helpers -----------------------------------------------------------------------------------


def confidential(server: Server) -> dict[str, str]:
    return dict(server.demo["confidential_app"])


def scope(server: Server) -> str:
    return "openid profile " + server.demo["resource"]["scope"]


def request_params(server: Server, app: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": scope(server),
        "state": "st-par",
        "nonce": "n-par",
        **extra,
    }


def push(
    issuer: str, data: dict[str, str], auth: tuple[str, str] | None = None
) -> httpx.Response:
    return httpx.post(f"{issuer}/oauth2/v1/par", data=data, auth=auth, timeout=30)


def pushed_uri(server: Server, app: dict[str, str], **extra: str) -> str:
    """Push a request of the confidential `app` (client_secret_basic): its request_uri."""
    response = push(server.base_url, request_params(server, app, **extra), basic_auth(app))
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


def sign_in(server: Server, browser: Browser, **params: str) -> httpx.Response:
    alice = server.demo["user"]
    return browser.sign_in_and_authorize(alice["username"], alice["password"], **params)


def assert_expired_page(response: httpx.Response) -> None:
    """The error page of a request_uri that does not hold: no redirect anywhere."""
    assert response.status_code == 400, response.text[:500]
    assert "location" not in response.headers
    assert EXPIRED in response.text


def id_token_claims(server: Server, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(f"{server.base_url}/oauth2/v1/keys").json())
    return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims)


def new_app(server: Server, *options: str, domain: str | None = None) -> dict[str, Any]:
    args = (
        *("apps", "create", "--name", f"PAR app {next(_names)}"),
        *("--redirect-uri", "https://par.test/cb"),
        *("--grant-type", "authorization_code"),
        *("--allow-scope", "openid"),
        *options,
    )
    if domain is not None:
        return dict(domain_cli(server, domain, *args))
    return dict(server.cli_json("admin", *args))


# --- metadata ----------------------------------------------------------------------------------


def test_discovery_advertises_the_endpoint(server: Server) -> None:
    metadata = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert metadata["pushed_authorization_request_endpoint"] == f"{server.issuer}/oauth2/v1/par"
    assert metadata["require_pushed_authorization_requests"] is False


# --- the flows ---------------------------------------------------------------------------------


def test_a_confidential_app_pushes_and_the_user_signs_in(server: Server, browser: Browser) -> None:
    app = confidential(server)
    response = push(server.base_url, request_params(server, app), basic_auth(app))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(PREFIX)
    assert len(body["request_uri"]) >= len(PREFIX) + 43  # 256 bits

    page = browser.authorize(client_id=app["client_id"], request_uri=body["request_uri"])
    assert page.status_code == 200 and 'name="password"' in page.text
    assert body["request_uri"] not in page.text  # the sign-in carries a ticket, not the URI
    alice = server.demo["user"]
    consent = browser.follow(browser.login(page, alice["username"], alice["password"]))
    redirect = browser.consent(consent) if 'value="allow"' in consent.text else consent
    query = query_of(redirect.headers["location"])
    assert redirect.headers["location"].startswith(app["redirect_uri"] + "?")
    assert query["state"] == "st-par" and query["iss"] == server.issuer
    tokens = exchange_code(server.base_url, app, code_from(redirect))
    assert tokens["token_type"] == "Bearer"
    assert id_token_claims(server, tokens["id_token"])["nonce"] == "n-par"


def test_a_public_app_pushes_with_pkce(server: Server, browser: Browser) -> None:
    app = dict(server.demo["public_app"])
    pkce = Pkce()
    pkce_params = {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    data = request_params(server, app, scope="openid profile", **pkce_params)
    response = push(server.base_url, data)  # a public app names itself (§2)
    assert response.status_code == 201, response.text
    redirect = sign_in(
        server, browser, client_id=app["client_id"], request_uri=response.json()["request_uri"]
    )
    grant = {
        "grant_type": "authorization_code",
        "code": code_from(redirect),
        "redirect_uri": app["redirect_uri"],
        "client_id": app["client_id"],
        "code_verifier": pkce.verifier,
    }
    tokens = token_request(server.base_url, grant)
    assert tokens.status_code == 200, tokens.text


def test_a_pushed_prompt_login_asks_for_the_sign_in_once(server: Server, browser: Browser) -> None:
    app = confidential(server)
    sign_in(server, browser, **request_params(server, app))  # a session already
    request_uri = pushed_uri(server, app, prompt="login", max_age="0")
    redirect = sign_in(server, browser, client_id=app["client_id"], request_uri=request_uri)
    assert code_from(redirect)


# --- request_uri: once, one app, a short life (§4) ---------------------------------------------


def test_a_request_uri_is_used_once(server: Server, browser: Browser) -> None:
    app = confidential(server)
    request_uri = pushed_uri(server, app)
    code_from(sign_in(server, browser, client_id=app["client_id"], request_uri=request_uri))
    again = browser.authorize(client_id=app["client_id"], request_uri=request_uri)
    assert_expired_page(again)
    # A fresh browser fares no better.
    with Browser(server.base_url) as other:
        assert_expired_page(other.authorize(client_id=app["client_id"], request_uri=request_uri))


def test_a_request_uri_is_only_for_the_app_that_pushed_it(
    server: Server, browser: Browser
) -> None:
    app = confidential(server)
    request_uri = pushed_uri(server, app)
    public = server.demo["public_app"]
    assert_expired_page(browser.authorize(client_id=public["client_id"], request_uri=request_uri))
    assert_expired_page(browser.authorize(request_uri=request_uri))  # §4: client_id required
    # Neither attempt used it up.
    code_from(sign_in(server, browser, client_id=app["client_id"], request_uri=request_uri))


def test_a_request_uri_expires(short_server: Server) -> None:
    app = confidential(short_server)
    request_uri = pushed_uri(short_server, app)
    time.sleep(SHORT_TTL + 1)
    with Browser(short_server.base_url) as browser:
        assert_expired_page(browser.authorize(client_id=app["client_id"], request_uri=request_uri))


def test_an_unknown_request_uri_is_an_error_page(server: Server, browser: Browser) -> None:
    app = confidential(server)
    response = browser.authorize(client_id=app["client_id"], request_uri=PREFIX + "x" * 43)
    assert_expired_page(response)


# --- the push refused (§2.3) -------------------------------------------------------------------


def test_a_push_without_client_authentication_is_invalid_client(server: Server) -> None:
    app = confidential(server)
    data = request_params(server, app)
    for response in (
        push(server.base_url, data),  # a confidential app's id alone
        push(server.base_url, data, (app["client_id"], "wrong-secret")),
        push(server.base_url, {k: v for k, v in data.items() if k != "client_id"}),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uri": "https://evil.test/cb"}, "invalid_request"),
        ({"request_uri": PREFIX + "x" * 43}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid https://unknown.test/read"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_request"),
    ],
)
def test_bad_pushed_parameters_get_the_authorization_endpoints_error(
    server: Server, change: dict[str, str], error: str
) -> None:
    app = confidential(server)
    response = push(server.base_url, {**request_params(server, app), **change}, basic_auth(app))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert "request_uri" not in response.json()


def test_a_repeated_pushed_parameter_is_refused(server: Server) -> None:
    app = confidential(server)
    body = httpx.QueryParams(request_params(server, app)).add("scope", "openid")
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/par",
        content=str(body),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=basic_auth(app),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_an_app_without_the_code_grant_is_an_unauthorized_client(server: Server) -> None:
    machine = server.cli_json(
        *("admin", "apps", "create", "--name", f"PAR machine {next(_names)}"),
        *("--grant-type", "client_credentials"),
    )
    data = {"response_type": "code", "client_id": machine["client_id"], "scope": "openid"}
    response = push(server.base_url, data, (machine["client_id"], machine["client_secret"]))
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("unauthorized_client", "invalid_request")


# --- requiring PAR (§6) ------------------------------------------------------------------------


def test_an_app_that_requires_par_refuses_a_plain_request(server: Server, browser: Browser) -> None:
    app = new_app(server, "--require-pushed-authorization-requests")
    plain = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": "https://par.test/cb",
        "scope": "openid",
        "state": "st",
    }
    response = browser.authorize(**plain)
    assert response.status_code == 302, response.text[:500]
    query = query_of(response.headers["location"])
    assert response.headers["location"].startswith("https://par.test/cb?")
    assert query["error"] == "invalid_request" and query["state"] == "st"
    assert "code" not in query
    pushed = push(server.base_url, plain, (app["client_id"], app["client_secret"]))
    assert pushed.status_code == 201, pushed.text
    page = browser.authorize(client_id=app["client_id"], request_uri=pushed.json()["request_uri"])
    assert page.status_code == 200 and 'name="password"' in page.text


def test_a_domain_that_requires_par_refuses_plain_requests(server: Server) -> None:
    name = f"par{next(_names)}"
    create_domain(server, name)
    server.cli_json(
        *("admin", "domains", "update", name),
        *("--setting", "require_pushed_authorization_requests=true"),
    )
    issuer = f"{server.base_url}/domains/{name}"
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert metadata["require_pushed_authorization_requests"] is True
    app = new_app(server, domain=name)
    plain = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": "https://par.test/cb",
        "scope": "openid",
        "state": "st",
    }
    with Browser(issuer) as browser:
        response = browser.authorize(**plain)
        assert response.status_code == 302, response.text[:500]
        assert query_of(response.headers["location"])["error"] == "invalid_request"
        pushed = push(issuer, plain, (app["client_id"], app["client_secret"]))
        assert pushed.status_code == 201, pushed.text
        uri = pushed.json()["request_uri"]
        page = browser.authorize(client_id=app["client_id"], request_uri=uri)
        assert page.status_code == 200 and 'name="password"' in page.text
    # The default domain does not require it.
    default = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert default["require_pushed_authorization_requests"] is False


# --- the pushed request cannot be changed in the browser ---------------------------------------


def test_a_changed_pushed_request_in_the_sign_in_form_is_refused(
    server: Server, browser: Browser
) -> None:
    app = confidential(server)
    page = browser.authorize(client_id=app["client_id"], request_uri=pushed_uri(server, app))
    fields = form_fields(page.text)
    carried = query_of("?" + fields["authz"])
    assert set(carried) == {"client_id", "pushed_request"}
    sealed = carried["pushed_request"]
    middle = len(sealed) // 2
    changed = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    forged = {**carried, "pushed_request": changed}
    alice = server.demo["user"]
    response = browser.http.post(
        "/oauth2/v1/login",
        data={
            **fields,
            "authz": str(httpx.QueryParams(forged)),
            "username": alice["username"],
            "password": alice["password"],
        },
    )
    assert response.status_code == 400, response.text[:500]
    assert EXPIRED in response.text
    # Nor at the authorization endpoint itself.
    assert_expired_page(browser.http.get("/oauth2/v1/authorize?" + str(httpx.QueryParams(forged))))
