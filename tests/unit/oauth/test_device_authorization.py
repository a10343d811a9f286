"""The device authorization grant (RFC 8628) on the memory store with the injected clock: the
endpoint (§3.1-§3.2), user codes (§6.1), the verification page's rules (§3.3, §5.1) and the
token endpoint's answers while polling (§3.4-§3.5): pending, slow_down raising the interval,
denied, expired, and tokens once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.model import BrowserSession, Client, RevocationKind, User
from tessera.oauth import errors
from tessera.oauth.device import (
    DEVICE_CODE_GRANT,
    USER_CODE_ALPHABET,
    DevicePolicy,
    authorize_device,
    code_hash,
    count_device_request,
    decide,
    enter_user_code,
    find_for_entry,
    format_user_code,
    new_user_code,
    normalize_user_code,
    sign_in_outcome,
    user_code_keys,
)
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import Enough, SignInRules
from tests.unit.oauth.conftest import DEVICE_KEY, ISSUER, Core

READ = "https://orders.test/read"
DEVICE_GRANTS = (DEVICE_CODE_GRANT, "refresh_token")


@pytest.fixture
def app(core: Core) -> Client:
    core.add_resource()
    client, _ = core.add_app(public=True, grant_types=DEVICE_GRANTS, redirect_uris=())
    return client


def start(core: Core, app: Client, scope: str = f"openid {READ}", **params: str) -> dict[str, Any]:
    return authorize_device(
        core.store.device_authorizations,
        app,
        {"client_id": app.client_id, "scope": scope, **params},
        core.store.resources.list(),
        core.clock(),
        key=DEVICE_KEY,
        policy=DevicePolicy(),
        issuer=ISSUER,
    )


def signed_in(core: Core, user: User, amr: tuple[str, ...] = ("pwd",)) -> SignedInUser:
    now = core.clock()
    session = BrowserSession("s-hash", user.id, now, now + timedelta(hours=1), "csrf", amr=amr)
    return SignedInUser(session, user)


def user_decides(core: Core, started: dict[str, Any], user: User, approve: bool = True) -> None:
    code = normalize_user_code(started["user_code"])
    assert code is not None
    devices = core.store.device_authorizations
    assert decide(devices, DEVICE_KEY, code, signed_in(core, user), approve, core.clock())


def poll(core: Core, app: Client, started: dict[str, Any]) -> dict[str, Any]:
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": started["device_code"]}
    return core.token({**core.credentials(app), **form})


def poll_error(core: Core, app: Client, started: dict[str, Any]) -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as refused:
        poll(core, app, started)
    return refused.value


# --- user codes (§6.1) -------------------------------------------------------------------------


def test_user_codes_are_eight_unambiguous_characters_shown_in_two_groups() -> None:
    code = new_user_code()
    assert len(code) == 8 and set(code) <= set(USER_CODE_ALPHABET)
    assert not set("AEIOU0123456789") & set(USER_CODE_ALPHABET)
    assert format_user_code("BCDFGHJK") == "BCDF-GHJK"


@pytest.mark.parametrize("entered", ["BCDF-GHJK", "bcdfghjk", " bcdf ghjk ", "Bcd-fGh-jK"])
def test_entries_ignore_case_dashes_and_spaces(entered: str) -> None:
    assert normalize_user_code(entered) == "BCDFGHJK"


@pytest.mark.parametrize("entered", ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "x" * 99])
def test_anything_else_is_no_user_code(entered: str) -> None:
    assert normalize_user_code(entered) is None


# --- the device authorization endpoint (§3.1, §3.2) --------------------------------------------


def test_the_answer_names_both_codes_the_pages_the_lifetime_and_the_interval(
    core: Core, app: Client
) -> None:
    started = start(core, app)
    shown = started["user_code"]
    assert normalize_user_code(shown) is not None and shown[4] == "-"
    assert started["verification_uri"] == f"{ISSUER}/device"
    assert started["verification_uri_complete"] == f"{ISSUER}/device?user_code={shown}"
    assert started["expires_in"] == 600 and started["interval"] == 5
    assert len(started["device_code"]) >= 43
    # Only keyed hashes are stored.
    stored = core.store.device_authorizations.get(code_hash(DEVICE_KEY, started["device_code"]))
    assert stored is not None and stored.scopes == ("openid", READ)
    assert stored.audience == "https://orders.test/"
    assert stored.user_code_hash == code_hash(DEVICE_KEY, normalize_user_code(shown) or "")


def test_an_app_not_allowed_the_grant_is_unauthorized(core: Core) -> None:
    other, _ = core.add_app(public=True, grant_types=("authorization_code",))
    with pytest.raises(errors.UnauthorizedClient):
        start(core, other, "openid")


@pytest.mark.parametrize("scope", ["", "openid https://orders.test/write", "nonsense"])
def test_scopes_are_checked_as_at_the_authorization_endpoint(
    core: Core, app: Client, scope: str
) -> None:
    with pytest.raises(errors.InvalidScope):
        start(core, app, scope)


def test_a_client_id_other_than_the_authenticated_app_is_refused(core: Core, app: Client) -> None:
    with pytest.raises(errors.InvalidRequest):
        start(core, app, client_id="someone-else")


def test_device_requests_are_limited_per_address_then_the_wait_ends(core: Core) -> None:
    """30 a minute per address group (IPv6 by /64): the 31st waits a minute from the last."""
    throttle, now = core.store.login_throttle, core.clock
    for i in range(30):
        count_device_request(throttle, f"2001:db8::{i}", now())
    with pytest.raises(errors.TooManyRequests) as caught:
        count_device_request(throttle, "2001:db8::ff", now())
    assert (caught.value.status, caught.value.error) == (429, "temporarily_unavailable")
    assert caught.value.retry_after == 60
    count_device_request(throttle, "192.0.2.1", now())  # another address
    core.clock.advance(59)
    with pytest.raises(errors.TooManyRequests):
        count_device_request(throttle, "2001:db8::1", now())
    core.clock.advance(1)
    count_device_request(throttle, "2001:db8::1", now())


# --- the verification page (§3.3, §5.1) --------------------------------------------------------


def test_an_entry_finds_the_pending_request_then_says_it_was_decided(
    core: Core, app: Client
) -> None:
    user = core.add_user()
    started = start(core, app)
    devices = core.store.device_authorizations
    entry = find_for_entry(devices, DEVICE_KEY, started["user_code"].lower(), core.clock())
    assert entry.problem is None and entry.authorization is not None
    user_decides(core, started, user)
    again = find_for_entry(devices, DEVICE_KEY, started["user_code"], core.clock())
    assert again.problem == "decided"
    assert find_for_entry(devices, DEVICE_KEY, "BCDF-BCDF", core.clock()).problem == "unknown"
    started = start(core, app)
    core.clock.advance(600)
    assert find_for_entry(devices, DEVICE_KEY, started["user_code"], core.clock()).problem == (
        "expired"
    )


def test_wrong_codes_slow_down_the_session_then_the_wait_ends(core: Core, app: Client) -> None:
    started = start(core, app)
    devices, throttle = core.store.device_authorizations, core.store.login_throttle
    keys = user_code_keys("s-hash", "192.0.2.1")

    def enter(code: str) -> str | None:
        return enter_user_code(devices, throttle, DEVICE_KEY, code, keys, core.clock()).problem

    for _ in range(5):
        assert enter("BCDF-BCDF") == "unknown"
    # Past the free attempts, even the right code waits (nothing is looked up).
    blocked = enter_user_code(devices, throttle, DEVICE_KEY, started["user_code"], keys, core.clock())
    assert blocked.problem == "throttled" and blocked.retry_after == 60
    other_session = user_code_keys("other", "192.0.2.1")
    assert (
        enter_user_code(
            devices, throttle, DEVICE_KEY, started["user_code"], other_session, core.clock()
        ).problem
        is None
    )
    core.clock.advance(60)
    assert enter(started["user_code"]) is None


def test_the_apps_second_factor_policy_applies_to_the_approving_session(core: Core) -> None:
    strict, _ = core.add_app(public=True, grant_types=DEVICE_GRANTS, mfa_policy="required")
    user = core.add_user()
    factors = core.store.factors
    outcome = sign_in_outcome(factors, signed_in(core, user), strict, SignInRules())
    assert not isinstance(outcome, Enough)
    with_otp = signed_in(core, user, ("pwd", "otp", "mfa"))
    assert isinstance(sign_in_outcome(factors, with_otp, strict, SignInRules()), Enough)
    relaxed, _ = core.add_app(public=True, grant_types=DEVICE_GRANTS)
    assert isinstance(sign_in_outcome(factors, signed_in(core, user), relaxed, SignInRules()), Enough)


# --- polling and tokens (§3.4, §3.5) -----------------------------------------------------------


def test_polling_is_pending_until_the_user_approves_then_tokens_come_once(
    core: Core, app: Client
) -> None:
    user = core.add_user()
    started = start(core, app)
    core.clock.advance(5)  # the interval, before the first poll too
    assert poll_error(core, app, started).error == "authorization_pending"
    core.clock.advance(5)
    assert poll_error(core, app, started).error == "authorization_pending"
    user_decides(core, started, user)
    core.clock.advance(5)
    body = poll(core, app, started)
    claims = core.issuer.verify_own(body["access_token"], int(core.clock().timestamp()))
    assert claims["sub"] == user.id and claims["sub_type"] == "user"
    assert claims["client_id"] == app.client_id and claims["aud"] == "https://orders.test/"
    assert body["scope"] == "openid read" and body["token_type"] == "Bearer"
    assert body["refresh_token"] and body["id_token"]
    core.clock.advance(5)
    assert poll_error(core, app, started).error == "invalid_grant"  # once
    # The refresh token is an ordinary one.
    assert core.refresh(app, body["refresh_token"])["access_token"]


def test_polling_faster_than_the_interval_raises_it_by_five_seconds_each_time(
    core: Core, app: Client
) -> None:
    started = start(core, app)
    stored = code_hash(DEVICE_KEY, started["device_code"])
    core.clock.advance(4)  # the first poll too is timed, from the request's creation
    assert poll_error(core, app, started).error == "slow_down"
    assert core.store.device_authorizations.get(stored).interval == 10  # type: ignore[union-attr]
    core.clock.advance(9)  # under the new interval
    assert poll_error(core, app, started).error == "slow_down"
    assert core.store.device_authorizations.get(stored).interval == 15  # type: ignore[union-attr]
    core.clock.advance(15)
    assert poll_error(core, app, started).error == "authorization_pending"


def test_a_denied_request_answers_access_denied(core: Core, app: Client) -> None:
    started = start(core, app)
    user_decides(core, started, core.add_user(), approve=False)
    refused = poll_error(core, app, started)
    assert refused.error == "access_denied" and refused.status == 400


def test_an_expired_request_answers_expired_token_even_once_approved(
    core: Core, app: Client
) -> None:
    started = start(core, app)
    user_decides(core, started, core.add_user())
    core.clock.advance(600)
    assert poll_error(core, app, started).error == "expired_token"


def test_a_decision_after_expiry_is_refused(core: Core, app: Client) -> None:
    started = start(core, app)
    core.clock.advance(600)
    code = normalize_user_code(started["user_code"]) or ""
    user = signed_in(core, core.add_user())
    assert not decide(core.store.device_authorizations, DEVICE_KEY, code, user, True, core.clock())


def test_another_apps_or_an_unknown_device_code_is_invalid_grant(core: Core, app: Client) -> None:
    started = start(core, app)
    other, _ = core.add_app(public=True, grant_types=DEVICE_GRANTS)
    assert poll_error(core, other, started).error == "invalid_grant"
    assert poll_error(core, app, {"device_code": "nope"}).error == "invalid_grant"
    with pytest.raises(errors.InvalidRequest):
        core.token({**core.credentials(app), "grant_type": DEVICE_CODE_GRANT})


def test_an_app_without_the_grant_type_cannot_poll(core: Core, app: Client) -> None:
    started = start(core, app)
    other, _ = core.add_app(public=True)
    assert poll_error(core, other, started).error == "unauthorized_client"


def test_a_user_revoked_after_approving_gets_no_tokens(core: Core, app: Client) -> None:
    user = core.add_user()
    started = start(core, app)
    user_decides(core, started, user)
    core.clock.advance(1)
    now = core.clock()
    core.store.revocations.append(
        RevocationKind.SUBJECT,
        user.id,
        now,
        now + timedelta(days=1),
        now,
    )
    core.clock.advance(5)
    assert poll_error(core, app, started).error == "invalid_grant"


def test_registration_accepts_the_grant_like_any_other_without_redirect_uris() -> None:
    """RFC 7591 §2: `grant_types` may name the device grant (`tessera admin apps` takes the
    same list, `tessera.manage.apps.GRANT_TYPES`)."""
    import json

    from tessera.domain.model import DEFAULT_DOMAIN
    from tessera.manage.apps import GRANT_TYPES
    from tessera.oauth.registration import parse_metadata

    body = {"grant_types": [DEVICE_CODE_GRANT, "refresh_token"], "token_endpoint_auth_method": "none"}
    meta = parse_metadata(
        json.dumps(body).encode(),
        resources=[],
        issuer=ISSUER,
        domain_id=DEFAULT_DOMAIN,
        grant_types=GRANT_TYPES,
        scope_ceiling=None,
    )
    assert meta.fields["grant_types"] == [DEVICE_CODE_GRANT, "refresh_token"]
    assert meta.fields["redirect_uris"] == []


def test_a_dpop_proof_binds_the_tokens_and_a_public_apps_refresh_family_to_its_key(
    core: Core, app: Client
) -> None:
    """RFC 9449 §5 as at the code grant: `cnf.jkt`, `token_type: DPoP`, and the refresh
    family of a public app usable only with the same key."""
    from tests.support.dpop import make_proof, new_key, thumbprint

    key = new_key()
    started = start(core, app)
    user_decides(core, started, core.add_user())
    url = ISSUER + "/oauth2/v1/token"
    form = {
        **core.credentials(app),
        "grant_type": DEVICE_CODE_GRANT,
        "device_code": started["device_code"],
    }
    proof = make_proof(key, "POST", url, iat=core.clock().timestamp())
    body = core.token_endpoint().handle(None, form, set(), proof).body
    assert body["token_type"] == "DPoP"
    claims = core.issuer.verify_own(body["access_token"], int(core.clock().timestamp()))
    assert claims["cnf"] == {"jkt": thumbprint(key)}
    with pytest.raises(errors.InvalidGrant):
        core.refresh(app, body["refresh_token"])  # without the key


def test_only_administrators_may_approve_the_admin_scopes(core: Core) -> None:
    from tessera.domain.admin import ADMIN_SCOPE, admin_audience
    from tessera.oauth.device import may_approve

    core.add_resource(admin_audience(ISSUER), (ADMIN_SCOPE,))
    admin_only = frozenset((core.admin_scope,))
    admin_app, _ = core.add_app(
        public=True, grant_types=DEVICE_GRANTS, allowed_scopes=("openid", core.admin_scope)
    )
    started = start(core, admin_app, f"openid {core.admin_scope}")
    found = core.store.device_authorizations.get(code_hash(DEVICE_KEY, started["device_code"]))
    assert found is not None
    alice, root = core.add_user(), core.add_user("root", is_admin=True)
    assert not may_approve(signed_in(core, alice), found, admin_only)
    assert may_approve(signed_in(core, root), found, admin_only)
    assert may_approve(signed_in(core, alice), replace(found, scopes=("openid",)), admin_only)
