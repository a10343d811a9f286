"""How strong a sign-in a request needs (docs/mfa.md): the policies of the domain and the app,
the administrators' rule, `acr_values` and the essential `acr` claim, and what the user is led
to do: a second factor, an enrollment, or the `unmet_authentication_requirements` error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.model import Passkey, RecoveryCode, TotpFactor, User
from tessera.oauth.interaction.requirements import (
    AskFactor,
    Enough,
    Enroll,
    Need,
    SignInRules,
    Unmet,
    UserFactors,
    assess,
    effective_policy,
    enough_without_factors,
    may_enroll_now,
    requested,
)
from tessera.shared.acr import (
    ACR_MFA,
    ACR_PASSWORD,
    ACR_PHISHING_RESISTANT,
    acr_for,
    meets,
    with_methods,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PWD = ("pwd",)
PWD_OTP = ("pwd", "otp", "mfa")
PASSKEY = ("hwk", "user", "mfa")


def user(admin: bool = False) -> User:
    return User("u1", "alice", "x", "Alice", None, admin, T0, T0)


NONE = UserFactors()
TOTP = UserFactors(totp=TotpFactor("u1", b"s", T0, T0))
CODES = (RecoveryCode("u1", "h", T0),)
TOTP_AND_CODES = UserFactors(totp=TotpFactor("u1", b"s", T0, T0), recovery_codes=CODES)
KEY = UserFactors(passkeys=(Passkey("c1", "u1", "Laptop", b"k", 0, T0),))


def decide(
    amr: tuple[str, ...],
    factors: UserFactors,
    policy: str = "optional",
    *,
    admin: bool = False,
    admin_rule: bool = False,
    need: Need = Need(),
) -> object:
    rules = SignInRules(policy, admin_rule)
    return assess(amr, user(admin), factors, policy, rules, need)


# --- acr and amr --------------------------------------------------------------------------------


def test_levels_follow_the_methods() -> None:
    assert acr_for(PWD) == ACR_PASSWORD
    assert with_methods(PWD, "otp") == PWD_OTP and acr_for(PWD_OTP) == ACR_MFA
    assert with_methods((), "hwk", "user") == PASSKEY
    assert acr_for(PASSKEY) == ACR_PHISHING_RESISTANT
    assert acr_for(with_methods(PWD, "swk")) == ACR_PHISHING_RESISTANT
    # A passkey without user verification is one factor: not a second one by itself.
    assert acr_for(with_methods((), "hwk")) == ACR_PASSWORD
    # Adding a method twice counts it once.
    assert with_methods(PWD_OTP, "otp") == PWD_OTP


def test_a_sign_in_through_a_provider_is_one_factor_as_a_password_is() -> None:
    """docs/federation.md: the domain's second-factor rules apply after a federated sign-in,
    and the factor completes it (it once stayed one factor, asking for the code forever)."""
    fed = ("fed",)
    assert acr_for(fed) == ACR_PASSWORD
    assert decide(fed, TOTP_AND_CODES, "optional") == AskFactor(("totp", "recovery"), 2)
    assert decide(fed, NONE, "required") == Enroll(passkey_only=False)
    with_code = with_methods(fed, "otp")
    assert with_code == ("fed", "otp", "mfa")
    assert decide(with_code, TOTP_AND_CODES, "required") == Enough(ACR_MFA)
    assert acr_for(with_methods(fed, "hwk")) == ACR_PHISHING_RESISTANT
    assert may_enroll_now(with_code, TOTP)


def test_a_higher_level_meets_a_lower_request_and_unknown_values_only_themselves() -> None:
    assert meets(ACR_PHISHING_RESISTANT, [ACR_MFA])
    assert not meets(ACR_PASSWORD, [ACR_MFA])
    assert meets(ACR_PASSWORD, ["urn:other", ACR_PASSWORD])
    assert not meets(ACR_PHISHING_RESISTANT, ["urn:other"])
    assert meets("urn:other", ["urn:other"])


# --- policies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "app", "effective"),
    [
        (None, None, "optional"),
        ("off", None, "off"),
        ("off", "required", "required"),
        ("required", "off", "required"),  # an app cannot loosen its domain's policy
        ("optional", "off", "optional"),
    ],
)
def test_the_stricter_policy_applies(domain: str | None, app: str | None, effective: str) -> None:
    assert effective_policy(domain, app) == effective


def test_off_and_optional_ask_nothing_of_a_user_without_factors() -> None:
    assert decide(PWD, NONE, "off") == Enough(ACR_PASSWORD)
    assert decide(PWD, NONE, "optional") == Enough(ACR_PASSWORD)


def test_optional_asks_for_the_factor_a_user_has() -> None:
    assert decide(PWD, TOTP_AND_CODES, "optional") == AskFactor(("totp", "recovery"), 2)
    assert decide(PWD_OTP, TOTP_AND_CODES, "optional") == Enough(ACR_MFA)


def test_off_does_not_ask_even_a_user_with_a_factor() -> None:
    assert decide(PWD, TOTP, "off") == Enough(ACR_PASSWORD)


def test_required_leads_a_user_without_a_factor_to_enroll() -> None:
    assert decide(PWD, NONE, "required") == Enroll(passkey_only=False)
    assert decide(PWD, KEY, "required") == AskFactor(("passkey",), 2)
    assert decide(PASSKEY, KEY, "required") == Enough(ACR_PHISHING_RESISTANT)


def test_recovery_codes_alone_are_no_factor() -> None:
    codes_only = UserFactors(recovery_codes=CODES)
    assert not codes_only.any and codes_only.methods == ()
    assert decide(PWD, codes_only, "required") == Enroll(passkey_only=False)


def test_an_administrator_with_a_factor_always_uses_it() -> None:
    assert decide(PWD, TOTP, "off", admin=True) == AskFactor(("totp",), 2)
    assert decide(PWD, NONE, "off", admin=True) == Enough(ACR_PASSWORD)


def test_the_domain_may_require_a_factor_of_every_administrator() -> None:
    assert decide(PWD, NONE, "off", admin=True, admin_rule=True) == Enroll(passkey_only=False)
    assert decide(PWD, NONE, "off", admin=False, admin_rule=True) == Enough(ACR_PASSWORD)


# --- requests: acr_values and the claims parameter ----------------------------------------------


def test_acr_values_take_the_lowest_known_level_asked_for() -> None:
    assert requested([ACR_PHISHING_RESISTANT, ACR_MFA], False) == Need(2, False)
    assert requested(["urn:other"], False) == Need(0, False)
    assert requested(["urn:other"], True) == Need(0, True, unknown_essential=True)
    assert requested([], True) == Need(0, True)


def test_a_request_for_mfa_asks_a_password_session_for_the_factor() -> None:
    need = requested([ACR_MFA], False)
    assert decide(PWD, TOTP, "off", need=need) == AskFactor(("totp",), 2)


def test_a_request_that_cannot_be_met_is_refused_where_users_cannot_enroll() -> None:
    need = requested([ACR_MFA], False)
    assert isinstance(decide(PWD, NONE, "off", need=need), Unmet)
    assert decide(PWD, NONE, "optional", need=need) == Enroll(passkey_only=False)


def test_an_essential_unknown_acr_is_never_met() -> None:
    assert isinstance(decide(PASSKEY, KEY, need=requested(["urn:x"], True)), Unmet)


def test_phishing_resistance_needs_a_passkey() -> None:
    need = requested([ACR_PHISHING_RESISTANT], False)
    assert decide(PWD_OTP, KEY, need=need) == AskFactor(("passkey",), 3)
    assert decide(PWD, NONE, need=need) == Enroll(passkey_only=True)
    assert isinstance(decide(PWD, NONE, "off", need=need), Unmet)
    # A user with an app proves it first: a password alone never adds a passkey.
    assert decide(PWD, TOTP, need=need) == AskFactor(("totp",), 2)
    assert decide(PWD_OTP, TOTP, need=need) == Enroll(passkey_only=True)


def test_only_a_sign_in_with_the_users_factor_may_add_another() -> None:
    assert may_enroll_now(PWD, NONE)
    assert not may_enroll_now(PWD, TOTP)
    assert may_enroll_now(PWD_OTP, TOTP)


@pytest.mark.parametrize("policy", ["off", "optional", "required"])
@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize("amr", [PWD, PWD_OTP, PASSKEY])
@pytest.mark.parametrize(
    "need",
    [Need(), requested([ACR_MFA], False), requested([ACR_PHISHING_RESISTANT], False)],
)
def test_skipping_the_factor_read_never_changes_the_answer(
    policy: str, admin: bool, amr: tuple[str, ...], need: Need
) -> None:
    """The authorization endpoint skips reading factors only where every user's factors give
    `Enough`; and with policy `off` a password session of a plain user is not read."""
    if enough_without_factors(amr, user(admin), policy, need):
        for factors in (NONE, TOTP_AND_CODES, KEY):
            outcome = decide(amr, factors, policy, admin=admin, admin_rule=True, need=need)
            assert isinstance(outcome, Enough), (factors, outcome)


def test_a_password_session_under_policy_off_reads_no_factors() -> None:
    assert enough_without_factors(PWD, user(), "off", Need())
    assert not enough_without_factors(PWD, user(admin=True), "off", Need())
    assert not enough_without_factors(PWD, user(), "optional", Need())
