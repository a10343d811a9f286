"""DPoP (RFC 9449) at the identity domain's admin API (`tessera.web.admin.guard`), in process
on the real application and a SQLite store: a DPoP-bound admin token works with a proof whose
`htu` is under the domain's configured issuer (also a path domain's, for an operator); the
proof's `jti` is used once in the store, so another node sharing the database refuses a
replay; the bound token as Bearer is refused with the DPoP challenge.

The bound tokens are minted here with the domain's own signing key, as the token endpoint
would mint them (`cnf.jkt`, RFC 9449 §6.1)."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from tessera.config import load_settings
from tessera.context import Context, open_context
from tessera.domain.admin import ADMIN_SCOPE, OPERATOR_SCOPE, admin_audience
from tessera.web.app import build_app
from tests.support.dpop import make_proof, new_key, thumbprint
from tests.unit.conftest import add_domain

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = load_settings(data_dir=tmp_path, secret_key="k" * 43)
    context = open_context(settings, migrate=True)
    context.keys.ensure()
    yield context
    context.close()


@pytest.fixture
def apps(ctx: Context) -> Iterator[tuple[Starlette, Starlette]]:
    """Two nodes on one database."""
    built = (build_app(ctx), build_app(ctx))
    try:
        yield built
    finally:
        for app in built:
            app.state.services.node.audit.close()


def admin_token(ctx: Context, key: ECKey | None, scope: str = ADMIN_SCOPE) -> str:
    issuer, now = ctx.settings.issuer, int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": "admin-1",
        "sub_type": "user",
        "aud": admin_audience(issuer),
        "client_id": "tessera-console",
        "scope": scope,
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    if key is not None:
        claims["cnf"] = {"jkt": thumbprint(key)}
    return ctx.keys.sign("ES256", claims, typ="at+jwt")


def dpop(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def test_a_bound_admin_token_needs_its_proof_under_the_issuer_and_once_on_every_node(
    ctx: Context, apps: tuple[Starlette, Starlette]
) -> None:
    one, other = (TestClient(app, base_url="http://testserver") for app in apps)
    key = new_key()
    token = admin_token(ctx, key)
    url = f"{ctx.settings.issuer}/admin/v1/users"  # the issuer, not the Host the app sees
    proof = make_proof(key, "GET", url, access_token=token)
    answer = one.get("/admin/v1/users", headers=dpop(token, proof))
    assert answer.status_code == 200, answer.text

    for client in (one, other):  # the jti is in the shared store: no node takes it again
        replayed = client.get("/admin/v1/users", headers=dpop(token, proof))
        assert replayed.status_code == 401, replayed.text
        challenge = replayed.headers["www-authenticate"]
        assert challenge.startswith('DPoP realm="api", error="invalid_dpop_proof"')

    wrong_host = make_proof(key, "GET", "http://testserver/admin/v1/users", access_token=token)
    answer = other.get("/admin/v1/users", headers=dpop(token, wrong_host))
    assert answer.status_code == 401
    assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]

    fresh = make_proof(key, "GET", url, access_token=token)
    assert other.get("/admin/v1/users", headers=dpop(token, fresh)).status_code == 200


def test_a_bound_admin_token_as_bearer_is_refused_and_bearer_still_works(
    ctx: Context, apps: tuple[Starlette, Starlette]
) -> None:
    client = TestClient(apps[0])
    bound = admin_token(ctx, new_key())
    answer = client.get("/admin/v1/users", headers={"Authorization": f"Bearer {bound}"})
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="api", error="invalid_token"')
    assert 'algs="ES256 PS256 RS256 EdDSA"' in challenge
    plain = admin_token(ctx, None)
    answer = client.get("/admin/v1/users", headers={"Authorization": f"Bearer {plain}"})
    assert answer.status_code == 200, answer.text
    answer = client.get("/admin/v1/users")
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="api", DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'
    )


def test_an_operators_bound_token_at_a_path_domain_names_that_domains_url(
    ctx: Context, apps: tuple[Starlette, Starlette]
) -> None:
    add_domain(ctx, "acme")
    client = TestClient(apps[0])
    key = new_key()
    token = admin_token(ctx, key, OPERATOR_SCOPE)
    url = f"{ctx.settings.issuer}/domains/acme/admin/v1/users"
    proof = make_proof(key, "GET", url, access_token=token)
    answer = client.get("/domains/acme/admin/v1/users", headers=dpop(token, proof))
    assert answer.status_code == 200, answer.text
    # A proof for the default domain's URL is not one for acme's.
    other = make_proof(key, "GET", f"{ctx.settings.issuer}/admin/v1/users", access_token=token)
    answer = client.get("/domains/acme/admin/v1/users", headers=dpop(token, other))
    assert answer.status_code == 401
    assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]


def test_with_server_nonces_on_the_admin_api_asks_for_the_domains_nonce(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, secret_key="k" * 43, dpop_nonce=True)
    ctx = open_context(settings, migrate=True)
    ctx.keys.ensure()
    app = build_app(ctx)
    try:
        client = TestClient(app)
        key = new_key()
        token = admin_token(ctx, key)
        url = f"{ctx.settings.issuer}/admin/v1/users"
        first = make_proof(key, "GET", url, access_token=token)
        answer = client.get("/admin/v1/users", headers=dpop(token, first))
        assert answer.status_code == 401
        assert 'error="use_dpop_nonce"' in answer.headers["www-authenticate"]
        nonce = answer.headers["dpop-nonce"]
        proof = make_proof(key, "GET", url, access_token=token, nonce=nonce)
        answer = client.get("/admin/v1/users", headers=dpop(token, proof))
        assert answer.status_code == 200, answer.text
    finally:
        app.state.services.node.audit.close()
        ctx.close()
