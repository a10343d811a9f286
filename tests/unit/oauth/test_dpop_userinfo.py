"""The UserInfo endpoint with DPoP-bound tokens (RFC 9449 §7) on the protocol core: the DPoP
scheme with a proof of the token's key carrying `ath`, used once; a bound token refused as a
bearer token (§7.2); the DPoP scheme refused for an unbound token (§7.1). Over HTTP (the
challenges): tests/e2e/test_dpop_token_endpoint.py."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey

from tessera.domain.model import User
from tessera.oauth import errors
from tessera.oauth.dpop import DPoPPolicy
from tessera.oauth.tokens import AccessTokenSpec
from tessera.oauth.userinfo import Presented
from tests.support.dpop import make_proof, new_key, thumbprint

from .conftest import ISSUER, Core

URL = ISSUER + "/oauth2/v1/userinfo"


def token_for(core: Core, user: User, key: ECKey | None) -> str:
    spec = AccessTokenSpec(
        subject=user.id,
        sub_type="user",
        client_id="app-web",
        audience=ISSUER,
        scope="openid",
        lifetime=600,
        jkt=thumbprint(key) if key else None,
    )
    return core.issuer.access_token(spec, int(core.clock().timestamp()))[0]


def ask(core: Core, token: str, scheme: str = "DPoP", proof: str | None = None) -> dict[str, Any]:
    return core.userinfo(
        token,
        presented=Presented(scheme, proof, "GET", URL),
        dpop=DPoPPolicy(core.store.nonces.use_once),
    )


def proof(core: Core, key: ECKey, token: str | None, **kw: Any) -> str:
    return make_proof(key, "GET", URL, access_token=token, iat=core.clock().timestamp(), **kw)


def refused(core: Core, token: str, scheme: str = "DPoP", dpop: str | None = None) -> Any:
    with pytest.raises(errors.OAuthError) as caught:
        ask(core, token, scheme, dpop)
    assert caught.value.dpop_only  # §7.2: the DPoP challenge carries the error
    return caught.value


def test_a_bound_token_with_a_proof_of_its_key(core: Core) -> None:
    alice = core.add_user()
    key = new_key()
    token = token_for(core, alice, key)
    assert ask(core, token, proof=proof(core, key, token)) == {"sub": alice.id}


def test_a_bound_token_sent_as_bearer_is_refused(core: Core) -> None:
    key = new_key()
    token = token_for(core, core.add_user(), key)
    error = refused(core, token, "Bearer", proof(core, key, token))
    assert error.error == "invalid_token" and error.status == 401


def test_the_dpop_scheme_with_an_unbound_token_is_refused(core: Core) -> None:
    key = new_key()
    token = token_for(core, core.add_user(), None)
    assert refused(core, token, dpop=proof(core, key, token)).error == "invalid_token"


def test_proof_failures(core: Core) -> None:
    key = new_key()
    token = token_for(core, core.add_user(), key)
    missing = refused(core, token)
    assert missing.error == "invalid_dpop_proof" and missing.status == 401
    no_ath = refused(core, token, dpop=proof(core, key, None))
    assert no_ath.error == "invalid_dpop_proof" and "ath" in no_ath.description
    other_token = token_for(core, core.add_user("bob"), key)
    wrong_ath = refused(core, token, dpop=proof(core, key, other_token))
    assert wrong_ath.error == "invalid_dpop_proof"
    post = make_proof(key, "POST", URL, access_token=token, iat=core.clock().timestamp())
    assert refused(core, token, dpop=post).error == "invalid_dpop_proof"  # htm


def test_a_proof_of_another_key_is_refused(core: Core) -> None:
    token = token_for(core, core.add_user(), new_key())
    error = refused(core, token, dpop=proof(core, new_key(), token))
    assert error.error == "invalid_token" and "key" in error.description


def test_a_proof_is_used_once(core: Core) -> None:
    key = new_key()
    token = token_for(core, core.add_user(), key)
    once = proof(core, key, token)
    ask(core, token, proof=once)
    assert refused(core, token, dpop=once).error == "invalid_dpop_proof"


def test_an_unbound_token_as_bearer_is_unchanged(core: Core) -> None:
    alice = core.add_user()
    assert ask(core, token_for(core, alice, None), "Bearer") == {"sub": alice.id}
