"""Issue 12, the identity domain's part: who learns about a token, and what a revocation ends.

Introspection answers only the token's client or a resource server of its audience (RFC 7662
§2.1, §4), the revocation feed only resource servers; a code obtained before a password change
or an administrator's revocation is refused after it; a refresh retry inside the grace window
whose successor was used already is a replay (RFC 9700 §4.14.2); and bad input at the
authorization, userinfo and feed endpoints gets the protocol's error, never a 500.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.admin import console_token
from tests.support.flow import (
    basic_auth,
    demo_app,
    demo_auth,
    exchange_code,
    query_of,
    token_request,
    user_code,
    user_tokens,
)
from tests.support.server import Server, running_server

GRACE_SECONDS = 30.0  # long: the retry tests must never race the window
PASSWORD = "Correct-Horse-Battery-7431"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    grace = {"TESSERA_REFRESH_GRACE_SECONDS": str(GRACE_SECONDS)}
    with running_server(tmp_path_factory.mktemp("idp-issue12"), extra_env=grace) as srv:
        yield srv


@pytest.fixture(scope="module")
def other_app(server: Server) -> dict[str, Any]:
    """A confidential app that is neither the tokens' client nor a resource server."""
    created = server.cli_json(
        "admin", "apps", "create", "--name", "Unrelated app",
        "--grant-type", "client_credentials",
        "--allow-scope", server.demo["resource"]["scope"],
    )  # fmt: skip
    return dict(created)


@pytest.fixture(scope="module")
def resource_server(server: Server) -> dict[str, Any]:
    """A confidential app registered as the resource server of the demo resource."""
    created = server.cli_json(
        "admin", "apps", "create", "--name", "Integration resource server",
        "--grant-type", "client_credentials",
        "--resource-server-for", server.demo["resource"]["audience"],
    )  # fmt: skip
    return dict(created)


def scope(server: Server) -> str:
    return "openid profile offline_access " + server.demo["resource"]["scope"]


def new_user(server: Server) -> str:
    username = f"cutoff{next(_names)}"
    server.cli_json("admin", "users", "create", username, "--password-stdin", input=PASSWORD + "\n")
    return username


def introspect(server: Server, auth: tuple[str, str], token: str, **extra: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect", data={"token": token, **extra}, auth=auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(server: Server, token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return token_request(server.base_url, data, auth=demo_auth(server))


def feed(server: Server, auth: tuple[str, str] | None, **params: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/oauth2/v1/revocations", params=params, auth=auth)


# --- introspection and the feed disclose nothing to other apps ---------------------------------


def test_another_app_cannot_introspect_a_users_access_or_refresh_token(
    server: Server, other_app: dict[str, Any]
) -> None:
    tokens = user_tokens(server, "alice", "Wonderland-Demo-2026", scope=scope(server))
    cc = token_request(
        server.base_url, {"grant_type": "client_credentials"}, auth=demo_auth(server)
    ).json()
    stranger = basic_auth(other_app)
    # Twice each: the first answer loads the app into the cache, the second is answered on the
    # event loop from it; both must say nothing.
    for _ in range(2):
        assert introspect(server, stranger, tokens["access_token"]) == {"active": False}
        assert introspect(server, stranger, cc["access_token"]) == {"active": False}
        assert introspect(server, stranger, tokens["refresh_token"]) == {"active": False}
        assert introspect(
            server, stranger, tokens["refresh_token"], token_type_hint="refresh_token"
        ) == {"active": False}
    # The token's own client still gets the claims.
    own = introspect(server, demo_auth(server), tokens["access_token"])
    assert own["active"] is True and own["sub"] == server.demo["user"]["sub"]
    assert introspect(server, demo_auth(server), tokens["refresh_token"])["active"] is True


def test_a_resource_server_of_the_audience_may_introspect_only_that_audiences_tokens(
    server: Server, resource_server: dict[str, Any]
) -> None:
    tokens = user_tokens(server, "alice", "Wonderland-Demo-2026", scope=scope(server))
    auth = basic_auth(resource_server)
    for _ in range(2):  # the thread-pool path, then the cached app on the event loop
        body = introspect(server, auth, tokens["access_token"])
        assert body["active"] is True and body["aud"] == server.demo["resource"]["audience"]
    assert introspect(server, auth, tokens["refresh_token"])["active"] is True
    # Not a token for another audience: an OpenID-only grant's tokens (aud: the issuer).
    openid_only = user_tokens(
        server, "alice", "Wonderland-Demo-2026", scope="openid offline_access"
    )
    assert introspect(server, auth, openid_only["access_token"]) == {"active": False}
    assert introspect(server, auth, openid_only["refresh_token"]) == {"active": False}


def test_a_wrong_or_unknown_token_type_hint_hides_no_token(server: Server) -> None:
    """Introspection searches every token type whatever the hint (RFC 7662 §2.1); revocation
    ignores an invalid hint value (RFC 7009 §2.2)."""
    tokens = user_tokens(server, "alice", "Wonderland-Demo-2026", scope=scope(server))
    auth = demo_auth(server)
    for _ in range(2):  # the thread-pool path, then the cached app on the event loop
        access = introspect(server, auth, tokens["access_token"], token_type_hint="refresh_token")
        assert access["active"] is True
        refresh_ = introspect(server, auth, tokens["refresh_token"], token_type_hint="access_token")
        assert refresh_["active"] is True
    revoked = httpx.post(
        f"{server.base_url}/oauth2/v1/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "no_such_type"},
        auth=auth,
    )
    assert revoked.status_code == 200, revoked.text
    assert introspect(server, auth, tokens["refresh_token"]) == {"active": False}
    assert introspect(server, auth, tokens["access_token"]) == {"active": False}


def test_only_resource_servers_may_read_the_revocation_feed(
    server: Server, other_app: dict[str, Any], resource_server: dict[str, Any]
) -> None:
    refused = feed(server, basic_auth(other_app), since="0")
    assert refused.status_code == 403
    assert refused.json()["error"] == "unauthorized_client"
    anonymous = feed(server, None, since="0")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    assert "www-authenticate" in anonymous.headers
    for auth in (basic_auth(resource_server), demo_auth(server)):
        allowed = feed(server, auth, since="0")
        assert allowed.status_code == 200 and "events" in allowed.json()


def test_marking_and_unmarking_an_app_as_a_resource_server_takes_effect(
    server: Server, other_app: dict[str, Any]
) -> None:
    audience = server.demo["resource"]["audience"]
    view = server.cli_json(
        "admin", "apps", "set-resource-server", other_app["client_id"], "--resource", audience
    )
    assert view["resource_server_for"] == [audience]
    unmarked = server.cli_json("admin", "apps", "set-resource-server", other_app["client_id"])
    assert unmarked["resource_server_for"] == []
    refused = server.cli("admin", "apps", "set-resource-server", other_app["client_id"],
                         "--resource", "https://nowhere.test", check=False)  # fmt: skip
    assert refused.returncode != 0 and "no resource" in refused.stdout + refused.stderr


@pytest.mark.parametrize("wait", ["nan", "inf", "-1", "1e999", "Infinity", "abc"])
def test_a_feed_wait_that_is_not_finite_seconds_is_refused_not_polled_forever(
    server: Server, wait: str
) -> None:
    response = feed(server, demo_auth(server), since="0", wait=wait)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- codes do not survive a revocation of their user -------------------------------------------


def test_a_code_obtained_before_a_password_change_is_refused_after_it(server: Server) -> None:
    username = new_user(server)
    app = demo_app(server)
    code = user_code(server.base_url, username, PASSWORD, app, scope=scope(server))
    server.cli("admin", "users", "set-password", username, "--password-stdin",
               input="Another-Horse-Battery-9911\n")  # fmt: skip

    response = token_request(
        server.base_url,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uri"]},
        auth=basic_auth(app),
    )

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_code_obtained_before_an_administrators_revocation_is_refused_after_it(
    server: Server,
) -> None:
    username = new_user(server)
    app = demo_app(server)
    code = user_code(server.base_url, username, PASSWORD, app, scope=scope(server))
    server.cli("admin", "tokens", "revoke", "--user", username)

    response = token_request(
        server.base_url,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uri"]},
        auth=basic_auth(app),
    )

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    # A code obtained after the revocation works.
    fresh = user_code(server.base_url, username, PASSWORD, app, scope=scope(server))
    assert "access_token" in exchange_code(server.base_url, app, fresh)


# --- the refresh grace retry --------------------------------------------------------------------


def test_a_grace_retry_after_the_successor_was_used_revokes_the_family(server: Server) -> None:
    tokens = user_tokens(server, "alice", "Wonderland-Demo-2026", scope=scope(server))
    first = refresh(server, tokens["refresh_token"])
    assert first.status_code == 200
    successor = first.json()["refresh_token"]
    # A retry while the successor is unused gets the same successor (a lost response).
    retry = refresh(server, tokens["refresh_token"])
    assert retry.status_code == 200 and retry.json()["refresh_token"] == successor
    second = refresh(server, successor)
    assert second.status_code == 200

    replay = refresh(server, tokens["refresh_token"])  # inside the grace window, successor used

    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    latest = second.json()
    assert refresh(server, latest["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(server, demo_auth(server), latest["access_token"]) == {"active": False}


# --- smaller items -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "error"),
    [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")],
)
def test_request_objects_at_authorize_redirect_with_the_oidc_error_not_a_500(
    server: Server, param: str, error: str
) -> None:
    app = demo_app(server)
    value = "eyJhbGciOiJub25lIn0.e30." if param == "request" else "https://evil.test/req.jwt"
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"],
        "scope": "openid",
        "state": "st-req",
        param: value,
    }
    response = httpx.get(f"{server.base_url}/oauth2/v1/authorize?{urlencode(query)}")
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(app["redirect_uri"] + "?")
    params = query_of(location)
    assert params["error"] == error
    assert params["state"] == "st-req" and params["iss"] == server.issuer


def test_metadata_says_request_objects_are_not_supported(server: Server) -> None:
    doc = httpx.get(f"{server.base_url}/.well-known/openid-configuration").json()
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False


def test_userinfo_refuses_a_token_in_the_header_and_the_body_at_once(server: Server) -> None:
    token = user_tokens(server, "alice", "Wonderland-Demo-2026", scope="openid")["access_token"]
    url = f"{server.base_url}/oauth2/v1/userinfo"
    both = httpx.post(
        url, data={"access_token": token}, headers={"Authorization": f"Bearer {token}"}
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    # Each method alone is accepted (RFC 6750 §2.1, §2.2).
    assert httpx.post(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.post(url, data={"access_token": token}).status_code == 200


def test_a_resource_whose_scopes_collide_with_anothers_is_refused(server: Server) -> None:
    # `https://a.test` + `xscope` and `https://a.testx` + `scope` both write
    # `https://a.testxscope`: an app allowed one would get a token for the other audience.
    server.cli_json("admin", "resources", "create", "--name", "Collide A",
                    "--audience", "https://a.test", "--scope", "xscope")  # fmt: skip
    refused = server.cli("admin", "resources", "create", "--name", "Collide B",
                         "--audience", "https://a.testx", "--scope", "scope",
                         check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "would name scopes of two resources" in refused.stdout + refused.stderr
    names = [r["name"] for r in server.cli_json("admin", "resources", "list")]
    assert "Collide B" not in names


def test_a_redirect_uri_with_a_backslash_cannot_be_registered(server: Server) -> None:
    refused = server.cli("admin", "apps", "create", "--name", "Backslash app",
                         "--redirect-uri", "https://app.example.test\\@evil.test/cb",
                         check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "must not contain" in refused.stdout + refused.stderr


def test_the_admin_api_marks_and_unmarks_a_resource_server_and_the_feed_follows(
    server: Server,
) -> None:
    token = console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")["access_token"]
    api = httpx.Client(
        base_url=f"{server.base_url}/admin/v1", headers={"Authorization": f"Bearer {token}"}
    )
    audience = server.demo["resource"]["audience"]
    with api:
        created = api.post(
            "/apps",
            json={
                "name": "API resource server",
                "grant_types": ["client_credentials"],
                "resource_server_for": [audience],
            },
        )
        assert created.status_code == 201, created.text
        app = created.json()
        assert app["resource_server_for"] == [audience]
        auth = (app["client_id"], app["client_secret"])
        assert feed(server, auth, since="0").status_code == 200

        unmarked = api.put(
            f"/apps/{app['client_id']}/resource-server-for", json={"resource_server_for": []}
        )
        assert unmarked.status_code == 200 and unmarked.json()["resource_server_for"] == []
        assert feed(server, auth, since="0").status_code == 403

        unknown = api.put(
            f"/apps/{app['client_id']}/resource-server-for",
            json={"resource_server_for": ["https://nowhere.test"]},
        )
        assert unknown.status_code == 400, unknown.text
        public = api.post(
            "/apps",
            json={
                "name": "Public would-be resource server",
                "public": True,
                "redirect_uris": ["http://127.0.0.1/cb"],
                "resource_server_for": [audience],
            },
        )
        assert public.status_code == 400, public.text
