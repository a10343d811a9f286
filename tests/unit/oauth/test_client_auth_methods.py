"""The app's `token_endpoint_auth_method` decides how it authenticates (RFC 7591 §2): JWT client
assertions (RFC 7523 §2.2, OIDC Core §9) for `private_key_jwt` and `client_secret_jwt` apps,
with their `jti` used once; a secret is never a fallback for a JWT app; an assertion never
authenticates a secret app. docs/client-authentication.md."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from tessera.domain.client_secrets import seal_secret
from tessera.domain.hashing import keyed_hash, new_token
from tessera.domain.model import Client, SecretHash
from tessera.oauth import errors
from tessera.oauth.client_auth import ASSERTION_TYPE, AssertionCheck, authenticate_client
from tessera.oauth.client_jwks import JwksFetcher
from tessera.oauth.metadata import assertion_audiences
from tests.unit.oauth.conftest import ISSUER, PEPPER, Core

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
PUBLIC_JWKS = KeySet([ECKey.import_key(KEY.as_dict(private=False))]).as_dict()


@pytest.fixture
def check(core: Core) -> AssertionCheck:
    fetcher = JwksFetcher()
    return AssertionCheck(ISSUER, assertion_audiences(ISSUER), core.store.nonces.use_once, fetcher)


def key_app(core: Core, **kw: Any) -> Client:
    client, _ = core.add_app(
        token_endpoint_auth_method="private_key_jwt",
        jwks=orjson.dumps(PUBLIC_JWKS).decode(),
        **kw,
    )
    return client


def secret_jwt_app(core: Core) -> tuple[Client, str]:
    secret = new_token(32)
    client, _ = core.add_app(secret=secret, token_endpoint_auth_method="client_secret_jwt")
    sealed = SecretHash(
        keyed_hash(PEPPER, secret), core.clock(), sealed=seal_secret(PEPPER, client.client_id, secret)
    )
    client = replace(client, secret_hashes=(sealed,))
    core.store.clients.update(client)
    return client, secret


def assertion(
    client_id: str, key: Any = KEY, alg: str = "ES256", **changes: Any
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": new_token(16),
        **changes,
    }
    header = {"alg": alg, **({"kid": "k1"} if alg != "HS256" else {})}
    return jwt.encode(
        header, {k: v for k, v in claims.items() if v is not None}, key, algorithms=[alg]
    )


def form_of(value: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value, **extra}


def authenticate(
    core: Core,
    check: AssertionCheck | None,
    form: Mapping[str, str],
    authorization: str | None = None,
) -> Client:
    # The real clock: joserfc-signed assertions carry the wall-clock time.
    now = datetime.now(UTC)
    return authenticate_client(
        authorization, form, core.store.clients.get, PEPPER, now, assertions=check
    )


def test_a_private_key_jwt_app_authenticates_with_its_key(
    core: Core, check: AssertionCheck
) -> None:
    app = key_app(core)
    assert authenticate(core, check, form_of(assertion(app.client_id))) == app
    # client_id beside the assertion is optional (RFC 7521 §4.2) and must then be the same.
    with_id = form_of(assertion(app.client_id), client_id=app.client_id)
    assert authenticate(core, check, with_id) == app


def test_a_replayed_assertion_is_refused(core: Core, check: AssertionCheck) -> None:
    app = key_app(core)
    once = assertion(app.client_id)
    authenticate(core, check, form_of(once))
    with pytest.raises(errors.InvalidClient) as refused:
        authenticate(core, check, form_of(once))
    assert "replay" in (refused.value.audit_reason or "")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "https://elsewhere.example"}, "audience"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": int(time.time()) + 3600}, "ahead"),
        ({"exp": None}, "exp"),
        ({"jti": None}, "jti"),
        ({"sub": "someone-else"}, "sub"),
    ],
)
def test_assertions_breaking_a_rule_are_refused(
    core: Core, check: AssertionCheck, changes: dict[str, Any], reason: str
) -> None:
    app = key_app(core)
    with pytest.raises(errors.InvalidClient) as refused:
        authenticate(core, check, form_of(assertion(app.client_id, **changes)))
    assert refused.value.error == "invalid_client"
    assert reason in (refused.value.audit_reason or "")


def test_another_key_is_refused(core: Core, check: AssertionCheck) -> None:
    app = key_app(core)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, check, form_of(assertion(app.client_id, key=OTHER_KEY)))


def test_a_private_key_jwt_app_cannot_fall_back_to_a_secret(
    core: Core, check: AssertionCheck
) -> None:
    secret = new_token(32)
    app = key_app(core, secret=secret)  # a secret left from an earlier method
    for form in (
        {"client_id": app.client_id, "client_secret": secret},
        {"client_id": app.client_id},
    ):
        with pytest.raises(errors.InvalidClient) as refused:
            authenticate(core, check, form)
        # The same public words as for an unknown app; the reason is for the audit log.
        assert refused.value.description == "unknown client or bad credentials"
        assert "private_key_jwt" in (refused.value.audit_reason or "")


def test_an_assertion_does_not_authenticate_a_secret_app(
    core: Core, check: AssertionCheck
) -> None:
    app, secret = core.add_app()
    assert secret is not None
    hmac_key = OctKey.import_key(secret.encode())
    forged = assertion(app.client_id, key=hmac_key, alg="HS256")
    with pytest.raises(errors.InvalidClient) as refused:
        authenticate(core, check, form_of(forged))
    assert "client_secret_basic" in (refused.value.audit_reason or "")


def test_client_secret_jwt_uses_the_sealed_secret(core: Core, check: AssertionCheck) -> None:
    app, secret = secret_jwt_app(core)
    good = assertion(app.client_id, key=OctKey.import_key(secret.encode()), alg="HS256")
    assert authenticate(core, check, form_of(good)) == app
    wrong = assertion(app.client_id, key=OctKey.import_key(b"x" * 43), alg="HS256")
    with pytest.raises(errors.InvalidClient):
        authenticate(core, check, form_of(wrong))
    # Its public-key cousin cannot stand in: an asymmetric alg for a secret method.
    with pytest.raises(errors.InvalidClient):
        authenticate(core, check, form_of(assertion(app.client_id)))


def test_one_method_only(core: Core, check: AssertionCheck) -> None:
    app = key_app(core)
    form = form_of(assertion(app.client_id), client_secret="x")
    with pytest.raises(errors.InvalidRequest):
        authenticate(core, check, form)
    with pytest.raises(errors.InvalidRequest):
        authenticate(core, check, form_of(assertion(app.client_id)), "Basic eDp5")


def test_a_wrong_assertion_type_or_none_is_refused(core: Core, check: AssertionCheck) -> None:
    app = key_app(core)
    value = assertion(app.client_id)
    bad_type = {"client_assertion_type": "urn:other", "client_assertion": value}
    with pytest.raises(errors.InvalidClient):
        authenticate(core, check, bad_type)
    with pytest.raises(errors.InvalidRequest):
        authenticate(core, check, {"client_assertion_type": ASSERTION_TYPE})


def test_where_assertions_cannot_be_recorded_they_are_refused(core: Core) -> None:
    app = key_app(core)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, form_of(assertion(app.client_id)))


def test_a_fapi2_app_signs_with_ps256_es256_or_eddsa_only(
    core: Core, check: AssertionCheck
) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = KeySet([RSAKey.import_key(rsa.as_dict(private=False))]).as_dict()
    app, _ = core.add_app(
        token_endpoint_auth_method="private_key_jwt", jwks=orjson.dumps(jwks).decode(),
        profile="fapi2",
    )  # fmt: skip
    assert authenticate(core, check, form_of(assertion(app.client_id, key=rsa, alg="PS256")))
    with pytest.raises(errors.InvalidClient) as refused:
        authenticate(core, check, form_of(assertion(app.client_id, key=rsa, alg="RS256")))
    assert "RS256" in (refused.value.audit_reason or "")
    # FAPI 2.0: `aud` is the issuer as a string; an endpoint URL or an array is refused.
    for aud in (f"{ISSUER}/oauth2/v1/token", [ISSUER]):
        wrong_aud = assertion(app.client_id, key=rsa, alg="PS256", aud=aud)
        with pytest.raises(errors.InvalidClient) as refused:
            authenticate(core, check, form_of(wrong_aud))
        assert "aud must be the issuer" in (refused.value.audit_reason or "")
