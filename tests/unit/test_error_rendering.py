"""One renderer for OAuth errors (RFC 6749 §5.2, RFC 6750 §3), shared by the identity domain
(`tessera.web.errors`) and resource servers (`tessera.resource.errors`); debug text never
reaches a client."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tessera.integration.problems import Problem
from tessera.oauth import errors
from tessera.resource.errors import (
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    RevocationUnavailableError,
)
from tessera.shared.oauth_errors import (
    BASIC_CHALLENGE,
    bearer_challenge,
    error_body,
    error_headers,
)
from tessera.shared.problems import PROBLEM_JSON, problem_document
from tessera.web.errors import oauth_error_response
from tessera.web.problems import problem_body

SECRET_DEBUG = "secret mismatch for app-7 (hash 3f9a) at node-2"


def answer(exc: errors.OAuthError, *, bearer: bool = False) -> tuple[int, dict[str, str], Any]:
    response = oauth_error_response(exc, bearer=bearer)
    return response.status_code, dict(response.headers), orjson.loads(bytes(response.body))


# --- the shared renderer -----------------------------------------------------------------------


def test_a_request_without_a_token_gets_a_challenge_without_error() -> None:
    # RFC 6750 §3.1: no error code or other error information without authentication.
    assert bearer_challenge("tessera") == 'Bearer realm="tessera"'
    headers = error_headers(None, 401, realm="api", bearer=True, description="ignored")
    assert headers == {"WWW-Authenticate": 'Bearer realm="api"'}


def test_a_bad_token_gets_the_error_and_its_description() -> None:
    assert bearer_challenge("api", "invalid_token", "the token has expired") == (
        'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
    )
    assert bearer_challenge("api", "invalid_token") == 'Bearer realm="api", error="invalid_token"'


def test_insufficient_scope_names_the_scope_needed() -> None:
    challenge = bearer_challenge(
        "api", "insufficient_scope", "needs more", "orders:read orders:write"
    )
    assert challenge == (
        'Bearer realm="api", error="insufficient_scope", error_description="needs more", '
        'scope="orders:read orders:write"'
    )


def test_quotes_and_characters_rfc_6750_forbids_never_break_the_header() -> None:
    challenge = bearer_challenge('a "b" \\c', "invalid_token", 'the "x" token\\é\r\nX-Evil: 1')
    assert challenge.startswith('Bearer realm="a \\"b\\" \\\\c", error="invalid_token", ')
    description = challenge.split("error_description=", 1)[1]
    assert description == "\"the 'x' token????X-Evil: 1\""
    assert "\r" not in challenge and "\n" not in challenge
    assert bearer_challenge("api", "insufficient_scope", "", 'a"b\x7fc').endswith('scope="a\'b?c"')


def test_invalid_client_gets_the_basic_challenge() -> None:
    # RFC 6749 §5.2: 401 with the scheme the client should authenticate with.
    headers = error_headers("invalid_client", 401, realm="tessera", bearer=True)
    assert headers == {"WWW-Authenticate": BASIC_CHALLENGE}
    assert BASIC_CHALLENGE == 'Basic realm="tessera", charset="UTF-8"'


def test_a_503_gets_retry_after_and_no_challenge() -> None:
    headers = error_headers("temporarily_unavailable", 503, realm="api", bearer=True)
    assert headers == {"Retry-After": "1"}
    assert error_headers(
        "temporarily_unavailable", 503, realm="api", bearer=False, retry_after=7
    ) == {"Retry-After": "7"}


def test_other_errors_of_unprotected_endpoints_get_no_challenge() -> None:
    assert error_headers("invalid_grant", 400, realm="tessera", bearer=False) == {}


def test_the_body_carries_the_description_only_when_there_is_one() -> None:
    assert error_body("invalid_grant") == {"error": "invalid_grant"}
    assert error_body("invalid_grant", "expired code") == {
        "error": "invalid_grant",
        "error_description": "expired code",
    }


# --- the identity domain -----------------------------------------------------------------------


def test_the_server_answers_no_token_with_a_challenge_without_error() -> None:
    status, headers, body = answer(errors.MissingToken(), bearer=True)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="tessera"'
    assert body == {"error": "invalid_token"}
    assert headers["cache-control"] == "no-store"


def test_the_server_answers_a_bad_token_with_the_error() -> None:
    status, headers, _ = answer(errors.InvalidToken("the access token was revoked"), bearer=True)
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="tessera", error="invalid_token", '
        'error_description="the access token was revoked"'
    )
    status, headers, _ = answer(errors.InsufficientScope("lacks openid", "openid"), bearer=True)
    assert status == 403
    assert headers["www-authenticate"].endswith('error_description="lacks openid", scope="openid"')


def test_the_server_answers_invalid_client_with_basic_and_503_with_retry_after() -> None:
    status, headers, body = answer(errors.InvalidClient("unknown client or bad credentials"))
    assert (status, headers["www-authenticate"]) == (401, BASIC_CHALLENGE)
    assert body["error"] == "invalid_client"
    status, headers, body = answer(errors.TemporarilyUnavailable("later"), bearer=True)
    assert (status, headers["retry-after"]) == (503, "1")
    assert "www-authenticate" not in headers
    status, headers, _ = answer(errors.InvalidGrant("expired code"))
    assert status == 400 and "www-authenticate" not in headers


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidClient("unknown client or bad credentials", debug=SECRET_DEBUG),
        errors.InvalidGrant("the code is invalid", debug=SECRET_DEBUG),
        errors.InvalidToken("the access token is invalid or expired", debug=SECRET_DEBUG),
        errors.InsufficientScope("lacks openid", "openid", debug=SECRET_DEBUG),
        errors.TemporarilyUnavailable("later", debug=SECRET_DEBUG),
        errors.InvalidRequest(debug=SECRET_DEBUG),
    ],
)
@pytest.mark.parametrize("bearer", [False, True])
def test_debug_text_never_reaches_a_client(exc: errors.OAuthError, bearer: bool) -> None:
    response = oauth_error_response(exc, bearer=bearer)
    assert "secret mismatch" not in bytes(response.body).decode()
    assert not any("secret mismatch" in value for value in response.headers.values())
    assert "secret mismatch" not in str(exc)
    assert "secret mismatch" not in orjson.dumps(exc.body()).decode()
    assert exc.audit_reason == SECRET_DEBUG  # the audit log records the detail


def test_the_audit_reason_is_the_description_without_debug_text() -> None:
    assert errors.InvalidGrant("the code is invalid").audit_reason == "the code is invalid"


# --- the resource server: the same renderer ------------------------------------------------------


def test_the_resource_server_renders_like_the_identity_domain() -> None:
    assert InvalidTokenError("").headers() == {"WWW-Authenticate": 'Bearer realm="api"'}
    bad = InvalidTokenError("the token has expired")
    assert bad.www_authenticate("orders") == bearer_challenge(
        "orders", "invalid_token", "the token has expired"
    )
    assert bad.body() == errors.InvalidToken("the token has expired").body()
    scope = InsufficientScopeError("lacks a scope", scope="orders:write")
    assert scope.headers()["WWW-Authenticate"].endswith('scope="orders:write"')
    assert (
        InvalidRequestError("malformed")
        .headers()["WWW-Authenticate"]
        .startswith('Bearer realm="api", error="invalid_request"')
    )
    assert RevocationUnavailableError("stale", retry_after=9).headers() == {"Retry-After": "9"}


# --- RFC 9457 problems: the other shape, one document builder -------------------------------------


def test_problem_documents_of_the_admin_api_and_the_integration_service() -> None:
    assert problem_document(404, "no such app") == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such app",
    }
    assert list(problem_body(400, "bad", errors=[])) == [
        "type", "title", "status", "detail", "error", "errors"
    ]  # fmt: skip
    response = Problem(409, "conflict", "taken", extra={"code": "c"}).response()
    assert response.media_type == PROBLEM_JSON
    assert orjson.loads(bytes(response.body)) == {
        "type": "urn:tessera:integration:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "taken",
        "code": "c",
    }
