"""Minting and checking our own tokens.

Access tokens are JWTs per RFC 9068 (`typ: at+jwt`, claims of §2.2) with Oracle's extra claims
(`sub_type`, `user_id`, `user_displayname`, `client_id`). ID tokens follow OIDC Core §2 and
§3.1.3.6 (`at_hash`). `verify_own` checks a token we signed: the algorithm allow-list, our
issuer, the expiry, and the expected `typ`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from tessera.oauth.keyring import KeyRing
from tessera.shared.acr import acr_for
from tessera.shared.jwt_parts import at_hash

__all__ = ["AccessTokenSpec", "InvalidOwnToken", "TokenIssuer", "at_hash", "authentication_claims"]

_ALGS = ["ES256", "RS256"]  # never `none`, never HMAC
_MAX_TOKEN = 16384  # bounds the work an attacker can ask of the JOSE parser


class InvalidOwnToken(ValueError):
    """The token is not one of ours or no longer valid; the message is for logs only."""


@dataclass(frozen=True, slots=True)
class AccessTokenSpec:
    subject: str
    sub_type: str  # "user" or "client"
    client_id: str
    audience: str
    scope: str
    lifetime: int
    alg: str = "ES256"
    grant_id: str | None = None
    auth_time: int | None = None
    user_display_name: str | None = None
    amr: tuple[str, ...] = ()  # a user's sign-in methods (none for an app's own token)
    jkt: str | None = None  # RFC 9449 §6.1: the DPoP key the token is bound to
    act: Mapping[str, Any] | None = None  # RFC 8693 §4.1: who acts for the subject
    # RFC 9068 §2.2.3.1: the caller's application roles on the audience's resource, and the
    # user's groups when the resource asks for them (None: no `groups` claim).
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None


def authentication_claims(amr: tuple[str, ...]) -> dict[str, Any]:
    """`acr` and `amr` of a sign-in (OIDC Core §2, RFC 9068 §2.2.1, RFC 8176; docs/mfa.md)."""
    return {"acr": acr_for(amr), "amr": list(amr)} if amr else {}


class TokenIssuer:
    def __init__(self, issuer: str, keys: KeyRing) -> None:
        self.issuer = issuer
        self.keys = keys
        # Verified access tokens by hash: introspecting the same token again skips the
        # signature check (revocation is still checked by the caller every time).
        self._verified: dict[bytes, dict[str, Any]] = {}

    def access_token(self, spec: AccessTokenSpec, now: int) -> tuple[str, dict[str, Any]]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": spec.subject,
            "aud": spec.audience,
            "exp": now + spec.lifetime,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "client_id": spec.client_id,
            "scope": spec.scope,
            "sub_type": spec.sub_type,
        }
        if spec.grant_id is not None:
            claims["sid"] = spec.grant_id
        if spec.auth_time is not None:
            claims["auth_time"] = spec.auth_time
        claims.update(authentication_claims(spec.amr))
        if spec.jkt is not None:
            claims["cnf"] = {"jkt": spec.jkt}  # RFC 9449 §6.1, RFC 7800 §3.1
        if spec.act is not None:
            claims["act"] = dict(spec.act)  # RFC 8693 §4.1
        if spec.roles:
            claims["roles"] = list(spec.roles)
        if spec.groups is not None:
            claims["groups"] = list(spec.groups)
        if spec.sub_type == "user":
            claims["user_id"] = spec.subject
            if spec.user_display_name is not None:
                claims["user_displayname"] = spec.user_display_name
        return self.keys.sign(spec.alg, claims, typ="at+jwt"), claims

    def id_token(
        self,
        *,
        subject: str,
        client_id: str,
        now: int,
        lifetime: int,
        auth_time: int,
        nonce: str | None,
        access_token: str | None,
        extra: Mapping[str, Any],
        sid: str | None = None,
        alg: str = "RS256",
    ) -> str:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "azp": client_id,
            "exp": now + lifetime,
            "iat": now,
            "auth_time": auth_time,
            **extra,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token, alg)
        if sid is not None:
            claims["sid"] = sid
        return self.keys.sign(alg, claims, typ="JWT")

    def verify_own(
        self, token: str, now: int, *, typ: str | None = "at+jwt", check_exp: bool = True
    ) -> dict[str, Any]:
        """Verify a token we signed; raise `InvalidOwnToken`."""
        cacheable = typ == "at+jwt" and check_exp
        if cacheable:
            key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            hit = self._verified.get(key)
            if hit is not None and hit["exp"] > now:
                return hit
        claims = self._verify(token, now, typ=typ, check_exp=check_exp)
        if cacheable:
            if len(self._verified) >= 10000:
                self._verified.clear()
            self._verified[key] = claims
        return claims

    def _verify(self, token: str, now: int, *, typ: str | None, check_exp: bool) -> dict[str, Any]:
        if not token or len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise InvalidOwnToken("not a compact JWS")
        try:
            decoded = jwt.decode(token, self.keys.verification_keys(), algorithms=_ALGS)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidOwnToken(f"signature or format: {type(exc).__name__}") from None
        header, claims = decoded.header, dict(decoded.claims)
        if header.get("crit"):
            raise InvalidOwnToken("unknown critical header")
        if typ is not None and str(header.get("typ", "")).lower() not in (
            typ,
            f"application/{typ}",
        ):
            raise InvalidOwnToken("wrong typ")
        if claims.get("iss") != self.issuer:
            raise InvalidOwnToken("wrong issuer")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidOwnToken("no exp")
        if check_exp and exp <= now:
            raise InvalidOwnToken("expired")
        return claims
