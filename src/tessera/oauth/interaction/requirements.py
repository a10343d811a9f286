"""How strong a sign-in a request needs, and what the user must do to reach it (docs/mfa.md).

The need comes from the stricter of the domain's and the app's second-factor policy (`off`,
`optional`, `required`), from the user (an administrator with a factor always uses it; the
domain may require one of every administrator), and from the request (OIDC Core §3.1.2.1
`acr_values`, §5.5.1.1 an essential `acr` claim). A session that has not reached it is asked
for a second factor; a user without a factor that could reach it enrolls one when the policy
lets users hold factors, else the request fails with `unmet_authentication_requirements`
(OpenID Connect Core Errata / OIDC EAP §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tessera.domain.identity_domains import MFA_POLICIES
from tessera.domain.model import Passkey, RecoveryCode, TotpFactor, User
from tessera.shared.acr import ACR_LEVELS, ACR_MFA, ACR_PHISHING_RESISTANT, acr_for, level_of
from tessera.store.protocols import FactorStore

__all__ = [
    "AskFactor",
    "Enough",
    "Enroll",
    "Need",
    "Outcome",
    "SignInRules",
    "Unmet",
    "UserFactors",
    "assess",
    "effective_policy",
    "enough_without_factors",
    "may_enroll_now",
    "requested",
    "user_factors",
]

Policy = Literal["off", "optional", "required"]
_MFA, _PHISHING_RESISTANT = ACR_LEVELS[ACR_MFA], ACR_LEVELS[ACR_PHISHING_RESISTANT]


@dataclass(frozen=True, slots=True)
class SignInRules:
    """The domain's rules: its policy, whether every administrator needs a factor and
    whether every app must push its authorization requests (RFC 9126 §6)."""

    mfa_policy: str = "optional"
    admin_mfa_required: bool = False
    require_pushed_authorization_requests: bool = False


@dataclass(frozen=True, slots=True)
class UserFactors:
    passkeys: Sequence[Passkey] = ()
    totp: TotpFactor | None = None  # confirmed only
    recovery_codes: Sequence[RecoveryCode] = ()  # unused only

    @property
    def any(self) -> bool:
        """A factor of its own (recovery codes back the others up)."""
        return bool(self.passkeys) or self.totp is not None

    @property
    def methods(self) -> tuple[str, ...]:
        """What the second-factor page may offer: "passkey", "totp", "recovery"."""
        out = ["passkey"] if self.passkeys else []
        if self.totp is not None:
            out.append("totp")
        if self.recovery_codes and self.any:
            out.append("recovery")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Need:
    """What the request asks of the sign-in: a level (0: none) and whether it is essential."""

    level: int = 0
    essential: bool = False
    unknown_essential: bool = False  # an essential acr we do not know: never met


def user_factors(factors: FactorStore, user_id: str) -> UserFactors:
    """The user's usable factors: passkeys, a confirmed authenticator app, unused codes."""
    totp = factors.totp(user_id)
    return UserFactors(
        passkeys=factors.passkeys_for(user_id),
        totp=totp if totp is not None and totp.confirmed_at is not None else None,
        recovery_codes=[c for c in factors.recovery_codes(user_id) if c.used_at is None],
    )


def effective_policy(domain_policy: str | None, client_policy: str | None) -> str:
    """The stricter of the domain's and the app's (an app cannot loosen its domain's)."""
    domain = domain_policy or "optional"
    if client_policy and MFA_POLICIES.index(client_policy) > MFA_POLICIES.index(domain):
        return client_policy
    return domain


def requested(acr_values: Sequence[str], essential: bool) -> Need:
    """The lowest known level among the values (any one of them satisfies the request)."""
    known = [level_of(v) for v in acr_values if v in ACR_LEVELS]
    if not known:
        return Need(0, essential, unknown_essential=essential and bool(acr_values))
    return Need(min(known), essential)


@dataclass(frozen=True, slots=True)
class Enough:
    acr: str


@dataclass(frozen=True, slots=True)
class AskFactor:
    """Show the second-factor page with these methods."""

    methods: tuple[str, ...]
    level: int


@dataclass(frozen=True, slots=True)
class Enroll:
    """Lead the user to enroll a factor now (only a passkey reaches `passkey_only`'s level)."""

    passkey_only: bool


@dataclass(frozen=True, slots=True)
class Unmet:
    description: str


Outcome = Enough | AskFactor | Enroll | Unmet


def _policy_level(policy: str, rules: SignInRules, user: User, factors: UserFactors) -> int:
    if policy == "required" or (policy == "optional" and factors.any):
        return _MFA
    if user.is_admin and (factors.any or rules.admin_mfa_required):
        return _MFA
    return 0


def enough_without_factors(amr: Sequence[str], user: User, policy: str, need: Need) -> bool:
    """Whether `assess` answers `Enough` whatever the user's factors are, so the authorization
    endpoint need not read them: the session meets the request, and either already used two
    factors (no policy asks more) or nothing but the request could ask more (policy `off`, not
    an administrator)."""
    have = level_of(acr_for(amr))
    if need.unknown_essential or have < need.level:
        return False
    return have >= _MFA or (policy == "off" and not user.is_admin)


def may_enroll_now(amr: Sequence[str], factors: UserFactors) -> bool:
    """Whether this sign-in may add a factor: a user with a factor must have used one (a
    stolen password must not be enough to add the thief's authenticator)."""
    return not factors.any or level_of(acr_for(amr)) >= _MFA


def assess(
    amr: Sequence[str],
    user: User,
    factors: UserFactors,
    policy: str,
    rules: SignInRules,
    need: Need,
) -> Outcome:
    """Whether a sign-in with methods `amr` is enough, and if not, the next step."""
    if need.unknown_essential:
        return Unmet("the requested authentication context is not supported")
    level = max(need.level, _policy_level(policy, rules, user, factors))
    acr = acr_for(amr)
    if level_of(acr) >= level:
        return Enough(acr)
    may_enroll = policy != "off" or (user.is_admin and rules.admin_mfa_required)
    if level >= _PHISHING_RESISTANT:
        if factors.passkeys:
            return AskFactor(("passkey",), level)
        if not may_enroll:
            return Unmet("a passkey is required and the user has none")
        if factors.any and level_of(acr) < _MFA:
            # The factor the user has comes first: a password alone never adds a factor.
            return AskFactor(factors.methods, _MFA)
        return Enroll(passkey_only=True)
    if factors.any:
        return AskFactor(factors.methods, level)
    if may_enroll:
        return Enroll(passkey_only=False)
    return Unmet("a second factor is required and the user has none")
