"""RP-Initiated Logout 1.0 §2-§3: which requests end the session without asking, and where the
browser may go afterwards; the confirmation's CSRF check (docs/security.md rules 4 and 9)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import BrowserSession, Client, ClientKind, User
from tessera.oauth.interaction.csrf import csrf_token
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.logout import (
    ConfirmLogout,
    InvalidLogout,
    LogoutRefused,
    SignOut,
    decide_logout,
    hint_verifier,
    validate_logout,
)
from tests.unit.oauth.conftest import Core

BYE = "https://app.example.test/bye"
APPS = {
    cid: Client(
        client_id=cid,
        name=cid,
        kind=ClientKind.CONFIDENTIAL,
        redirect_uris=(f"https://{cid}.example.test/cb",),
        grant_types=("authorization_code",),
        allowed_scopes=("openid",),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        post_logout_redirect_uris=(BYE,) if cid == "app" else (),
    )
    for cid in ("app", "other")
}


def verify(hint: str) -> Mapping[str, Any]:
    if not hint.startswith("id-token-of-"):
        raise InvalidLogout("invalid id_token_hint")
    return {"aud": hint.removeprefix("id-token-of-"), "sub": "u1"}


def validate(**params: str) -> Any:
    return validate_logout(params, verify, APPS.get)


def test_a_request_without_a_hint_is_not_taken_as_the_apps_so_the_user_is_asked() -> None:
    assert validate().hinted is False
    assert validate(client_id="app", post_logout_redirect_uri=BYE).hinted is False


def test_a_valid_hint_ends_the_session_and_names_the_client() -> None:
    req = validate(id_token_hint="id-token-of-app", post_logout_redirect_uri=BYE, state="s")
    assert req.hinted and req.client_id == "app" and req.location == BYE + "?state=s"


def test_a_client_id_other_than_the_hints_audience_is_refused() -> None:
    with pytest.raises(InvalidLogout):
        validate(id_token_hint="id-token-of-other", client_id="app", post_logout_redirect_uri=BYE)
    with pytest.raises(InvalidLogout):
        validate(id_token_hint="forged")


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": BYE},  # no client to validate it against
        {"client_id": "other", "post_logout_redirect_uri": BYE},
        {"id_token_hint": "id-token-of-other", "post_logout_redirect_uri": BYE},
        {"client_id": "app", "post_logout_redirect_uri": BYE + "/"},
    ],
)
def test_an_unregistered_post_logout_redirect_uri_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(InvalidLogout):
        validate(**params)


def test_the_confirmation_form_carries_the_validated_parameters_only() -> None:
    params = {"client_id": "app", "post_logout_redirect_uri": BYE, "state": "s", "x": "y"}
    req = validate(**params)
    assert req.carried(params) == {
        "client_id": "app",
        "post_logout_redirect_uri": BYE,
        "state": "s",
    }


# --- asking first, and the confirmation's CSRF token --------------------------------------------

CSRF_KEY = b"c" * 32
T = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = User("u1", "alice", "", "Alice", None, False, T, T)
SIGNED_IN = SignedInUser(BrowserSession("h", "u1", T, T + timedelta(hours=1), "secret"), ALICE)


def test_without_a_session_the_request_signs_out_at_once() -> None:
    req = validate(client_id="app", post_logout_redirect_uri=BYE, state="s")
    assert decide_logout(req, None, None, CSRF_KEY) == SignOut(BYE + "?state=s")
    assert decide_logout(validate(), None, "junk", CSRF_KEY) == SignOut(None)


def test_a_hinted_request_signs_out_without_asking() -> None:
    req = validate(id_token_hint="id-token-of-app")
    assert decide_logout(req, SIGNED_IN, None, CSRF_KEY) == SignOut(None)


def test_an_unhinted_request_asks_the_signed_in_user_first() -> None:
    req = validate(client_id="app", post_logout_redirect_uri=BYE)
    assert decide_logout(req, SIGNED_IN, None, CSRF_KEY) == ConfirmLogout(SIGNED_IN)


def test_the_confirmation_needs_the_sessions_csrf_token() -> None:
    req = validate()
    good = csrf_token(CSRF_KEY, "logout", "secret")
    assert decide_logout(req, SIGNED_IN, good, CSRF_KEY) == SignOut(None)
    for bad in (
        "",
        "x",
        csrf_token(CSRF_KEY, "consent", "secret"),
        csrf_token(b"k" * 32, "logout", "secret"),
    ):
        assert decide_logout(req, SIGNED_IN, bad, CSRF_KEY) == LogoutRefused(ALICE), bad


def test_the_hint_is_an_id_token_of_ours_expired_or_not(core: Core) -> None:
    issued = int(core.clock().timestamp())
    hint = core.issuer.id_token(
        subject="u1",
        client_id="app",
        now=issued,
        lifetime=60,
        auth_time=issued,
        nonce=None,
        access_token=None,
        extra={},
    )
    later = core.clock.advance(3600)
    assert hint_verifier(core.issuer, later)(hint)["aud"] == "app"
    with pytest.raises(InvalidLogout):
        hint_verifier(core.issuer, later)(hint[:-4] + "AAAA")
    with pytest.raises(InvalidLogout):
        hint_verifier(core.issuer, later)("not-a-token")
