"""After a valid authorization request: sign in, ask for consent, or issue the code.

OIDC Core §3.1.2.3-§3.1.2.4: the user is authenticated first (again for `prompt=login`, or when
the sign-in is older than `max_age`), then asked to consent unless the app is first-party or a
standing consent covers the scopes (`prompt=consent` always asks). §3.1.2.6: with `prompt=none`
a request that would show a page fails instead, with `login_required` or `consent_required`.
Only administrators may be given the admin scope (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tessera.domain.model import Consent, User
from tessera.oauth import errors
from tessera.oauth.authorize import AuthorizationError, AuthorizationRequest, issue_code
from tessera.oauth.interaction.login import SignedInUser
from tessera.store.protocols import CodeStore, ConsentStore, Store

__all__ = [
    "AskConsent",
    "ConsentDenied",
    "ConsentGranted",
    "IssueCode",
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
class AskConsent:
    current: SignedInUser


@dataclass(frozen=True, slots=True)
class IssueCode:
    current: SignedInUser


Step = SignInFirst | AskConsent | IssueCode


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
    consent = store.consents.get(current.user.id, req.client.client_id)
    if consent_needed(req, consent):
        if "none" in req.prompt:
            raise _refuse(req, errors.ConsentRequired("the user has not consented"))
        return AskConsent(current)
    return IssueCode(current)


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
        ttl_seconds=ttl_seconds,
    )
