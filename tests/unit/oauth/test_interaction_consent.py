"""After a valid authorization request: sign in, ask for consent or issue the code (OIDC Core
§3.1.2.1-§3.1.2.6: prompt, max_age, login_required, consent_required), the admin scope for
administrators only, and the user's answer on the consent page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tessera.domain.admin import ADMIN_SCOPE, admin_audience
from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import BrowserSession, Client, Consent, User
from tessera.oauth.authorize import (
    AuthorizationError,
    AuthorizationRequest,
    validate_authorization_request,
)
from tessera.oauth.interaction.consent import (
    AskConsent,
    ConsentDenied,
    ConsentGranted,
    IssueCode,
    SignInFirst,
    Step,
    answer_consent,
    issue_for,
    proceed,
    record_consent,
)
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import SignInRules
from tests.unit.oauth.conftest import ISSUER, Core

CALLBACK = "https://app.test/cb"


def authorization(core: Core, app: Client, **params: str) -> AuthorizationRequest:
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "st",
        **params,
    }
    return validate_authorization_request(
        query, set(), core.store.clients.get, core.store.resources.list()
    )


def session_of(core: Core, user: User, age: float = 0) -> SignedInUser:
    """A session of `user` signed in `age` seconds ago."""
    auth_time = core.clock() - timedelta(seconds=age)
    session = BrowserSession(
        id_hash=sha256_b64(new_token(32)),
        user_id=user.id,
        auth_time=auth_time,
        expires_at=auth_time + timedelta(hours=12),
        csrf_secret=new_token(16),
    )
    core.store.sessions.add(session)
    return SignedInUser(session, user)


def step(core: Core, req: AuthorizationRequest, current: SignedInUser | None) -> Step:
    return proceed(
        core.store,
        req,
        current,
        core.clock(),
        admin_scopes=frozenset((core.admin_scope,)),
        rules=SignInRules,
    )


def refused(core: Core, req: AuthorizationRequest, current: SignedInUser | None) -> str:
    """The error sent to the app's redirect URI, with the request's state."""
    with pytest.raises(AuthorizationError) as caught:
        step(core, req, current)
    assert caught.value.redirect_uri == CALLBACK and caught.value.state == "st"
    return caught.value.error.error


@pytest.fixture
def app(core: Core) -> Client:
    return core.add_app()[0]


@pytest.fixture
def alice(core: Core) -> User:
    return core.add_user()


# --- signing in --------------------------------------------------------------------------------


def test_without_a_session_the_user_signs_in_first_with_the_login_hint(
    core: Core, app: Client
) -> None:
    assert step(core, authorization(core, app), None) == SignInFirst("")
    hinted = authorization(core, app, login_hint="alice")
    assert step(core, hinted, None) == SignInFirst("alice")


def test_without_a_session_nothing_is_read(core: Core, app: Client) -> None:
    unreadable: Any = object()  # the authorization endpoint answers on the event loop
    req = authorization(core, app)
    assert proceed(
        unreadable, req, None, core.clock(), admin_scopes=frozenset(("x",)), rules=unreadable
    ) == SignInFirst("")


def test_prompt_none_without_a_session_is_login_required(core: Core, app: Client) -> None:
    assert refused(core, authorization(core, app, prompt="none"), None) == "login_required"


def test_prompt_login_asks_a_signed_in_user_again(core: Core, app: Client, alice: User) -> None:
    req = authorization(core, app, prompt="login")
    assert step(core, req, session_of(core, alice)) == SignInFirst("")


@pytest.mark.parametrize(("age", "again"), [(61, True), (60, False), (0, False)])
def test_max_age_asks_again_for_an_older_sign_in(
    core: Core, app: Client, alice: User, age: int, again: bool
) -> None:
    req = authorization(core, app, max_age="60")
    outcome = step(core, req, session_of(core, alice, age))
    assert isinstance(outcome, SignInFirst) is again


def test_prompt_none_with_a_too_old_sign_in_is_login_required(
    core: Core, app: Client, alice: User
) -> None:
    req = authorization(core, app, prompt="none", max_age="60")
    assert refused(core, req, session_of(core, alice, 61)) == "login_required"


# --- consent ------------------------------------------------------------------------------------


def test_a_third_party_app_without_consent_asks_for_it(
    core: Core, app: Client, alice: User
) -> None:
    current = session_of(core, alice)
    assert step(core, authorization(core, app), current) == AskConsent(current)
    req = authorization(core, app, prompt="none")
    assert refused(core, req, current) == "consent_required"


def test_a_standing_consent_to_every_scope_issues_the_code(
    core: Core, app: Client, alice: User
) -> None:
    current = session_of(core, alice)
    record_consent(core.store.consents, alice.id, app.client_id, ("openid",), core.clock())
    assert isinstance(step(core, authorization(core, app), current), AskConsent)  # not profile
    record_consent(core.store.consents, alice.id, app.client_id, ("profile",), core.clock())
    assert step(core, authorization(core, app), current) == IssueCode(current)
    assert step(core, authorization(core, app, prompt="none"), current) == IssueCode(current)
    assert isinstance(step(core, authorization(core, app, prompt="consent"), current), AskConsent)


def test_a_revoked_consent_asks_again(core: Core, app: Client, alice: User) -> None:
    current = session_of(core, alice)
    record_consent(
        core.store.consents, alice.id, app.client_id, ("openid", "profile"), core.clock()
    )
    core.store.consents.revoke(alice.id, app.client_id, core.clock())
    assert isinstance(step(core, authorization(core, app), current), AskConsent)


def test_a_first_party_app_needs_no_consent_unless_prompt_consent(core: Core, alice: User) -> None:
    console = core.add_app(first_party=True)[0]
    current = session_of(core, alice)
    assert step(core, authorization(core, console), current) == IssueCode(current)
    req = authorization(core, console, prompt="consent")
    assert step(core, req, current) == AskConsent(current)


def test_the_admin_scope_is_for_administrators_only(core: Core, alice: User) -> None:
    core.add_resource(admin_audience(ISSUER), (ADMIN_SCOPE,))
    console = core.add_app(first_party=True, allowed_scopes=("openid", core.admin_scope))[0]
    req = authorization(core, console, scope=f"openid {core.admin_scope}")
    assert refused(core, req, session_of(core, alice)) == "access_denied"
    admin = core.add_user("root", is_admin=True)
    current = session_of(core, admin)
    assert step(core, req, current) == IssueCode(current)


# --- the answer on the consent page -------------------------------------------------------------


def test_allow_records_the_consent_keeping_the_scopes_given_before(
    core: Core, app: Client, alice: User
) -> None:
    record_consent(core.store.consents, alice.id, app.client_id, ("offline_access",), core.clock())
    req = authorization(core, app)
    answer = answer_consent(core.store.consents, req, alice, "allow", core.clock())
    assert isinstance(answer, ConsentGranted)
    stored = core.store.consents.get(alice.id, app.client_id)
    assert stored == answer.consent
    assert stored.scopes == ("offline_access", "openid", "profile")


def test_a_revoked_consents_scopes_are_not_kept(core: Core, app: Client, alice: User) -> None:
    record_consent(core.store.consents, alice.id, app.client_id, ("offline_access",), core.clock())
    core.store.consents.revoke(alice.id, app.client_id, core.clock())
    consent = record_consent(
        core.store.consents, alice.id, app.client_id, ("openid",), core.clock()
    )
    assert consent == Consent(alice.id, app.client_id, ("openid",), core.clock())


def test_deny_is_access_denied_for_the_app_and_records_nothing(
    core: Core, app: Client, alice: User
) -> None:
    answer = answer_consent(
        core.store.consents, authorization(core, app), alice, "deny", core.clock()
    )
    assert isinstance(answer, ConsentDenied)
    assert answer.error.error.error == "access_denied" and answer.error.state == "st"
    assert core.store.consents.get(alice.id, app.client_id) is None


@pytest.mark.parametrize("decision", [None, "", "yes", "ALLOW"])
def test_anything_else_is_no_answer(
    core: Core, app: Client, alice: User, decision: str | None
) -> None:
    req = authorization(core, app)
    assert answer_consent(core.store.consents, req, alice, decision, core.clock()) is None
    assert core.store.consents.get(alice.id, app.client_id) is None


def test_the_code_is_bound_to_the_session(core: Core, app: Client, alice: User) -> None:
    current = session_of(core, alice, age=30)
    req = authorization(core, app, nonce="n")
    code = issue_for(core.store.codes, req, current, core.clock(), ttl_seconds=60)
    stored, _ = core.store.codes.consume(sha256_b64(code), core.clock())
    assert stored is not None
    assert stored.user_id == alice.id and stored.session_id == current.session.id_hash
    assert stored.auth_time == current.session.auth_time and stored.nonce == "n"
    assert stored.expires_at == core.clock() + timedelta(seconds=60)
