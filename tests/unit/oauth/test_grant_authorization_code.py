"""The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §4.2.4;
docs/security.md rules 11-14, 31): the checks as a pure function, then the redemption through
the token endpoint on the memory store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import AuthorizationCode, Client, ClientKind, RevocationKind, User
from tessera.oauth import errors
from tessera.oauth.grants.authorization_code import Presented, redemption_failure
from tessera.oauth.grants.response import TokenResponse
from tessera.oauth.pkce import s256
from tessera.oauth.tokens import InvalidOwnToken
from tests.unit.oauth.conftest import T0, Core

VERIFIER = "v" * 43
CB = "https://app.test/cb"


# --- the checks, without a store ---------------------------------------------------------------


def a_code(**kw: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "code_hash": "h",
        "client_id": "app-1",
        "user_id": "u-1",
        "redirect_uri": CB,
        "scopes": ("openid",),
        "audience": None,
        "auth_time": T0,
        "expires_at": T0 + timedelta(seconds=60),
        "grant_id": "g-1",
        "issued_at": T0,
        "code_challenge": s256(VERIFIER),
    }
    values.update(kw)
    return AuthorizationCode(**values)


def an_app(client_id: str = "app-1", redirect_uris: tuple[str, ...] = (CB,)) -> Client:
    return Client(client_id, "App", ClientKind.CONFIDENTIAL, redirect_uris, (), (), T0)


def failure(code: AuthorizationCode, presented: Presented) -> str | None:
    found = redemption_failure(code, presented)
    assert found is None or isinstance(found, errors.InvalidGrant)
    return None if found is None else found.description


def test_a_code_presented_by_its_app_with_its_uri_and_verifier_passes() -> None:
    assert failure(a_code(), Presented(an_app(), CB, VERIFIER)) is None
    assert failure(a_code(code_challenge=None), Presented(an_app(), CB, None)) is None


def test_a_code_of_another_app_fails_first() -> None:
    # Checked before redirect_uri and PKCE, whatever else is wrong.
    presented = Presented(an_app("app-2"), "https://evil.test/cb", None)
    assert failure(a_code(), presented) == "the code was issued to another app"


def test_redirect_uri_may_be_left_out_only_with_one_registered_uri() -> None:
    assert failure(a_code(), Presented(an_app(), None, VERIFIER)) is None
    two = an_app(redirect_uris=(CB, "https://app.test/other"))
    assert failure(a_code(), Presented(two, None, VERIFIER)) == "redirect_uri is required"


def test_a_redirect_uri_other_than_the_authorization_requests_fails() -> None:
    two = an_app(redirect_uris=(CB, "https://app.test/other"))
    presented = Presented(two, "https://app.test/other", VERIFIER)
    assert failure(a_code(), presented) == "redirect_uri differs from the authorization request"


@pytest.mark.parametrize(
    ("challenge", "verifier", "reason"),
    [
        (s256(VERIFIER), None, "code_verifier is required"),
        (s256(VERIFIER), "w" * 43, "code_verifier does not match the code_challenge"),
        (s256(VERIFIER), "short", "code_verifier is malformed"),
        (None, VERIFIER, "code_verifier given for a code issued without code_challenge"),
    ],
)
def test_pkce_failures(challenge: str | None, verifier: str | None, reason: str) -> None:
    presented = Presented(an_app(), CB, verifier)
    assert failure(a_code(code_challenge=challenge), presented) == reason


def test_pkce_is_checked_after_the_redirect_uri() -> None:
    two = an_app(redirect_uris=(CB, "https://app.test/other"))
    presented = Presented(two, None, "wrong")
    assert failure(a_code(), presented) == "redirect_uri is required"


# --- through the token endpoint ----------------------------------------------------------------


def redeem(core: Core, app: Client, secret: str | None, code: str, **form: str) -> TokenResponse:
    values = {"grant_type": "authorization_code", "code": code, "client_id": app.client_id}
    if secret is not None:
        values["client_secret"] = secret
    values.update(form)
    return core.token_endpoint().handle(None, values, set())


def refused(core: Core, app: Client, secret: str | None, code: str, **form: str) -> str:
    with pytest.raises(errors.InvalidGrant) as caught:
        redeem(core, app, secret, code, **form)
    return caught.value.description


def test_a_code_is_redeemed_for_tokens_of_the_user(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user, challenge=s256(VERIFIER), nonce="n-1")

    issued = redeem(core, app, secret, code, redirect_uri=CB, code_verifier=VERIFIER)

    body = issued.body
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    claims = core.issuer.verify_own(body["access_token"], int(core.clock().timestamp()))
    assert (claims["sub"], claims["sub_type"], claims["client_id"]) == (
        user.id,
        "user",
        app.client_id,
    )
    assert (issued.claims.sub, issued.claims.sub_type, issued.claims.jti) == (
        user.id,
        "user",
        claims["jti"],
    )
    assert issued.claims.grant_type == "authorization_code"
    id_token = core.issuer.verify_own(body["id_token"], int(core.clock().timestamp()), typ="jwt")
    assert (id_token["nonce"], id_token["aud"]) == ("n-1", app.client_id)
    [grant] = core.store.grants.list_active(core.clock(), user_id=user.id)
    assert grant.grant_id == claims["sid"]
    assert grant.absolute_expiry == core.clock() + timedelta(
        seconds=core.policy.refresh_absolute_ttl
    )
    token = core.store.refresh_tokens.get(sha256_b64(body["refresh_token"]))
    assert token is not None and token.grant_id == grant.grant_id


def test_an_app_without_the_refresh_grant_gets_no_refresh_token(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app(grant_types=("authorization_code",))
    issued = redeem(core, app, secret, core.issue_code(app, user, scopes=("profile",)))
    assert "refresh_token" not in issued.body and "id_token" not in issued.body


def test_a_missing_code_is_invalid_request_and_an_oversized_one_invalid_grant(core: Core) -> None:
    app, secret = core.add_app()
    with pytest.raises(errors.InvalidRequest):
        core.token_endpoint().handle(
            None,
            {"grant_type": "authorization_code", "client_id": app.client_id,
             "client_secret": secret or ""},
            set(),
        )  # fmt: skip
    assert refused(core, app, secret, "x" * 257) == "unknown, used or expired code"
    assert refused(core, app, secret, "never-issued") == "unknown, used or expired code"


def test_a_replayed_code_revokes_the_grant_it_started(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user)
    first = redeem(core, app, secret, code)

    with pytest.raises(errors.InvalidGrant) as caught:
        redeem(core, app, secret, code)
    assert caught.value.description == "unknown, used or expired code"
    assert caught.value.audit_reason == "a replayed code: its grant is revoked"

    claims = core.issuer.verify_own(first.body["access_token"], int(core.clock().timestamp()))
    [event] = core.store.revocations.since(0)
    assert (event.kind, event.key) == (RevocationKind.GRANT, claims["sid"])
    grant = core.store.grants.get(claims["sid"])
    assert grant is not None and grant.revoked_at == core.clock()
    state = core.revocations()
    state.sync()
    assert state.revoked(claims)
    with pytest.raises(errors.InvalidGrant):
        core.token_endpoint().handle(
            None,
            {"grant_type": "refresh_token", "refresh_token": first.body["refresh_token"],
             "client_id": app.client_id, "client_secret": secret or ""},
            set(),
        )  # fmt: skip


def test_a_failed_check_still_burns_the_code(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user, challenge=s256(VERIFIER))

    reason = refused(core, app, secret, code, code_verifier="w" * 43)
    assert reason == "code_verifier does not match the code_challenge"

    # The right verifier comes too late: the code was used by the failed request.
    assert refused(core, app, secret, code, code_verifier=VERIFIER) == (
        "unknown, used or expired code"
    )
    assert core.store.grants.list_active(core.clock(), user_id=user.id) == []


def test_a_code_of_another_app_is_refused_and_burned(core: Core) -> None:
    user = core.add_user()
    app, _ = core.add_app()
    thief, thief_secret = core.add_app(name="Thief")
    code = core.issue_code(app, user)
    assert refused(core, thief, thief_secret, code) == "the code was issued to another app"
    assert core.store.codes.consume(sha256_b64(code), core.clock())[1] is False


def test_a_code_expires_after_sixty_seconds_without_revoking_anything(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user)
    core.clock.advance(60)
    assert refused(core, app, secret, code) == "unknown, used or expired code"
    assert core.store.revocations.last_seq() == 0


def test_a_code_issued_before_its_users_cut_off_is_never_redeemed(core: Core) -> None:
    # docs/security.md rule 31: a password change or revocation after the code was issued.
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user)
    core.clock.advance(1)
    core.store.revocations.append(
        RevocationKind.SUBJECT, user.id, core.clock(), core.clock() + timedelta(days=1),
        core.clock(),
    )  # fmt: skip
    core.clock.advance(1)
    assert refused(core, app, secret, code) == "unknown, used or expired code"
    assert core.store.grants.list_active(core.clock(), user_id=user.id) == []
    # A code issued after the cut-off works.
    assert "access_token" in redeem(core, app, secret, core.issue_code(app, user)).body


def test_a_disabled_user_gets_no_grant(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    code = core.issue_code(app, user)
    core.store.users.update(replace(user, disabled_at=core.clock()))
    assert refused(core, app, secret, code) == "the user is no longer active"
    assert core.store.grants.list_active(core.clock(), user_id=user.id) == []


def test_the_admin_scope_is_for_administrators_only(core: Core) -> None:
    user: User = core.add_user()
    app, secret = core.add_app(allowed_scopes=("openid", core.admin_scope))
    code = core.issue_code(app, user, scopes=(core.admin_scope,))
    assert refused(core, app, secret, code) == "the admin scope is for administrators only"
    admin = core.add_user("root", is_admin=True)
    issued = redeem(core, app, secret, core.issue_code(app, admin, scopes=(core.admin_scope,)))
    assert issued.claims.sub == admin.id


def test_the_access_token_is_signed_and_never_the_id_token(core: Core) -> None:
    user = core.add_user()
    app, secret = core.add_app()
    issued = redeem(core, app, secret, core.issue_code(app, user))
    with pytest.raises(InvalidOwnToken):  # an ID token is no access token (RFC 9068 typ)
        core.issuer.verify_own(issued.body["id_token"], int(core.clock().timestamp()))
