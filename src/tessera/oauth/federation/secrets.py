"""Our credentials at upstream OpenID providers, sealed at rest (docs/federation.md).

A client secret (`client_secret_basic`, RFC 6749 §2.3.1; `client_secret_post`) or our private
key for `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9: an RSA-2048 key, RFC 7518 §3.3, signing
RS256, which every OpenID provider accepts) is sealed with AES-256-GCM
(`tessera.shared.sealing`) under the domain key derived for `PROVIDER_KEY_PURPOSE`; the
associated data names what it is and the provider's id, so a sealed value copied to another
provider, or a secret put where the key belongs, does not open. The public half of the key is
served as a JWK Set (RFC 7517 §5) for the administrator to register upstream; its `kid` is the
RFC 7638 thumbprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from tessera.domain.model import UpstreamProvider
from tessera.oauth.federation.errors import UpstreamError
from tessera.shared.sealing import Sealer, SealError

__all__ = [
    "CLIENT_KEY_ALG",
    "PROVIDER_KEY_PURPOSE",
    "SECRET_METHODS",
    "Credentials",
    "client_jwks",
    "credentials_for",
    "new_client_key",
    "open_private_key",
    "open_secret",
    "seal_secret",
]

PROVIDER_KEY_PURPOSE = "upstream-providers"
CLIENT_KEY_ALG = "RS256"
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
PRIVATE_KEY_JWT = "private_key_jwt"
_RSA_BITS = 2048
_NOT_SET_UP = "This sign-in provider is not set up correctly. Tell an administrator."


@dataclass(frozen=True, slots=True)
class Credentials:
    """What authenticates us at the upstream token endpoint, opened: the client secret, or
    the private key (PEM) and its `kid`. Never logged (`repr` hides them)."""

    client_secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    key_id: str | None = None


def _associated(what: str, provider_id: str) -> bytes:
    return f"upstream provider {what}\x00{provider_id}".encode()


def seal_secret(key: bytes, provider_id: str, secret: str) -> bytes:
    """The client secret sealed for the provider `provider_id`."""
    return Sealer(key).seal(secret.encode(), _associated("client secret", provider_id))


def open_secret(key: bytes, provider_id: str, sealed: bytes) -> str:
    """The client secret; `SealError` when it was sealed for another provider or key."""
    return Sealer(key).open(sealed, _associated("client secret", provider_id)).decode()


def _seal_private_key(key: bytes, provider_id: str, pem: str) -> bytes:
    return Sealer(key).seal(pem.encode(), _associated("private key", provider_id))


def open_private_key(key: bytes, provider_id: str, sealed: bytes) -> str:
    """Our private key's PEM; `SealError` as for `open_secret`."""
    return Sealer(key).open(sealed, _associated("private key", provider_id)).decode()


def new_client_key(key: bytes, provider_id: str) -> tuple[bytes, str]:
    """A new RSA-2048 key for `private_key_jwt` at the provider: its sealed PEM (PKCS#8) and
    its `kid` (the RFC 7638 thumbprint)."""
    private = RSAKey.generate_key(_RSA_BITS, private=True)
    pem = private.as_pem(private=True).decode("ascii")
    return _seal_private_key(key, provider_id, pem), private.thumbprint()


def _rsa_key(pem: str) -> RSAKey:
    try:
        return RSAKey.import_key(pem)
    except (JoseError, ValueError, TypeError) as exc:
        raise UpstreamError(_NOT_SET_UP, f"our private key cannot be read: {exc}") from None


def client_jwks(key: bytes, provider: UpstreamProvider) -> dict[str, Any]:
    """The public JWK Set of our key at `provider` (RFC 7517 §5; `use` sig, `alg` RS256,
    `kid`), `{"keys": []}` when it has none. `SealError` when the key does not open."""
    if provider.private_key_sealed is None:
        return {"keys": []}
    private = _rsa_key(open_private_key(key, provider.id, provider.private_key_sealed))
    public = private.as_dict(private=False)
    kid = provider.key_id or private.thumbprint()
    return {"keys": [{**public, "kid": kid, "use": "sig", "alg": CLIENT_KEY_ALG}]}


def credentials_for(key: bytes, provider: UpstreamProvider) -> Credentials:
    """Our opened credentials at `provider`, for its `auth_method`. `UpstreamError` when the
    provider lacks them or they do not open (the domain key changed, or a value was copied
    from another provider)."""
    try:
        if provider.auth_method in SECRET_METHODS:
            if provider.secret_sealed is None:
                raise UpstreamError(_NOT_SET_UP, "the provider has no client secret")
            return Credentials(client_secret=open_secret(key, provider.id, provider.secret_sealed))
        if provider.auth_method == PRIVATE_KEY_JWT:
            if provider.private_key_sealed is None:
                raise UpstreamError(_NOT_SET_UP, "the provider has no private key")
            pem = open_private_key(key, provider.id, provider.private_key_sealed)
            return Credentials(
                private_key_pem=pem, key_id=provider.key_id or _rsa_key(pem).thumbprint()
            )
    except SealError:
        raise UpstreamError(
            _NOT_SET_UP, "the provider's sealed credential does not open with this domain's key"
        ) from None
    raise UpstreamError(_NOT_SET_UP, f"unknown client authentication {provider.auth_method!r}")
