"""Our credentials at upstream providers (docs/security.md rule 67): sealed and bound to the
provider, opened only for its auth method; our private_key_jwt key's public JWK Set."""

from __future__ import annotations

from dataclasses import replace

import pytest
from joserfc.jwk import RSAKey

from tessera.oauth.federation.errors import UpstreamError
from tessera.oauth.federation.secrets import (
    Credentials,
    client_jwks,
    credentials_for,
    new_client_key,
    open_private_key,
    open_secret,
    seal_secret,
)
from tessera.shared.sealing import SealError
from tests.unit.oauth.federation.conftest import make_provider

KEY = b"k" * 32
PROVIDER = make_provider()


def test_a_secret_opens_only_for_its_provider_and_key() -> None:
    sealed = seal_secret(KEY, PROVIDER.id, "s3cret")
    assert open_secret(KEY, PROVIDER.id, sealed) == "s3cret"
    with pytest.raises(SealError):
        open_secret(KEY, "up_other", sealed)
    with pytest.raises(SealError):
        open_secret(b"j" * 32, PROVIDER.id, sealed)
    with pytest.raises(SealError):  # a secret is no private key, and the reverse
        open_private_key(KEY, PROVIDER.id, sealed)


def test_credentials_for_a_secret_method() -> None:
    provider = replace(PROVIDER, secret_sealed=seal_secret(KEY, PROVIDER.id, "s3cret"))
    assert credentials_for(KEY, provider) == Credentials(client_secret="s3cret")
    assert "s3cret" not in repr(credentials_for(KEY, provider))
    post = replace(provider, auth_method="client_secret_post")
    assert credentials_for(KEY, post).client_secret == "s3cret"
    with pytest.raises(UpstreamError, match="no client secret") as caught:
        credentials_for(KEY, PROVIDER)
    assert caught.value.reason.startswith("This sign-in provider is not set up correctly")
    moved = replace(provider, id="up_other")  # a sealed value copied to another provider
    with pytest.raises(UpstreamError, match="does not open"):
        credentials_for(KEY, moved)


def test_a_client_key_serves_its_public_jwks_and_signs() -> None:
    sealed, kid = new_client_key(KEY, PROVIDER.id)
    provider = replace(
        PROVIDER, auth_method="private_key_jwt", private_key_sealed=sealed, key_id=kid
    )
    jwks = client_jwks(KEY, provider)
    [jwk] = jwks["keys"]
    assert (jwk["kty"], jwk["kid"], jwk["use"], jwk["alg"]) == ("RSA", kid, "sig", "RS256")
    assert "d" not in jwk and "p" not in jwk
    public = RSAKey.import_key(jwk)
    assert public.raw_value.key_size == 2048
    assert public.thumbprint() == kid  # RFC 7638
    credentials = credentials_for(KEY, provider)
    assert credentials.key_id == kid and credentials.client_secret is None
    assert credentials.private_key_pem is not None
    assert credentials.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert client_jwks(KEY, PROVIDER) == {"keys": []}
    with pytest.raises(UpstreamError, match="no private key"):
        credentials_for(KEY, replace(provider, private_key_sealed=None))


def test_an_unknown_auth_method_has_no_credentials() -> None:
    with pytest.raises(UpstreamError, match="unknown client authentication"):
        credentials_for(KEY, replace(PROVIDER, auth_method="none"))
