"""The FAPI 2.0 Security Profile (final, 2025) as rules of an app with `profile: "fapi2"`.

(Shared module: the lead wrote the endpoint rules below; the app-registration rules are added
beside them. Extend it, do not overwrite it.)

What the endpoints enforce for such an app:
- §5.3.2.2: authorization requests are pushed (PAR, RFC 9126); `Client.requires_par`.
- §5.3.2.2: authorization codes live at most 60 seconds (`code_lifetime`).
- §5.3.2.1 / §5.4.1: client authentication with `private_key_jwt` signed with PS256,
  ES256 or EdDSA only (`FAPI2_SIGNING_ALGS`, checked by `tessera.oauth.client_auth`).
- §5.3.2.1: sender-constrained access tokens: the app is `dpop_bound_access_tokens`, so the
  token endpoint refuses its requests without a DPoP proof (RFC 9449 §5.2).

What registration checks (`profile_violations`, used by `tessera.manage.apps`):
- §5.3.2.1: confidential clients only; they authenticate with `private_key_jwt` (mTLS
  client authentication is not offered).
- §5.3.2.2: pushed authorization requests required; no `http` redirect URI (the profile allows
  loopback only for native apps, and a FAPI 2.0 app is confidential: loopback http only when
  the issuer itself is an http loopback development issuer).
- §5.4.1: PS256, ES256 or EdDSA for client assertions and ID tokens; never RS256
  (RSASSA-PKCS1-v1_5) nor `none`.
- §5.3.2.1: sender-constrained access tokens: DPoP (RFC 9449) for every token request
  (`dpop_bound_access_tokens` on; it is on by default for such an app, and off is refused).
"""

from __future__ import annotations

from collections.abc import Iterable

from tessera.domain.model import Client
from tessera.domain.redirect_uris import is_loopback_uri

__all__ = [
    "FAPI2",
    "FAPI2_AUTH_METHOD",
    "FAPI2_CODE_TTL",
    "FAPI2_ID_TOKEN_ALG",
    "FAPI2_SIGNING_ALGS",
    "PROFILES",
    "client_violations",
    "code_lifetime",
    "profile_violations",
]

FAPI2 = "fapi2"
FAPI2_SIGNING_ALGS = frozenset({"PS256", "ES256", "EdDSA"})  # §5.4.1
FAPI2_CODE_TTL = 60  # §5.3.2.2: "shall issue authorization codes with a maximum lifetime
# of 60 seconds"


def code_lifetime(client: Client, configured: int) -> int:
    """The lifetime of the app's authorization codes: the domain's, at most 60 s under FAPI 2.0."""
    return min(configured, FAPI2_CODE_TTL) if client.profile == FAPI2 else configured


PROFILES = (FAPI2,)
FAPI2_AUTH_METHOD = "private_key_jwt"  # §5.3.2.1 (mTLS client authentication is not offered)
# The §5.4.1 algorithm Tessera signs ID tokens with (its key ring holds ES256 and RS256 keys).
FAPI2_ID_TOKEN_ALG = "ES256"


def _redirect_violations(uris: Iterable[str], allow_insecure_loopback: bool) -> list[str]:
    """§5.3.2.2: https redirect URIs; loopback http only for an http loopback issuer."""
    return [
        f"the redirect URI {uri!r} is not https: FAPI 2.0 allows https redirect URIs only "
        "(Security Profile §5.3.2.2)"
        for uri in uris
        if uri.partition(":")[0].lower() != "https"
        and not (allow_insecure_loopback and is_loopback_uri(uri))
    ]


def profile_violations(
    *,
    public: bool,
    auth_method: str,
    signing_alg: str | None,
    id_token_alg: str,
    requires_par: bool,
    redirect_uris: Iterable[str],
    allow_insecure_loopback: bool = False,
    dpop_bound: bool = True,
) -> list[str]:
    """What keeps an app's registration from following the FAPI 2.0 Security Profile, one
    sentence each saying what to do (empty: nothing). `signing_alg` is the app's
    `token_endpoint_auth_signing_alg` (None: any of `FAPI2_SIGNING_ALGS`, as the token endpoint
    enforces); `allow_insecure_loopback`: the issuer is an http loopback (development) issuer."""
    found: list[str] = []
    if public:  # §5.3.2.1
        found.append(
            "FAPI 2.0 has no public apps (Security Profile §5.3.2.1): register a confidential app"
        )
    if auth_method != FAPI2_AUTH_METHOD:  # §5.3.2.1
        found.append(
            f"FAPI 2.0 apps authenticate with private_key_jwt, not {auth_method} (Security "
            "Profile §5.3.2.1): set token_endpoint_auth_method to private_key_jwt and give "
            "jwks or jwks_uri"
        )
    if signing_alg is not None and signing_alg not in FAPI2_SIGNING_ALGS:  # §5.4.1
        found.append(
            f"FAPI 2.0 allows {', '.join(sorted(FAPI2_SIGNING_ALGS))} for client assertions, "
            f"not {signing_alg} (Security Profile §5.4.1): set token_endpoint_auth_signing_alg "
            "to one of them, or leave it out"
        )
    if id_token_alg not in FAPI2_SIGNING_ALGS:  # §5.4.1: no RSASSA-PKCS1-v1_5
        found.append(
            f"FAPI 2.0 forbids {id_token_alg} ID tokens (Security Profile §5.4.1): set "
            f"id_token_signed_response_alg to {FAPI2_ID_TOKEN_ALG}"
        )
    if not requires_par:  # §5.3.2.2
        found.append(
            "FAPI 2.0 requires pushed authorization requests (Security Profile §5.3.2.2): "
            "leave require_pushed_authorization_requests on"
        )
    if not dpop_bound:  # §5.3.2.1: sender-constrained access tokens (DPoP, no mTLS)
        found.append(
            "FAPI 2.0 requires sender-constrained access tokens (Security Profile §5.3.2.1): "
            "leave dpop_bound_access_tokens on"
        )
    return found + _redirect_violations(redirect_uris, allow_insecure_loopback)


def client_violations(client: Client, *, allow_insecure_loopback: bool = False) -> list[str]:
    """`profile_violations` of a registered app; empty for an app without the profile."""
    if client.profile != FAPI2:
        return []
    return profile_violations(
        public=client.is_public,
        auth_method=client.auth_method,
        signing_alg=client.token_endpoint_auth_signing_alg,
        id_token_alg=client.id_token_signed_response_alg,
        requires_par=client.require_pushed_authorization_requests,
        redirect_uris=client.redirect_uris,
        allow_insecure_loopback=allow_insecure_loopback,
        dpop_bound=client.dpop_bound_access_tokens,
    )
