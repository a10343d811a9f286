"""DPoP at the token endpoint (RFC 9449) on the protocol core: a proof binds the access token
(§5, §6.1 `cnf.jkt`, `token_type: DPoP`), an app with `dpop_bound_access_tokens` needs one
(§5.2), a proof is used once (§11.1), a code bound with `dpop_jkt` (§10, §10.1 at PAR) is
redeemed only with its key, a public app's refresh family is bound to its key (§5) while a
confidential app's is not, server nonces (§8), and introspection's `cnf` (§6.2).

The proof checks themselves (§4.3) are tests/unit/test_dpop_proof.py's; over HTTP:
tests/e2e/test_dpop_token_endpoint.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import Client, User
from tessera.oauth import errors
from tessera.oauth.authorize import AuthorizationError
from tessera.oauth.dpop import DPoPPolicy
from tessera.oauth.par import push
from tessera.oauth.token import TokenEndpoint
from tessera.shared.dpop import NonceSource
from tests.support.dpop import make_proof, new_key, thumbprint

from .conftest import ISSUER, ORDERS, Core

TOKEN_URL = ISSUER + "/oauth2/v1/token"


def endpoint(core: Core, nonces: NonceSource | None = None) -> TokenEndpoint:
    """The core's token endpoint with the node's DPoP policy (server nonces when given)."""
    return core.token_endpoint(dpop=DPoPPolicy(core.store.nonces.use_once, nonces))


def proof(core: Core, key: ECKey, url: str = TOKEN_URL, **kw: Any) -> str:
    return make_proof(key, "POST", url, iat=core.clock().timestamp(), **kw)


def ask(
    core: Core,
    app: Client,
    form: dict[str, str],
    dpop: str | None = None,
    nonces: NonceSource | None = None,
) -> dict[str, Any]:
    """The token endpoint's body for `app` (client_secret_post, or a public app's id)."""
    body = {**core.credentials(app), **form}
    return endpoint(core, nonces).handle(None, body, set(), dpop).body


def claims(core: Core, access_token: str) -> dict[str, Any]:
    return core.issuer.verify_own(access_token, int(core.clock().timestamp()))


def refused(call: Any, *args: Any, **kw: Any) -> errors.OAuthError:
    with pytest.raises(errors.OAuthError) as caught:
        call(*args, **kw)
    return caught.value


def cc(core: Core, app: Client, dpop: str | None = None, **kw: Any) -> dict[str, Any]:
    form = {"grant_type": "client_credentials", "scope": ORDERS + "read"}
    return ask(core, app, form, dpop, **kw)


def redeem(core: Core, app: Client, code: str, dpop: str | None = None) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code}
    if app.is_public:
        form["code_verifier"] = "v" * 43  # conftest's VERIFIER
    return ask(core, app, form, dpop)


def refresh(core: Core, app: Client, token: str, dpop: str | None = None) -> dict[str, Any]:
    return ask(core, app, {"grant_type": "refresh_token", "refresh_token": token}, dpop)


@pytest.fixture
def setup(core: Core) -> tuple[Client, User]:
    core.add_resource()
    app, _ = core.add_app(
        grant_types=("authorization_code", "refresh_token", "client_credentials")
    )
    return app, core.add_user()


# --- binding access tokens (§5, §6.1) ----------------------------------------------------------


def test_a_proof_binds_the_access_token_and_introspection_shows_it(
    core: Core, setup: tuple[Client, User]
) -> None:
    app, _ = setup
    key = new_key()
    body = cc(core, app, proof(core, key))
    assert body["token_type"] == "DPoP"
    assert claims(core, body["access_token"])["cnf"] == {"jkt": thumbprint(key)}
    answer = core.introspect(app, body["access_token"])  # §6.2
    assert answer["active"] and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": thumbprint(key)}


def test_without_a_proof_the_token_stays_a_bearer_token(
    core: Core, setup: tuple[Client, User]
) -> None:
    app, _ = setup
    body = cc(core, app)
    assert body["token_type"] == "Bearer" and "cnf" not in claims(core, body["access_token"])
    answer = core.introspect(app, body["access_token"])
    assert answer["token_type"] == "Bearer" and "cnf" not in answer


def test_an_app_that_always_uses_dpop_is_refused_without_a_proof(core: Core) -> None:
    """§5.2: MUST reject; `invalid_dpop_proof` (§5: the header must hold a valid proof)."""
    core.add_resource()
    app, _ = core.add_app(grant_types=("client_credentials",), dpop_bound_access_tokens=True)
    error = refused(cc, core, app)
    assert isinstance(error, errors.InvalidDPoPProof) and error.status == 400
    assert error.error == "invalid_dpop_proof"
    assert cc(core, app, proof(core, new_key()))["token_type"] == "DPoP"


def test_a_proof_is_used_once(core: Core, setup: tuple[Client, User]) -> None:
    app, _ = setup
    once = proof(core, new_key())
    cc(core, app, once)
    error = refused(cc, core, app, once)
    assert error.error == "invalid_dpop_proof" and "used before" in error.description


@pytest.mark.parametrize(
    ("url", "broken"),
    [
        (ISSUER + "/oauth2/v1/par", {}),  # htu
        (TOKEN_URL, {"claims": {"htm": "GET"}}),  # htm
        (TOKEN_URL, {"typ": "JWT"}),
        (TOKEN_URL, {"age": 120}),  # iat too old
    ],
)
def test_a_broken_proof_burns_nothing(
    core: Core, setup: tuple[Client, User], url: str, broken: dict[str, Any]
) -> None:
    """A proof failing §4.3 is refused before the code is consumed: the code still works."""
    app, user = setup
    key = new_key()
    code = core.authorize(app, user)
    iat = core.clock().timestamp() - broken.pop("age", 0)
    bad = make_proof(key, "POST", url, iat=iat, **broken)
    assert refused(redeem, core, app, code, bad).error == "invalid_dpop_proof"
    assert redeem(core, app, code, proof(core, key))["token_type"] == "DPoP"


# --- codes bound with dpop_jkt (§10, §10.1) ----------------------------------------------------


def test_a_code_bound_with_dpop_jkt_needs_a_proof_of_that_key(
    core: Core, setup: tuple[Client, User]
) -> None:
    app, user = setup
    key = new_key()
    bound = core.authorize(app, user, dpop_jkt=thumbprint(key))
    error = refused(redeem, core, app, bound, proof(core, new_key()))
    assert error.error == "invalid_grant" and "another DPoP key" in error.description
    # Used once (RFC 6749 §4.1.2): the refusal burned it, also for its key.
    assert refused(redeem, core, app, bound, proof(core, key)).error == "invalid_grant"
    without = core.authorize(app, user, dpop_jkt=thumbprint(key))
    assert refused(redeem, core, app, without).error == "invalid_grant"
    good = core.authorize(app, user, dpop_jkt=thumbprint(key))
    body = redeem(core, app, good, proof(core, key))
    assert claims(core, body["access_token"])["cnf"]["jkt"] == thumbprint(key)


def test_dpop_jkt_must_be_a_thumbprint(core: Core, setup: tuple[Client, User]) -> None:
    app, user = setup
    with pytest.raises(AuthorizationError) as caught:
        core.authorize(app, user, dpop_jkt="not-a-thumbprint")
    assert caught.value.error.error == "invalid_request"


def test_a_proof_at_par_binds_the_code(core: Core, setup: tuple[Client, User]) -> None:
    """§10.1: a PAR proof acts as dpop_jkt; both given and different: MUST reject."""
    app, _ = setup
    key = new_key()
    params = {"response_type": "code", "scope": "openid", "redirect_uri": app.redirect_uris[0]}
    resources = core.store.resources.list()
    now = core.clock()
    pushed = push(core.store.pushed_requests, app, params, resources, now, proof_jkt="k" * 43)
    uri = pushed.request_uri.rsplit(":", 1)[1]
    stored = core.store.pushed_requests.take(sha256_b64(uri), app.client_id, now)
    assert stored is not None and dict(stored.params)["dpop_jkt"] == "k" * 43
    error = refused(
        push,
        core.store.pushed_requests,
        app,
        {**params, "dpop_jkt": thumbprint(key)},
        resources,
        now,
        proof_jkt="k" * 43,
    )
    assert error.error == "invalid_dpop_proof"


# --- refresh tokens (§5) -----------------------------------------------------------------------


def test_a_public_apps_refresh_token_is_bound_to_its_key(core: Core) -> None:
    core.add_resource()
    app, _ = core.add_app(public=True)
    user = core.add_user()
    key = new_key()
    first = redeem(core, app, core.authorize(app, user), proof(core, key))
    assert first["token_type"] == "DPoP"
    other = refused(refresh, core, app, first["refresh_token"], proof(core, new_key()))
    assert other.error == "invalid_grant" and "another DPoP key" in other.description
    assert refused(refresh, core, app, first["refresh_token"]).error == "invalid_grant"
    # Refused without a write: the holder of the key still refreshes, and no replay is seen.
    again = refresh(core, app, first["refresh_token"], proof(core, key))
    assert claims(core, again["access_token"])["cnf"]["jkt"] == thumbprint(key)
    assert refresh(core, app, again["refresh_token"], proof(core, key))["token_type"] == "DPoP"


def test_a_confidential_apps_refresh_token_is_not_bound(
    core: Core, setup: tuple[Client, User]
) -> None:
    """§5: bound to the app by its authentication; each new access token is bound to the
    proof of the refresh request that got it."""
    app, user = setup
    first = redeem(core, app, core.authorize(app, user), proof(core, new_key()))
    other = new_key()
    again = refresh(core, app, first["refresh_token"], proof(core, other))
    assert claims(core, again["access_token"])["cnf"]["jkt"] == thumbprint(other)
    plain = refresh(core, app, again["refresh_token"])
    assert plain["token_type"] == "Bearer" and "cnf" not in claims(core, plain["access_token"])


def test_a_public_family_started_without_a_proof_stays_unbound(core: Core) -> None:
    """The binding is fixed when the code is redeemed (docs: a later proof binds only the
    access token)."""
    core.add_resource()
    app, _ = core.add_app(public=True)
    first = redeem(core, app, core.authorize(app, core.add_user()))
    assert first["token_type"] == "Bearer"
    again = refresh(core, app, first["refresh_token"], proof(core, new_key()))
    assert again["token_type"] == "DPoP"
    assert refresh(core, app, again["refresh_token"])["token_type"] == "Bearer"


# --- server nonces (§8) ------------------------------------------------------------------------


def test_nonces_when_on(core: Core, setup: tuple[Client, User]) -> None:
    app, _ = setup
    nonces = NonceSource(b"n" * 32)
    key = new_key()
    with pytest.raises(errors.UseDPoPNonce) as caught:
        cc(core, app, proof(core, key), nonces=nonces)
    error = caught.value
    assert error.error == "use_dpop_nonce" and error.status == 400
    assert error.dpop_nonce == nonces.current(core.clock().timestamp())
    assert cc(core, app, proof(core, key, nonce=error.dpop_nonce), nonces=nonces)["access_token"]
    core.clock.advance(2 * nonces.window + 1)  # two windows later the nonce is stale
    stale = refused(cc, core, app, proof(core, key, nonce=error.dpop_nonce), nonces=nonces)
    assert stale.error == "use_dpop_nonce" and stale.dpop_nonce != error.dpop_nonce
    # Another failure hands out a nonce too (§8: a rejection MAY carry one).
    bad = refused(cc, core, app, proof(core, key, typ="JWT"), nonces=nonces)
    assert bad.error == "invalid_dpop_proof" and bad.dpop_nonce is not None


def test_a_proofs_jti_is_kept_while_its_iat_is_accepted(
    core: Core, setup: tuple[Client, User]
) -> None:
    """§11.1: the replay state lives as long as the proof would be accepted (60 s + 5 s)."""
    app, _ = setup
    cc(core, app, proof(core, new_key()))
    assert core.store.nonces.purge(core.clock() + timedelta(seconds=64)) == 0
    assert core.store.nonces.purge(core.clock() + timedelta(seconds=66)) == 1


def test_the_answers_carry_the_nonce_and_the_challenge() -> None:
    """§8: `use_dpop_nonce` is a 400 with `DPoP-Nonce`; §7.1, §9 at a resource: a 401 whose
    DPoP challenge alone carries the error when the request used DPoP."""
    from tessera.web.errors import oauth_error_response

    at_token = oauth_error_response(errors.UseDPoPNonce("needs a nonce", "n-1"))
    assert at_token.status_code == 400 and at_token.headers["dpop-nonce"] == "n-1"
    assert "www-authenticate" not in at_token.headers
    at_resource = errors.UseDPoPNonce("needs a nonce", "n-2", status=401)
    at_resource.dpop_only = True
    answer = oauth_error_response(at_resource, bearer=True, dpop_algs=("ES256",))
    assert answer.status_code == 401 and answer.headers["dpop-nonce"] == "n-2"
    assert answer.headers["www-authenticate"] == (
        'DPoP realm="tessera", error="use_dpop_nonce", error_description="needs a nonce", '
        'algs="ES256"'
    )


def test_fapi2_apps_always_need_dpop(core: Core) -> None:
    """FAPI 2.0 §5.3.2.1: also an app registered before DPoP (its flag off) needs proofs."""
    app, _ = core.add_app(profile="fapi2")
    assert not app.dpop_bound_access_tokens and app.requires_dpop
    plain, _ = core.add_app()
    assert not plain.requires_dpop
