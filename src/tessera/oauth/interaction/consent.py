"""After a valid authorization request: sign in, ask for consent, or issue the code.

OIDC Core §3.1.2.3-§3.1.2.4: the user is authenticated first (again for `prompt=login`, or when
the sign-in is older than `max_age`), with a second factor when the request, the app, the
domain or the user needs one (`requirements`), then asked to consent unless the app is
first-party or a standing consent covers the scopes (`prompt=consent` always asks).
§3.1.2.6: with `prompt=none` a request that would show a page fails instead, with
`login_required`, `interaction_required` or `consent_required`.
Only administrators may be given the admin scope (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tessera.domain.model import Consent, User
from tessera.oauth import errors
from tessera.oauth.authorize import AuthorizationError, AuthorizationRequest, issue_code
from tessera.oauth.fapi2 import code_lifetime
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import (
    AskFactor,
    Enroll,
    SignInRules,
    Unmet,
    assess,
    effective_policy,
    enough_without_factors,
    requested,
    user_factors,
)
from tessera.store.protocols import CodeStore, ConsentStore, Store

__all__ = [
    "AskConsent",
    "ConsentDenied",
    "ConsentGranted",
    "EnrollFactor",
    "IssueCode",
    "SecondFactor",
    "SignInFirst",
    "Step",
    "answer_consent",
    "consent_needed",
    "issue_for",
    "login_needed",
    "proceed",
    "record_consent",
]


@dataclass(frozen=True, slots=True)
class SignInFirst:
    """Show the sign-in page (prefilled with `login_hint`)."""

    login_hint: str


@dataclass(frozen=True, slots=True)
class SecondFactor:
    """Show the second-factor page: the session has not reached the level asked for."""

    current: SignedInUser
    methods: tuple[str, ...]  # "passkey", "totp", "recovery"


@dataclass(frozen=True, slots=True)
class EnrollFactor:
    """The user must hold a factor and has none (or no passkey, for `passkey_only`)."""

    current: SignedInUser
    passkey_only: bool


@dataclass(frozen=True, slots=True)
class AskConsent:
    current: SignedInUser


@dataclass(frozen=True, slots=True)
class IssueCode:
    current: SignedInUser


Step = SignInFirst | SecondFactor | EnrollFactor | AskConsent | IssueCode


def login_needed(req: AuthorizationRequest, current: SignedInUser | None, now: datetime) -> bool:
    """No session, `prompt=login`, or a sign-in older than `max_age` (OIDC Core §3.1.2.1)."""
    if current is None or "login" in req.prompt:
        return True
    age = (now - current.session.auth_time).total_seconds()
    return req.max_age is not None and age > req.max_age


def consent_needed(req: AuthorizationRequest, consent: Consent | None) -> bool:
    """`prompt=consent`, or a third-party app without a standing consent to every scope."""
    if "consent" in req.prompt:
        return True
    if req.client.first_party:
        return False
    return (
        consent is None
        or consent.revoked_at is not None
        or not set(req.scopes) <= set(consent.scopes)
    )


def proceed(
    store: Store,
    req: AuthorizationRequest,
    current: SignedInUser | None,
    now: datetime,
    *,
    admin_scopes: frozenset[str],
    rules: Callable[[], SignInRules],
) -> Step:
    """The next step of a validated request; raises `AuthorizationError` for the errors sent
    to the app. Reads nothing when there is no session (the endpoint's fast path)."""
    if login_needed(req, current, now):
        if "none" in req.prompt:  # OIDC Core §3.1.2.6
            raise _refuse(req, errors.LoginRequired("the user is not signed in"))
        return SignInFirst(req.login_hint or "")
    assert current is not None
    if not admin_scopes.isdisjoint(req.scopes) and not current.user.is_admin:
        raise _refuse(req, errors.AccessDenied("only administrators may use the admin scope"))
    further = _further_authentication(store, req, current, rules)
    if further is not None:
        return further
    consent = store.consents.get(current.user.id, req.client.client_id)
    if consent_needed(req, consent):
        if "none" in req.prompt:
            raise _refuse(req, errors.ConsentRequired("the user has not consented"))
        return AskConsent(current)
    return IssueCode(current)


def _further_authentication(
    store: Store,
    req: AuthorizationRequest,
    current: SignedInUser,
    read_rules: Callable[[], SignInRules],
) -> SecondFactor | EnrollFactor | None:
    """The second factor or enrollment the session still needs (None: it is enough)."""
    need = requested(req.acr_values, req.acr_essential)
    rules = read_rules()
    policy = effective_policy(rules.mfa_policy, req.client.mfa_policy)
    if enough_without_factors(current.session.amr, current.user, policy, need):
        return None  # no read of the user's factors on the common path
    factors = user_factors(store.factors, current.user.id)
    outcome = assess(current.session.amr, current.user, factors, policy, rules, need)
    if isinstance(outcome, Unmet):
        raise _refuse(req, errors.UnmetAuthenticationRequirements(outcome.description))
    if isinstance(outcome, AskFactor | Enroll) and "none" in req.prompt:
        raise _refuse(req, errors.InteractionRequired("the user must use a second factor"))
    if isinstance(outcome, AskFactor):
        return SecondFactor(current, outcome.methods)
    if isinstance(outcome, Enroll):
        return EnrollFactor(current, outcome.passkey_only)
    return None


def _refuse(req: AuthorizationRequest, error: errors.OAuthError) -> AuthorizationError:
    return AuthorizationError(error, req.redirect_uri, req.state)


@dataclass(frozen=True, slots=True)
class ConsentGranted:
    consent: Consent


@dataclass(frozen=True, slots=True)
class ConsentDenied:
    """RFC 6749 §4.1.2.1 `access_denied`, for the app's redirect URI."""

    error: AuthorizationError


def answer_consent(
    consents: ConsentStore,
    req: AuthorizationRequest,
    user: User,
    decision: str | None,
    now: datetime,
) -> ConsentGranted | ConsentDenied | None:
    """The user's answer on the consent page: "allow" records the consent, "deny" is refused
    to the app; anything else is no answer (None: ask again)."""
    if decision == "deny":
        return ConsentDenied(_refuse(req, errors.AccessDenied("the user denied the request")))
    if decision != "allow":
        return None
    return ConsentGranted(record_consent(consents, user.id, req.client.client_id, req.scopes, now))


def record_consent(
    consents: ConsentStore,
    user_id: str,
    client_id: str,
    scopes: tuple[str, ...],
    now: datetime,
) -> Consent:
    """Store a consent to `scopes`, keeping the scopes of a standing consent."""
    previous = consents.get(user_id, client_id)
    kept = previous.scopes if previous and previous.revoked_at is None else ()
    consent = Consent(user_id, client_id, tuple(dict.fromkeys((*kept, *scopes))), now)
    consents.put(consent)
    return consent


def issue_for(
    codes: CodeStore,
    req: AuthorizationRequest,
    current: SignedInUser,
    now: datetime,
    ttl_seconds: int,
) -> str:
    """The code for the signed-in user, bound to the session (its sign-in time and id)."""
    return issue_code(
        codes,
        req,
        user_id=current.user.id,
        auth_time=current.session.auth_time,
        session_id=current.session.id_hash,
        now=now,
        ttl_seconds=code_lifetime(req.client, ttl_seconds),
        amr=current.session.amr,
    )
