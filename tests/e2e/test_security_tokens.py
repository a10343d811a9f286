"""docs/security.md rules 16-24 as they concern the identity domain.

Refresh-token rotation and families, client binding, scope narrowing, the end of refresh tokens,
our bearer-protected endpoint (userinfo) as the resource server of items 19-20, client
authentication, `sub_type`, secrets kept out of logs and the database, and forwarded headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.support.flow import (
    Browser,
    Pkce,
    code_from,
    code_params,
    demo_app,
    demo_auth,
    exchange_code,
    form_fields,
    query_of,
    race,
    signed_in_browser,
    token_request,
)
from tests.support.server import Server, running_server, stored_data

ALICE = ("alice", "Wonderland-Demo-2026")
GRACE_SECONDS = 1.0
STATE = "st-tokens"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo domain with a 1 s refresh grace window, so replay tests wait little."""
    grace = {"TESSERA_REFRESH_GRACE_SECONDS": str(GRACE_SECONDS)}
    with running_server(tmp_path_factory.mktemp("idp-tokens"), extra_env=grace) as srv:
        yield srv


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Browser]:
    with signed_in_browser(server.base_url, *ALICE, **conf_params(server)) as b:
        yield b


@pytest.fixture(scope="module")
def other_app(server: Server) -> dict[str, Any]:
    return server.cli_json(
        "admin", "apps", "create", "--name", "Another confidential app",
        "--redirect-uri", server.demo["confidential_app"]["redirect_uri"],
        "--allow-scope", "openid", "--allow-scope", "profile", "--allow-scope", "email",
    )  # fmt: skip


def conf_params(server: Server, **extra: str) -> dict[str, str]:
    scope = "openid profile " + server.demo["resource"]["scope"]
    return {**code_params(demo_app(server), scope=scope, state=STATE), **extra}


def user_tokens(server: Server, b: Browser, **extra: str) -> dict[str, Any]:
    """Tokens of the demo confidential app for the user signed in to `b`."""
    code = code_from(b.sign_in_and_authorize("", "", **conf_params(server, **extra)))
    return exchange_code(server.base_url, demo_app(server), code)


def refresh(server: Server, refresh_token: str, auth: Any = None, **extra: str) -> httpx.Response:
    return token_request(
        server.base_url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        auth=auth if auth is not None else demo_auth(server),
    )


def introspect(server: Server, token: str) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + "/oauth2/v1/introspect", data={"token": token}, auth=demo_auth(server)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def userinfo(server: Server, authorization: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.get(server.base_url + "/oauth2/v1/userinfo", headers=headers, **kwargs)


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = dict(response.json())
    assert body["error"] == error, body
    assert "access_token" not in body
    return body


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    challenge = response.headers["www-authenticate"]
    assert challenge.lower().startswith("bearer"), challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert "sub" not in response.text


def new_user(server: Server, prefix: str) -> tuple[str, str]:
    username = prefix + secrets.token_hex(3)
    password = "Looking-Glass-" + secrets.token_hex(6)
    server.cli("admin", "users", "create", username, "--password-stdin", input=password + "\n")
    return username, password


def signed_in(server: Server, username: str, password: str, **extra: str) -> tuple[Browser, str]:
    """A browser where the user signed in and consented to the demo app; and a first code."""
    b = Browser(server.base_url)
    return b, code_from(b.sign_in_and_authorize(username, password, **conf_params(server, **extra)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def compact(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}.{signature}"


def hs256(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    unsigned = compact({**header, "alg": "HS256"}, payload, "").rstrip(".")
    mac = hmac.new(key, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64url(mac)}"


# --- item 16 -----------------------------------------------------------------------------------


def test_item16_refresh_tokens_rotate_and_a_replay_revokes_the_family(
    server: Server, alice: Browser
) -> None:
    first = user_tokens(server, alice)
    r1 = first["refresh_token"]
    second = refresh(server, r1)
    assert second.status_code == 200, second.text
    r2, a2 = second.json()["refresh_token"], second.json()["access_token"]
    assert r2 != r1
    assert introspect(server, r1) == {"active": False}  # used
    assert introspect(server, r2)["active"] is True
    time.sleep(GRACE_SECONDS + 0.5)

    assert_oauth_error(refresh(server, r1), "invalid_grant")  # the old one: refused…

    # …and its replay revoked the whole family: the successor and every access token.
    assert_oauth_error(refresh(server, r2), "invalid_grant")
    assert introspect(server, r2) == {"active": False}
    assert introspect(server, a2) == {"active": False}
    assert introspect(server, first["access_token"]) == {"active": False}
    assert_invalid_token(userinfo(server, "Bearer " + a2))


def test_item16_a_retry_within_the_grace_window_gets_the_same_successor(
    server: Server, alice: Browser
) -> None:
    r1 = user_tokens(server, alice)["refresh_token"]
    first, retry = refresh(server, r1), refresh(server, r1)
    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert first.json()["refresh_token"] == retry.json()["refresh_token"]
    # The family is intact: the successor works.
    assert refresh(server, first.json()["refresh_token"]).status_code == 200


def test_item16_parallel_refreshes_with_one_token_give_one_new_family_member(
    server: Server, alice: Browser
) -> None:
    n = 20
    r1 = user_tokens(server, alice)["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": r1}
    responses = race(
        n,
        lambda client: client.post(
            server.base_url + "/oauth2/v1/token", data=data, auth=demo_auth(server)
        ),
    )
    assert all(r.status_code in (200, 400) for r in responses), [r.status_code for r in responses]
    successors = {r.json()["refresh_token"] for r in responses if r.status_code == 200}
    assert len(successors) == 1, successors
    for r in responses:
        if r.status_code == 400:
            assert r.json()["error"] == "invalid_grant"
    (successor,) = successors
    assert introspect(server, successor)["active"] is True
    assert refresh(server, successor).status_code == 200


# --- item 17 -----------------------------------------------------------------------------------


def test_item17_refresh_token_works_only_for_the_client_it_was_issued_to(
    server: Server, alice: Browser, other_app: dict[str, Any]
) -> None:
    tokens = user_tokens(server, alice, scope="openid profile")
    stolen = refresh(
        server, tokens["refresh_token"], auth=(other_app["client_id"], other_app["client_secret"])
    )
    assert_oauth_error(stolen, "invalid_grant")
    public = token_request(
        server.base_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": server.demo["public_app"]["client_id"],
        },
    )
    assert_oauth_error(public, "invalid_grant")


@pytest.mark.parametrize("how", ["no-client", "client-id-only", "wrong-secret", "empty-secret"])
def test_item17_refresh_without_client_authentication_gets_invalid_client(
    server: Server, alice: Browser, how: str
) -> None:
    rt = user_tokens(server, alice)["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": rt}
    client_id = demo_app(server)["client_id"]
    auth: Any = None
    if how == "client-id-only":
        data["client_id"] = client_id
    elif how == "wrong-secret":
        auth = (client_id, "not-the-secret")
    elif how == "empty-secret":
        auth = (client_id, "")
    response = token_request(server.base_url, data, auth=auth)
    assert_oauth_error(response, "invalid_client", 401)
    assert "www-authenticate" in response.headers
    # The refresh token was not spent by the failed attempt.
    assert refresh(server, rt).status_code == 200


@pytest.mark.parametrize(
    "scope",
    [
        "openid profile email",
        "email",
        "offline_access",
        "RESOURCE",
        "openid RESOURCE",
        "https://integration.tessera.test/urn:tessera:integration:run",
        "https://integration.tessera.test:443urn:tessera:integration:run",
        "no-such-scope",
    ],
)
def test_item17_refresh_never_widens_scope_or_audience(
    server: Server, alice: Browser, scope: str
) -> None:
    tokens = user_tokens(server, alice, scope="openid profile")
    scope = scope.replace("RESOURCE", server.demo["resource"]["scope"])
    assert_oauth_error(refresh(server, tokens["refresh_token"], scope=scope), "invalid_scope")
    narrowed = refresh(server, tokens["refresh_token"], scope="openid")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "openid"
    assert jwt_parts(narrowed.json()["access_token"])[1]["aud"] == tokens_audience(tokens)


def tokens_audience(tokens: dict[str, Any]) -> Any:
    return jwt_parts(tokens["access_token"])[1]["aud"]


def test_item17_refresh_of_a_resource_grant_keeps_its_audience(
    server: Server, alice: Browser
) -> None:
    tokens = user_tokens(server, alice)
    audience = server.demo["resource"]["audience"]
    assert tokens_audience(tokens) == audience
    other = "https://integration.tessera.test:443urn:tessera:integration:monitor"
    assert_oauth_error(refresh(server, tokens["refresh_token"], scope=other), "invalid_scope")
    again = refresh(server, tokens["refresh_token"])
    assert again.status_code == 200
    assert tokens_audience(again.json()) == audience


# --- item 18 -----------------------------------------------------------------------------------


def test_item18_a_password_change_ends_refresh_tokens(server: Server) -> None:
    username, password = new_user(server, "pw")
    b, code = signed_in(server, username, password)
    try:
        tokens = exchange_code(server.base_url, demo_app(server), code)
        assert introspect(server, tokens["refresh_token"])["active"] is True
        time.sleep(1.1)  # password_changed_at is compared with second-resolution times
        server.cli(
            "admin", "users", "set-password", username, "--password-stdin",
            input="Brand-New-Secret-" + secrets.token_hex(6) + "\n",
        )  # fmt: skip
        assert_oauth_error(refresh(server, tokens["refresh_token"]), "invalid_grant")
        assert introspect(server, tokens["refresh_token"]) == {"active": False}
        # The browser session ended too: the next authorization asks for the password.
        again = b.authorize(**conf_params(server))
        assert again.status_code == 200 and 'name="password"' in again.text
    finally:
        b.close()


def test_item18_an_administrators_revocation_ends_refresh_and_access_tokens(
    server: Server,
) -> None:
    username, password = new_user(server, "rv")
    b, code = signed_in(server, username, password)
    try:
        tokens = exchange_code(server.base_url, demo_app(server), code)
        assert userinfo(server, "Bearer " + tokens["access_token"]).status_code == 200
        time.sleep(1.1)
        server.cli("admin", "tokens", "revoke", "--user", username)
        assert_oauth_error(refresh(server, tokens["refresh_token"]), "invalid_grant")
        assert introspect(server, tokens["refresh_token"]) == {"active": False}
        assert introspect(server, tokens["access_token"]) == {"active": False}
        assert_invalid_token(userinfo(server, "Bearer " + tokens["access_token"]))
        again = b.authorize(**conf_params(server))
        assert again.status_code == 200 and 'name="password"' in again.text
    finally:
        b.close()


# --- item 19 (userinfo is our resource server) -------------------------------------------------


@pytest.fixture(scope="module")
def alice_tokens(server: Server, alice: Browser) -> dict[str, Any]:
    tokens = user_tokens(server, alice)
    assert userinfo(server, "Bearer " + tokens["access_token"]).status_code == 200
    return tokens


def forged(kind: str, token: str, jwks: list[dict[str, Any]], id_token: str) -> str:
    header, payload, signature = jwt_parts(token)
    mine = next(k for k in jwks if k["kid"] == header["kid"])
    if kind == "alg-none":
        return compact({**header, "alg": "none"}, payload, "")
    if kind == "alg-none-signature-kept":
        return compact({**header, "alg": "none"}, payload, signature)
    if kind == "alg-None-mixed-case":
        return compact({**header, "alg": "None"}, payload, "")
    if kind == "no-alg":
        return compact({k: v for k, v in header.items() if k != "alg"}, payload, signature)
    if kind == "hs256-public-key-pem":
        pem = ECKey.import_key(mine).as_pem(private=False)
        return hs256(header, payload, pem)
    if kind == "hs256-rsa-public-key-pem":
        rsa = next(k for k in jwks if k["kty"] == "RSA")
        pem = RSAKey.import_key(rsa).as_pem(private=False)
        return hs256({**header, "kid": rsa["kid"]}, payload, pem)
    if kind == "hs256-jwk-json":
        return hs256(header, payload, json.dumps(mine).encode())
    if kind == "hs512-empty-key":
        unsigned = compact({**header, "alg": "HS512"}, payload, "").rstrip(".")
        return f"{unsigned}.{b64url(hmac.new(b'', unsigned.encode(), hashlib.sha512).digest())}"
    if kind == "tampered-sub":
        return compact(
            header, {**payload, "sub": "someone-else", "user_id": "someone-else"}, signature
        )
    if kind == "tampered-scope":
        return compact(header, {**payload, "scope": payload["scope"] + " email"}, signature)
    if kind == "tampered-exp":
        return compact(header, {**payload, "exp": payload["exp"] + 86400}, signature)
    if kind == "tampered-signature":
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return compact(header, payload, flipped)
    if kind == "no-signature":
        return compact(header, payload, "")
    if kind == "foreign-key-known-kid":
        return jwt.encode(header, payload, ECKey.generate_key("P-256"))
    if kind == "foreign-key-unknown-kid":
        return jwt.encode(
            {**header, "kid": "unknown-kid-" + secrets.token_hex(4)},
            payload,
            ECKey.generate_key("P-256"),
        )
    if kind == "foreign-key-embedded-jwk":
        key = ECKey.generate_key("P-256")
        return jwt.encode({**header, "jwk": key.as_dict(private=False)}, payload, key)
    if kind == "wrong-typ-id-token":
        return id_token
    if kind == "wrong-typ-header":
        return compact({**header, "typ": "JWT"}, payload, signature)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "alg-none",
        "alg-none-signature-kept",
        "alg-None-mixed-case",
        "no-alg",
        "hs256-public-key-pem",
        "hs256-rsa-public-key-pem",
        "hs256-jwk-json",
        "hs512-empty-key",
        "tampered-sub",
        "tampered-scope",
        "tampered-exp",
        "tampered-signature",
        "no-signature",
        "foreign-key-known-kid",
        "foreign-key-unknown-kid",
        "foreign-key-embedded-jwk",
        "wrong-typ-id-token",
        "wrong-typ-header",
    ],
)
def test_item19_bearer_endpoint_refuses_forged_or_wrong_tokens(
    server: Server, alice_tokens: dict[str, Any], kind: str
) -> None:
    jwks = httpx.get(server.base_url + "/oauth2/v1/keys").json()["keys"]
    token = forged(kind, alice_tokens["access_token"], jwks, alice_tokens["id_token"])
    assert_invalid_token(userinfo(server, "Bearer " + token))
    # Introspection agrees.
    assert introspect(server, token) == {"active": False}


def test_item19_bearer_endpoint_refuses_a_token_in_the_query_string(
    server: Server, alice_tokens: dict[str, Any]
) -> None:
    response = userinfo(server, params={"access_token": alice_tokens["access_token"]})
    assert response.status_code in (400, 401), response.text
    assert "sub" not in response.text
    assert "www-authenticate" in response.headers
    # Even with a valid header alongside it, a token in the URI is refused.
    both = userinfo(
        server,
        "Bearer " + alice_tokens["access_token"],
        params={"access_token": alice_tokens["access_token"]},
    )
    assert both.status_code in (400, 401)


@pytest.mark.parametrize("token", ["user-without-openid", "client-credentials"])
def test_item19_bearer_endpoint_answers_insufficient_scope_with_the_scope_needed(
    server: Server, alice: Browser, token: str
) -> None:
    if token == "client-credentials":
        response = token_request(
            server.base_url, {"grant_type": "client_credentials"}, auth=demo_auth(server)
        )
        access = response.json()["access_token"]
    else:
        access = user_tokens(server, alice, scope=server.demo["resource"]["scope"])["access_token"]
    answer = userinfo(server, "Bearer " + access)
    assert answer.status_code == 403, answer.text
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="openid"' in challenge


# --- item 20 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_item20_bearer_scheme_is_matched_case_insensitively(
    server: Server, alice_tokens: dict[str, Any], scheme: str
) -> None:
    response = userinfo(server, f"{scheme} {alice_tokens['access_token']}")
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == server.demo["user"]["sub"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "BearerTOKEN",
        "Bearer a b",
        "Bearer tok@en",
        "Bearer tok\ten",
        "Bearer {token} extra",
        "Bearer ,{token}",
        "Token {token}",
        "Basic dXNlcjpwYXNz",
        "{token}",
        "",
        "Bearer \u00e9t\u00e9",
        "Bearer ==abc",
    ],
)
def test_item20_malformed_authorization_header_gets_400_invalid_request(
    server: Server, alice_tokens: dict[str, Any], header: str
) -> None:
    value = header.replace("{token}", alice_tokens["access_token"])
    # http.client sends header values as given (httpx refuses trailing blanks).
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest("GET", "/oauth2/v1/userinfo")
        connection.putheader("Authorization", value.encode("latin-1"))
        connection.endheaders()
        response = connection.getresponse()
        status, body = response.status, response.read()
        challenge = response.getheader("www-authenticate") or ""
    finally:
        connection.close()
    assert status == 400, (status, body)
    assert json.loads(body)["error"] == "invalid_request"
    assert 'error="invalid_request"' in challenge


def test_item20_two_authorization_headers_get_400_invalid_request(
    server: Server, alice_tokens: dict[str, Any]
) -> None:
    token = alice_tokens["access_token"]
    response = httpx.get(
        server.base_url + "/oauth2/v1/userinfo",
        headers=[
            (b"Authorization", f"Bearer {token}".encode()),
            (b"Authorization", b"Bearer other"),
        ],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_item20_missing_authorization_gets_401_with_a_bearer_challenge(server: Server) -> None:
    response = userinfo(server)
    assert response.status_code == 401
    # RFC 6750 §3.1: a request without any authentication gets no error code in the challenge;
    # RFC 9449 §7.2 (Figure 17): the DPoP scheme is offered beside it, with its algorithms.
    assert response.headers["www-authenticate"] == (
        'Bearer realm="tessera", DPoP realm="tessera", algs="ES256 PS256 RS256 EdDSA"'
    )
    assert response.json() == {"error": "invalid_token"}


# --- item 21 -----------------------------------------------------------------------------------


def client_auth_attempts(server: Server) -> dict[str, tuple[dict[str, str], Any]]:
    c = demo_app(server)
    return {
        "basic-wrong-secret": ({}, (c["client_id"], "wrong-" + c["client_secret"])),
        "basic-secret-prefix": ({}, (c["client_id"], c["client_secret"][:-1])),
        "basic-unknown-client": ({}, (secrets.token_hex(16), c["client_secret"])),
        "basic-empty-secret": ({}, (c["client_id"], "")),
        "post-wrong-secret": ({"client_id": c["client_id"], "client_secret": "wrong"}, None),
        "post-unknown-client": ({"client_id": "nobody", "client_secret": "x"}, None),
        "client-id-only": ({"client_id": c["client_id"]}, None),
        "no-client": ({}, None),
        "public-with-secret": (
            {"client_id": server.demo["public_app"]["client_id"], "client_secret": "guess"},
            None,
        ),
    }


AUTH_CASES = [
    "basic-wrong-secret",
    "basic-secret-prefix",
    "basic-unknown-client",
    "basic-empty-secret",
    "post-wrong-secret",
    "post-unknown-client",
    "client-id-only",
    "no-client",
    "public-with-secret",
]


@pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
@pytest.mark.parametrize("case", AUTH_CASES)
def test_item21_failed_client_authentication_is_401_with_www_authenticate(
    server: Server, alice_tokens: dict[str, Any], endpoint: str, case: str
) -> None:
    extra, auth = client_auth_attempts(server)[case]
    data = {
        "token": {"grant_type": "client_credentials"},
        "introspect": {"token": alice_tokens["access_token"]},
        "revoke": {"token": alice_tokens["refresh_token"]},
    }[endpoint]
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/{endpoint}", data={**data, **extra}, auth=auth
    )
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"], response.headers
    assert "active" not in response.json()
    # A failed revocation revoked nothing.
    assert introspect(server, alice_tokens["refresh_token"])["active"] is True


def test_item21_public_app_cannot_introspect(server: Server, alice_tokens: dict[str, Any]) -> None:
    response = httpx.post(
        server.base_url + "/oauth2/v1/introspect",
        data={
            "token": alice_tokens["access_token"],
            "client_id": server.demo["public_app"]["client_id"],
        },
    )
    assert_oauth_error(response, "invalid_client", 401)
    assert "www-authenticate" in response.headers


# --- item 22 -----------------------------------------------------------------------------------


def test_item22_client_credentials_token_is_distinguishable_from_a_user_token(
    server: Server, alice_tokens: dict[str, Any]
) -> None:
    client_id = demo_app(server)["client_id"]
    cc = token_request(
        server.base_url, {"grant_type": "client_credentials"}, auth=demo_auth(server)
    )
    assert cc.status_code == 200
    client_claims = jwt_parts(cc.json()["access_token"])[1]
    user_claims = jwt_parts(alice_tokens["access_token"])[1]
    assert client_claims["sub_type"] == "client"
    assert client_claims["sub"] == client_id
    assert "user_id" not in client_claims
    assert user_claims["sub_type"] == "user"
    assert user_claims["sub"] == server.demo["user"]["sub"] != client_id
    assert introspect(server, cc.json()["access_token"])["sub_type"] == "client"
    assert introspect(server, alice_tokens["access_token"])["sub_type"] == "user"
    assert "refresh_token" not in cc.json() and "id_token" not in cc.json()


def test_item22_no_client_id_is_also_a_users_sub(server: Server, other_app: dict[str, Any]) -> None:
    users = server.cli_json("admin", "users", "list")
    apps = server.cli_json("admin", "apps", "list")
    user_ids = {u["id"] for u in users}
    client_ids = {a["client_id"] for a in apps}
    assert server.demo["user"]["sub"] in user_ids
    assert other_app["client_id"] in client_ids
    assert len(user_ids) == len(users) and len(client_ids) == len(apps)
    assert not user_ids & client_ids


# --- item 23 -----------------------------------------------------------------------------------


def introspect_then_revoke(server: Server, token: str, auth: tuple[str, str]) -> None:
    """The app sees its live token at introspection, then revokes it."""
    active = httpx.post(server.base_url + "/oauth2/v1/introspect", data={"token": token}, auth=auth)
    assert active.json()["active"] is True
    revoked = httpx.post(server.base_url + "/oauth2/v1/revoke", data={"token": token}, auth=auth)
    assert revoked.status_code == 200


def test_item23_secrets_never_reach_logs_pages_or_the_database(server: Server) -> None:
    username, password = new_user(server, "lk")
    app = server.cli_json(
        "admin", "apps", "create", "--name", "Leak check app",
        "--redirect-uri", "https://leak.example.test/cb",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--grant-type", "client_credentials",
        "--allow-scope", "openid", "--allow-scope", "profile",
        "--allow-scope", server.demo["resource"]["scope"],
    )  # fmt: skip
    auth = (app["client_id"], app["client_secret"])
    wrong_password = "Wrong-Guess-" + secrets.token_hex(8)
    wrong_secret = "Wrong-Secret-" + secrets.token_hex(8)
    pkce = Pkce()
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": "https://leak.example.test/cb",
        "scope": "openid profile " + server.demo["resource"]["scope"],
        "state": "leak-state",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    secrets_seen: dict[str, str] = {
        "password": password,
        "wrong password": wrong_password,
        "client secret": app["client_secret"],
        "wrong client secret": wrong_secret,
        "code verifier": pkce.verifier,
    }
    pages: list[str] = []
    b = Browser(server.base_url)
    try:
        page = b.authorize(**params)
        failed = b.login(page, username, wrong_password)
        assert failed.status_code == 401
        pages.append(failed.text)
        consent = b.follow(b.login(page, username, password))
        code = code_from(b.consent(consent))
        secrets_seen["code"] = code
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": pkce.verifier,
        }
        bad = token_request(server.base_url, data, auth=(app["client_id"], wrong_secret))
        assert bad.status_code == 401
        pages.append(bad.text)
        tokens = token_request(server.base_url, data, auth=auth)
        assert tokens.status_code == 200, tokens.text
        # A replayed code is refused (and audited as such).
        replay = token_request(server.base_url, data, auth=auth)
        assert replay.status_code == 400
        pages.append(replay.text)
        body = tokens.json()
        secrets_seen.update(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            id_token=body["id_token"],
        )
        # A second family, used through refresh, userinfo, introspection and revocation.
        pkce2 = Pkce()
        code2 = code_from(b.authorize(**{**params, "code_challenge": pkce2.challenge}))
        secrets_seen.update({"code 2": code2, "code verifier 2": pkce2.verifier})
        second = token_request(
            server.base_url, {**data, "code": code2, "code_verifier": pkce2.verifier}, auth=auth
        ).json()
        assert userinfo(server, "Bearer " + second["access_token"]).status_code == 200
        rotated = refresh(server, second["refresh_token"], auth=auth)
        assert rotated.status_code == 200, rotated.text
        secrets_seen.update(
            {
                "access token 2": second["access_token"],
                "refresh token 2": second["refresh_token"],
                "rotated refresh token": rotated.json()["refresh_token"],
                "rotated access token": rotated.json()["access_token"],
            }
        )
        introspect_then_revoke(server, rotated.json()["refresh_token"], auth)
        cc = token_request(
            server.base_url,
            {
                "grant_type": "client_credentials",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        )
        assert cc.status_code == 200
        secrets_seen["client credentials token"] = cc.json()["access_token"]
        introspect_then_revoke(server, cc.json()["access_token"], auth)
        refreshed = refresh(server, body["refresh_token"], auth=auth)
        pages.append(refreshed.text)
        bad_refresh = refresh(server, "not-a-real-" + secrets.token_hex(8), auth=auth)
        pages.append(bad_refresh.text)
        bad_auth = token_request(
            server.base_url,
            {"grant_type": "client_credentials"},
            auth=(app["client_id"], wrong_secret),
        )
        pages.append(bad_auth.text)
    finally:
        b.close()
    time.sleep(0.6)  # the audit sink flushes every 100 ms

    for jwt_name in (
        "access_token",
        "id_token",
        "client credentials token",
        "access token 2",
        "rotated access token",
    ):
        secrets_seen[jwt_name + " signature"] = secrets_seen[jwt_name].rsplit(".", 1)[1]
    logs = server.logs()
    stored = stored_data(server.env, server.data_dir)
    assert any(name.startswith(("tessera.db", "postgresql:")) for name in stored), list(stored)
    for name, value in secrets_seen.items():
        assert value not in logs, f"the {name} is in the server log"
        for filename, content in stored.items():
            assert value.encode() not in content, f"the {name} is in {filename}"
        for page_text in pages:
            assert value not in page_text, f"the {name} is echoed in a response"


# --- item 24 -----------------------------------------------------------------------------------

SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Host": "evil.test",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/evil",
    "X-Original-Host": "evil.test",
    "X-Real-IP": "203.0.113.7",
    "Forwarded": "for=203.0.113.7;host=evil.test;proto=https",
}


@pytest.mark.parametrize("host", [None, "evil.test"])
def test_item24_spoofed_forwarded_headers_change_not_the_issuer(
    server: Server, host: str | None
) -> None:
    headers = dict(SPOOFED)
    if host:
        headers["Host"] = host
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = httpx.get(server.base_url + path, headers=headers).json()
        assert doc["issuer"] == server.issuer
        for key, value in doc.items():
            if key.endswith(("_endpoint", "_uri")):
                assert value.startswith(server.issuer + "/"), (key, value)
        assert "evil" not in json.dumps(doc)


def test_item24_spoofed_forwarded_headers_change_no_redirect_or_token_issuer(
    server: Server,
) -> None:
    username, password = new_user(server, "fw")
    b = Browser(server.base_url)
    b.http.headers.update(SPOOFED)
    try:
        page = b.authorize(**conf_params(server))
        assert page.status_code == 200
        assert 'action="/oauth2/v1/login"' in page.text or "evil" not in page.text
        assert "evil" not in page.headers.get("content-security-policy", "")
        login = b.login(page, username, password)
        assert login.status_code == 303
        assert login.headers["location"].startswith("/oauth2/v1/authorize?")
        consent_page = b.follow(login)
        assert "evil" not in form_fields(consent_page.text).get("authz", "")
        done = b.consent(consent_page)
        location = done.headers["location"]
        assert location.startswith(demo_app(server)["redirect_uri"] + "?")
        assert query_of(location)["iss"] == server.issuer
        error = b.authorize(**conf_params(server, scope="nope"))
        assert query_of(error.headers["location"])["iss"] == server.issuer
        tokens = httpx.post(
            server.base_url + "/oauth2/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code_from(done),
                "redirect_uri": demo_app(server)["redirect_uri"],
            },
            auth=demo_auth(server),
            headers=SPOOFED,
        ).json()
        assert jwt_parts(tokens["access_token"])[1]["iss"] == server.issuer
        assert jwt_parts(tokens["id_token"])[1]["iss"] == server.issuer
        out = b.http.get(
            "/oauth2/v1/userlogout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": "http://127.0.0.1:8080/",
            },
        )
        assert out.status_code == 303
        assert out.headers["location"].startswith("http://127.0.0.1:8080/")
    finally:
        b.close()


def test_item24_spoofed_forwarded_for_does_not_change_the_login_rate_limit_key(
    server: Server,
) -> None:
    username, password = new_user(server, "rl")
    b = Browser(server.base_url)
    try:
        page = b.authorize(**conf_params(server))
        for i in range(5):
            response = b.http.post(
                "/oauth2/v1/login",
                data={**form_fields(page.text), "username": username, "password": f"wrong-{i}"},
                headers={
                    "X-Forwarded-For": f"198.51.100.{i + 1}",
                    "X-Real-IP": f"198.51.100.{i + 1}",
                    "Forwarded": f"for=198.51.100.{i + 1}",
                },
            )
            assert response.status_code == 401, response.status_code
        locked = b.http.post(
            "/oauth2/v1/login",
            data={**form_fields(page.text), "username": username, "password": password},
            headers={
                "X-Forwarded-For": "192.0.2.99",
                "X-Real-IP": "192.0.2.99",
                "Forwarded": "for=192.0.2.99",
            },
        )
        assert locked.status_code == 429, locked.status_code
        assert "location" not in locked.headers
    finally:
        b.close()
