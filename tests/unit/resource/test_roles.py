"""Application roles and groups in access tokens (RFC 9068 §2.2.3.1): `AccessToken.roles` and
`.groups` read from the claims (a malformed claim grants nothing and never fails validation),
`TokenValidator.require_roles`, and the adapters' `roles=` (403 `insufficient_scope` naming the
roles, after the scope check, before the step-up)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import pytest
from fastapi import FastAPI, Security
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.resource import AccessToken, InsufficientRoleError, TokenValidator
from tessera.resource.fastapi import TokenDependency
from tessera.resource.starlette import requires
from tessera.shared.acr import ACR_MFA, ACR_PASSWORD
from tests.unit.resource.conftest import DROP, Idp, starlette_api

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

READ = "orders:read"


def test_roles_and_groups_are_read_from_their_claims(idp: Idp, validator: TokenValidator) -> None:
    token = validator.validate(
        idp.token(roles=["Clerk", "Manager"], groups=["Sales", "Berlin"])
    )
    assert token.roles == frozenset({"Clerk", "Manager"})
    assert token.groups == frozenset({"Sales", "Berlin"})
    assert token.has_any_role(["Auditor", "Manager"])
    assert not token.has_any_role(["Auditor"])
    assert not token.has_any_role([])


def test_without_the_claims_a_token_has_no_role_and_no_group(
    idp: Idp, validator: TokenValidator
) -> None:
    token = validator.validate(idp.token())
    assert token.roles == frozenset() and token.groups == frozenset()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Manager", frozenset()),  # a string, not an array: no role
        ({"Manager": True}, frozenset()),
        (42, frozenset()),
        (None, frozenset()),
        (True, frozenset()),
        (["Clerk", 7, None, ["Manager"], {"x": 1}, "", "Auditor"], frozenset({"Clerk", "Auditor"})),
        ([], frozenset()),
    ],
)
def test_a_malformed_claim_grants_nothing_and_does_not_fail(
    idp: Idp, validator: TokenValidator, value: Any, expected: frozenset[str]
) -> None:
    token = validator.validate(idp.token(roles=value, groups=value))
    assert token.roles == expected and token.groups == expected


def test_require_roles_wants_any_one_and_names_them(idp: Idp, validator: TokenValidator) -> None:
    token = validator.validate(idp.token(roles=["Clerk"]))
    TokenValidator.require_roles(token, ["Manager", "Clerk"])
    TokenValidator.require_roles(token, [])  # nothing required
    with pytest.raises(InsufficientRoleError) as caught:
        TokenValidator.require_roles(token, ["Manager", "Auditor"])
    error = caught.value
    assert (error.status, error.error) == (403, "insufficient_scope")
    assert error.roles == ("Manager", "Auditor")
    assert error.description == "needs one of the roles Manager, Auditor"
    challenge = error.www_authenticate()
    assert 'error="insufficient_scope"' in challenge
    assert 'error_description="needs one of the roles Manager, Auditor"' in challenge
    assert "scope=" not in challenge  # no other scope would help
    with pytest.raises(InsufficientRoleError, match="^needs the role Manager$"):
        TokenValidator.require_roles(token, ["Manager"])


def _starlette(validator: TokenValidator) -> Any:
    @requires(READ, roles=["Manager", "Clerk"], acr=ACR_MFA)
    async def orders(request: Request) -> JSONResponse:
        return JSONResponse({"roles": sorted(request.user.token.roles)})

    return starlette_api(validator, [Route("/orders", orders)])


def _fastapi(validator: TokenValidator) -> FastAPI:
    require = TokenDependency(validator, acr_values=[ACR_MFA]).requiring(roles=["Manager", "Clerk"])
    app = FastAPI()

    @app.get("/orders")
    def orders(token: AccessToken = Security(require, scopes=[READ])) -> dict[str, Any]:
        return {"roles": sorted(token.roles)}

    return app


@pytest.mark.parametrize("build", [_starlette, _fastapi], ids=["starlette", "fastapi"])
def test_the_adapters_require_a_role_after_the_scope_and_before_the_step_up(
    idp: Idp, validator: TokenValidator, build: Any
) -> None:
    now = int(time.time())

    def call(**claims: Any) -> Any:
        token = idp.token(**{"acr": ACR_MFA, "auth_time": now, **claims})
        with TestClient(build(validator), raise_server_exceptions=False) as client:
            return client.get("/orders", headers={"Authorization": f"Bearer {token}"})

    assert call(roles=["Clerk"]).json() == {"roles": ["Clerk"]}
    # The scope first: a role does not make up for it.
    no_scope = call(scope="orders:write", roles=["Manager"])
    assert no_scope.status_code == 403
    assert f'scope="{READ}"' in no_scope.headers["www-authenticate"]
    # Then the role: 403 naming the roles that would do.
    no_role = call(roles=["Auditor"])
    assert no_role.status_code == 403, no_role.text
    body = no_role.json()
    # FastAPI puts an HTTPException's body under `detail` unless the app has its own handler.
    assert body.get("detail", body) == {
        "error": "insufficient_scope",
        "error_description": "needs one of the roles Manager, Clerk",
    }
    assert 'error="insufficient_scope"' in no_role.headers["www-authenticate"]
    # Then the sign-in: a step-up cannot give a missing role, so the role is answered first.
    assert call(roles=["Auditor"], acr=ACR_PASSWORD).status_code == 403
    weak = call(roles=["Manager"], acr=ACR_PASSWORD)
    assert weak.status_code == 401
    assert "insufficient_user_authentication" in weak.headers["www-authenticate"]


def test_requiring_roles_keeps_the_rest(validator: TokenValidator) -> None:
    base = TokenDependency(validator, acr_values=[ACR_MFA], roles=["Manager"])
    other = base.requiring(dpop=True)
    assert other.roles == ("Manager",) and other.requirement == base.requirement
    assert base.requiring(roles=[]).roles == ()
    assert base.roles == ("Manager",)


def test_roles_are_kept_by_the_validation_cache(idp: Idp, validator: TokenValidator) -> None:
    raw = idp.token(roles=["Clerk"])
    first = validator.validate(raw)
    again = validator.validate(raw)
    assert again.roles == first.roles == frozenset({"Clerk"})
    drop = validator.validate(idp.token(roles=DROP))
    assert drop.roles == frozenset()
