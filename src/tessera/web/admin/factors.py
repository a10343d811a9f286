"""Strong authentication for administrators (docs/mfa.md): a user's second factors
(`/admin/v1/users/{user}/factors`) and the domain's sign-in policy (`/admin/v1/sign-in-policy`).

The rules are `tessera.manage.factors`, shared with the CLI. A domain's administrators set its
own policy here; operators may also set it as domain settings (`/admin/v1/domains/…`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from tessera.manage import factors as factor_rules
from tessera.manage.users import find_user
from tessera.web.admin.bodies import SignInPolicyUpdate
from tessera.web.admin.deps import Acting, Admin, Svc
from tessera.web.admin.schemas import FactorsOut, FactorsResetOut, SignInPolicyOut, problems

__all__ = ["router"]

router = APIRouter()

Kind = Literal["all", "passkeys", "totp", "recovery"]


@router.get(
    "/users/{user}/factors",
    tags=["factors"],
    summary="A user's second factors: passkeys, authenticator app, recovery codes left",
    description="Never a public key, a secret or a hash.",
    response_model=FactorsOut,
    responses=problems(404),
)
async def show_factors(user: str, _: Admin, svc: Svc) -> dict[str, Any]:
    store = svc.ctx.store

    def view() -> dict[str, Any]:
        return factor_rules.factors_view(store, find_user(store, user))

    return await run_in_threadpool(view)


@router.delete(
    "/users/{user}/factors",
    tags=["factors"],
    summary="Reset a user's second factors; the user's sessions end",
    description="Removes every factor, or one kind (`what`). Where the policy requires a "
    "second factor the user enrolls again after the password at the next sign-in.",
    response_model=FactorsResetOut,
    responses=problems(400, 404),
)
async def reset_factors(
    user: str,
    actor: Acting,
    svc: Svc,
    what: Annotated[Kind, Query(description="What to remove")] = "all",
) -> dict[str, Any]:
    done = await run_in_threadpool(
        lambda: factor_rules.reset_factors(svc.ctx.store, user, svc.ctx.clock(), actor, what=what)
    )
    return done.view()


@router.get(
    "/sign-in-policy",
    tags=["sign-in policy"],
    summary="The domain's second-factor policy",
    response_model=SignInPolicyOut,
    responses=problems(404),
)
async def show_policy(_: Admin, svc: Svc) -> dict[str, Any]:
    return await run_in_threadpool(factor_rules.sign_in_policy, svc.ctx.store)


@router.patch(
    "/sign-in-policy",
    tags=["sign-in policy"],
    summary="Set the domain's second-factor policy",
    description="Applies to sign-ins from now on, on every node within seconds. An app's own "
    "`mfa_policy` may be stricter, never looser. `null` goes back to the default.",
    response_model=SignInPolicyOut,
    responses=problems(400, 404, 409, 413),
)
async def set_policy(
    body: SignInPolicyUpdate, actor: Acting, svc: Svc, request: Request
) -> dict[str, Any]:
    given = {name: getattr(body, name) for name in body.model_fields_set}
    base_issuer = request.app.state.services.ctx.settings.issuer
    updated = await run_in_threadpool(
        lambda: factor_rules.set_sign_in_policy(
            svc.ctx.store, base_issuer=base_issuer, now=svc.ctx.clock(), actor=actor, **given
        )
    )
    svc.rules.clear()  # this node applies it at once; the others within their cache's time
    request.app.state.on_domain_changed(svc.domain.id)
    return updated
