"""RFC 9470 on the resource-server side: the token's `acr` / `amr` / `auth_time`, the per-route
requirement (levels, unknown values, `max_age` by the validator's clock, client tokens), and the
`insufficient_user_authentication` challenge, read back by `tessera.client`'s parser."""

from __future__ import annotations

import httpx
import pytest

from tessera.client.stepup import parse_challenges, step_up_challenge
from tessera.resource import (
    AuthRequirement,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    TokenValidator,
    requirement,
)
from tessera.shared.acr import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT
from tests.unit.resource.conftest import AUDIENCE, Idp

NOW = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(idp: Idp, clock: Clock) -> TokenValidator:
    """A validator whose clock the test moves (leeway 30 s)."""
    return TokenValidator(idp.issuer, AUDIENCE, clock=clock)


def signed(idp: Idp, **claims: object) -> str:
    now = int(NOW)
    return idp.token(iat=now, nbf=now, exp=now + 3600, **claims)


def refused(validator: TokenValidator, token: str, needed: AuthRequirement) -> str:
    with pytest.raises(InsufficientUserAuthenticationError) as caught:
        validator.validate(token, requirement=needed)
    assert caught.value.status == 401
    return caught.value.www_authenticate()


# --- the token's sign-in -----------------------------------------------------------------------


def test_the_token_carries_acr_amr_and_auth_time(idp: Idp, timed: TokenValidator) -> None:
    token = timed.validate(
        signed(idp, acr=ACR_MFA, amr=["pwd", "otp", "mfa"], auth_time=int(NOW) - 5)
    )
    assert (token.acr, token.amr, token.auth_time) == (ACR_MFA, ("pwd", "otp", "mfa"), NOW - 5)


@pytest.mark.parametrize(
    ("acr", "amr", "auth_time"),
    [(None, None, None), (7, "pwd", "yesterday"), ("", {"pwd": 1}, True), ([ACR_MFA], [1], 1e400)],
)
def test_malformed_sign_in_claims_count_as_absent(
    idp: Idp, timed: TokenValidator, acr: object, amr: object, auth_time: object
) -> None:
    claims = {k: v for k, v in {"acr": acr, "amr": amr, "auth_time": auth_time}.items() if v}
    token = timed.validate(signed(idp, **claims))
    assert (token.acr, token.amr, token.auth_time) == (None, (), None)
    refused(timed, signed(idp, **claims), requirement(ACR_PASSWORD))


# --- levels ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("have", "wanted", "ok"),
    [
        (ACR_PASSWORD, [ACR_PASSWORD], True),
        (ACR_PASSWORD, [ACR_MFA], False),
        (ACR_MFA, [ACR_MFA], True),
        (ACR_PHISHING_RESISTANT, [ACR_MFA], True),  # a higher level meets a lower one
        (ACR_MFA, [ACR_PHISHING_RESISTANT], False),
        (ACR_PASSWORD, [ACR_PHISHING_RESISTANT, ACR_MFA], False),
        (ACR_MFA, [ACR_PHISHING_RESISTANT, ACR_MFA], True),  # any one of the values
        ("urn:other:gold", ["urn:other:gold"], True),  # an unknown value: only by itself
        (ACR_PHISHING_RESISTANT, ["urn:other:gold"], False),
        ("urn:other:platinum", ["urn:other:gold"], False),
        ("urn:other:gold", [ACR_PASSWORD], False),
    ],
)
def test_a_level_is_met_by_itself_or_a_higher_known_one(
    idp: Idp, timed: TokenValidator, have: str, wanted: list[str], ok: bool
) -> None:
    token, needed = signed(idp, acr=have), requirement(wanted)
    if ok:
        assert timed.validate(token, requirement=needed).acr == have
    else:
        refused(timed, token, needed)


def test_no_requirement_accepts_any_sign_in(idp: Idp, timed: TokenValidator) -> None:
    assert not requirement()
    assert timed.validate(signed(idp), requirement=requirement()).acr is None


# --- max_age -----------------------------------------------------------------------------------


def test_max_age_is_judged_by_the_validators_clock_with_its_leeway(
    idp: Idp, clock: Clock, timed: TokenValidator
) -> None:
    token = signed(idp, acr=ACR_MFA, auth_time=int(NOW) - 100)
    needed = requirement(max_age=300)
    assert timed.validate(token, requirement=needed).auth_time == NOW - 100
    clock.now = NOW + 200 + 30  # 330 s after the sign-in: 300 + the 30 s leeway
    assert timed.validate(token, requirement=needed).subject == "user-42"
    clock.now += 1
    challenge = refused(timed, token, needed)
    assert 'max_age="300"' in challenge and "acr_values" not in challenge


def test_max_age_zero_still_allows_the_sign_in_that_just_happened(
    idp: Idp, timed: TokenValidator
) -> None:
    token = signed(idp, auth_time=int(NOW) - 3)
    assert timed.validate(token, requirement=requirement(max_age=0)).subject == "user-42"


def test_a_token_without_auth_time_fails_a_max_age(idp: Idp, timed: TokenValidator) -> None:
    refused(timed, signed(idp, acr=ACR_PHISHING_RESISTANT), requirement(max_age=86400))


def test_both_parts_must_hold_and_the_challenge_names_both(
    idp: Idp, timed: TokenValidator
) -> None:
    needed = requirement([ACR_MFA], max_age=60)
    fresh_but_weak = signed(idp, acr=ACR_PASSWORD, auth_time=int(NOW))
    strong_but_old = signed(idp, acr=ACR_MFA, auth_time=int(NOW) - 3600)
    for token in (fresh_but_weak, strong_but_old):
        challenge = refused(timed, token, needed)
        assert f'acr_values="{ACR_MFA}"' in challenge and 'max_age="60"' in challenge
    assert timed.validate(signed(idp, acr=ACR_MFA, auth_time=int(NOW)), requirement=needed)


# --- who can meet it ---------------------------------------------------------------------------


def test_a_client_token_never_meets_a_requirement(idp: Idp, timed: TokenValidator) -> None:
    # No user signed in: even a client token claiming a level is refused with the challenge.
    token = signed(idp, sub="app-7", sub_type="client", acr=ACR_PHISHING_RESISTANT)
    challenge = refused(timed, token, requirement(ACR_MFA))
    assert "signed-in user" in challenge
    assert timed.validate(token).sub_type == "client"  # routes without a requirement: fine


def test_scopes_are_checked_before_the_sign_in(idp: Idp, timed: TokenValidator) -> None:
    # 403 first: signing in again cannot give a scope the token lacks.
    with pytest.raises(InsufficientScopeError):
        timed.validate(signed(idp, acr=ACR_PASSWORD), ["orders:admin"], requirement(ACR_MFA))


@pytest.mark.parametrize(
    ("acr", "max_age"),
    [("has\"quote", None), ("back\\slash", None), ("é", None), (None, -1), (None, True)],
)
def test_a_requirement_that_cannot_be_sent_is_refused_at_once(
    acr: str | None, max_age: int | None
) -> None:
    with pytest.raises(ValueError):
        requirement(acr, max_age)


def test_acr_values_may_be_space_separated_or_a_list_each_once() -> None:
    assert requirement(f"{ACR_MFA}  {ACR_PASSWORD}").acr_values == (ACR_MFA, ACR_PASSWORD)
    assert requirement([ACR_MFA, f"{ACR_MFA} x"]).acr_values == (ACR_MFA, "x")


# --- the challenge, and reading it back --------------------------------------------------------


def test_the_challenge_is_rfc9470s_and_tessera_client_reads_it_back() -> None:
    error = InsufficientUserAuthenticationError(
        "a stronger sign-in is needed", acr_values=(ACR_PHISHING_RESISTANT, ACR_MFA), max_age=5
    )
    headers = error.headers()
    assert headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="a stronger sign-in is needed", '
        f'acr_values="{ACR_PHISHING_RESISTANT} {ACR_MFA}", max_age="5"'
    )
    assert error.www_authenticate() == headers["WWW-Authenticate"]
    assert error.body()["error"] == "insufficient_user_authentication"
    ((scheme, params),) = parse_challenges([headers["WWW-Authenticate"]])
    assert scheme == "bearer" and params["max_age"] == "5"
    response = httpx.Response(401, headers=headers)
    found = step_up_challenge(response)
    assert found is not None
    assert found.acr_values == (ACR_PHISHING_RESISTANT, ACR_MFA)
    assert found.max_age == 5
    assert found.description == "a stronger sign-in is needed"


def test_a_challenge_with_only_a_level_has_no_max_age() -> None:
    error = InsufficientUserAuthenticationError(acr_values=[ACR_MFA])
    assert "max_age" not in error.www_authenticate()
    found = step_up_challenge(httpx.Response(401, headers=error.headers()))
    assert found is not None and (found.acr_values, found.max_age) == ((ACR_MFA,), None)
