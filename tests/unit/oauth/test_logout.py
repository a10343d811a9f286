"""RP-Initiated Logout 1.0 §2-§3: which requests end the session without asking, and where the
browser may go afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.domain.model import Client, ClientKind
from tessera.oauth.logout import InvalidLogout, validate_logout

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
