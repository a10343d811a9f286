"""`TokenDependency.requiring` changes what it is given and keeps the rest: turning DPoP on does
not drop a step-up requirement set before (and the original dependency is left as it was)."""

from __future__ import annotations

from tessera.resource import TokenValidator, requirement
from tessera.resource.fastapi import TokenDependency
from tessera.shared.acr import ACR_MFA


def test_requiring_dpop_keeps_the_step_up_requirement(validator: TokenValidator) -> None:
    strong = TokenDependency(validator).requiring(acr_values=[ACR_MFA], max_age=300)
    bound = strong.requiring(dpop=True)
    assert bound.require_dpop and not strong.require_dpop
    assert bound.requirement == strong.requirement == requirement([ACR_MFA], 300)
    relaxed = bound.requiring(max_age=60)
    assert relaxed.requirement == requirement(None, 60) and relaxed.require_dpop
