"""The account pages' sign-in (`tessera.oauth.interaction.account`): the signed state and its
verifier cookie, the code consumed once without minting tokens, and when a sensitive action
needs a fresh sign-in or a second factor."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tessera.domain.model import BrowserSession, Passkey
from tessera.oauth.interaction.account import (
    FLOW_TTL,
    FlowInvalid,
    account_client_id,
    account_redirect,
    finish_flow,
    is_account_app,
    redeem_account_code,
    start_flow,
    step_up_needed,
)
from tessera.oauth.interaction.requirements import UserFactors
from tests.unit.oauth.conftest import ISSUER, T0, Core

KEY = b"a" * 32


def test_the_app_is_named_per_domain() -> None:
    assert account_client_id("default") == "tessera-account"
    assert account_client_id("d123") == "tessera-account-d123"
    assert is_account_app("tessera-account-d123") and not is_account_app("tessera-accounts")
    assert account_redirect(ISSUER) == f"{ISSUER}/account/callback"


def test_a_state_returns_its_page_only_with_its_verifier_before_it_expires() -> None:
    flow = start_flow(KEY, "/account/password", T0)
    assert len(flow.cookie) >= 43 and len(flow.code_challenge) == 43
    assert finish_flow(KEY, flow.state, flow.cookie, T0) == "/account/password"
    other = start_flow(KEY, "/account/password", T0)
    with pytest.raises(FlowInvalid, match="another browser"):
        finish_flow(KEY, flow.state, other.cookie, T0)
    with pytest.raises(FlowInvalid, match="another browser"):
        finish_flow(KEY, flow.state, None, T0)
    with pytest.raises(FlowInvalid, match="too long"):
        finish_flow(KEY, flow.state, flow.cookie, T0 + timedelta(seconds=FLOW_TTL))
    with pytest.raises(FlowInvalid, match="not ours"):
        finish_flow(b"b" * 32, flow.state, flow.cookie, T0)


@pytest.mark.parametrize("state", ["", "x", "a.b.c", "é.é", "AAAA.AAAA", "e30." + "A" * 2000])
def test_a_malformed_state_is_refused(state: str) -> None:
    with pytest.raises(FlowInvalid):
        finish_flow(KEY, state, "v" * 64, T0)


def test_a_tampered_state_is_refused() -> None:
    flow = start_flow(KEY, "/account/", T0)
    payload, mac = flow.state.split(".")
    with pytest.raises(FlowInvalid):
        finish_flow(KEY, payload[:-2] + "AA." + mac, flow.cookie, T0)


def test_the_code_is_consumed_once_and_must_match_everything(core: Core) -> None:
    user = core.add_user()
    other = core.add_user("bob")
    app, _ = core.add_app(
        public=True, client_id="tessera-account", redirect_uris=(account_redirect(ISSUER),),
        grant_types=("authorization_code",), allowed_scopes=("openid", "profile"),
    )  # fmt: skip
    flow = start_flow(KEY, "/account/", T0)
    checks = {
        "client_id": "tessera-account",
        "redirect_uri": account_redirect(ISSUER),
        "verifier": flow.cookie,
        "now": core.clock(),
    }
    code = core.issue_code(app, user, challenge=flow.code_challenge)
    assert redeem_account_code(core.store.codes, code, user_id=user.id, **checks)  # type: ignore[arg-type]
    assert not redeem_account_code(core.store.codes, code, user_id=user.id, **checks)  # type: ignore[arg-type]

    for change in (
        {"user_id": other.id},
        {"user_id": user.id, "verifier": "w" * 64},
        {"user_id": user.id, "client_id": "someone-else"},
        {"user_id": user.id, "redirect_uri": "https://evil.example/cb"},
    ):
        fresh = core.issue_code(app, user, challenge=flow.code_challenge)
        assert not redeem_account_code(core.store.codes, fresh, **{**checks, **change})  # type: ignore[arg-type]
    no_pkce = core.issue_code(app, user)
    assert not redeem_account_code(core.store.codes, no_pkce, user_id=user.id, **checks)  # type: ignore[arg-type]
    assert not redeem_account_code(core.store.codes, "", user_id=user.id, **checks)  # type: ignore[arg-type]
    assert not redeem_account_code(core.store.codes, "x" * 500, user_id=user.id, **checks)  # type: ignore[arg-type]


def _session(amr: tuple[str, ...], age: float) -> BrowserSession:
    return BrowserSession(
        id_hash="h", user_id="u", auth_time=T0 - timedelta(seconds=age),
        expires_at=T0 + timedelta(hours=8), csrf_secret="c", amr=amr,
    )  # fmt: skip


def test_a_sensitive_action_needs_a_recent_sign_in_and_the_users_factor() -> None:
    none = UserFactors()
    passkey = Passkey("c", "u", "Laptop", b"k", 0, T0)
    with_factor = UserFactors(passkeys=[passkey])
    assert step_up_needed(_session(("pwd",), 60), none, T0) is None
    old = step_up_needed(_session(("pwd",), 301), none, T0)
    assert old is not None and old.params() == {"prompt": "login"}
    second = step_up_needed(_session(("pwd",), 60), with_factor, T0)
    assert second is not None and second.params() == {"acr_values": "urn:tessera:acr:mfa"}
    assert step_up_needed(_session(("pwd", "otp", "mfa"), 60), with_factor, T0) is None
    both = step_up_needed(_session(("pwd", "otp", "mfa"), 301), with_factor, T0)
    assert both is not None and both.params() == {
        "prompt": "login",
        "acr_values": "urn:tessera:acr:mfa",
    }
    assert replace(both, fresh=False).params() == {"acr_values": "urn:tessera:acr:mfa"}
