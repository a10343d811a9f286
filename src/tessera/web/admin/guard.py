"""Who may call a domain's admin API (docs/domains.md, docs/security.md).

Two kinds of bearer token get in (RFC 6750; RFC 9068 access tokens):

- the domain's own administrators': the domain's issuer, its admin audience
  (`admin_audience(issuer)`), the admin scope;
- operators': a token of the DEFAULT domain (its issuer, its admin audience) with the operator
  scope, accepted by every domain's admin API; what an operator changes is audited in that
  domain with the actor `operator:<sub>`.

Anything else is refused: a token of domain A is another issuer's token at domain B (401
`invalid_token`). Each domain's validator checks signatures against that domain's own key ring
and revocations against its own revocation state; it is built on first use and kept on the
domain's `Services`, so it lives and goes with them in the node's bounded cache.

DPoP (RFC 9449): a DPoP-bound admin token comes as `Authorization: DPoP` with a proof of its key
for this request (`tessera.resource.dpop`); the proof's `htu` is the URL under the domain's
issuer (configured, never taken from forwarding headers), and its `jti` is used once in the
store's use-once table, which every node shares.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from starlette.requests import HTTPConnection

from tessera.domain.admin import (
    ADMIN_SCOPE,
    OPERATOR_SCOPE,
    SCIM_SCOPE,
    admin_audience,
    admin_scope,
    operator_scope,
    scim_scope,
)
from tessera.resource.dpop import DPoPPolicy
from tessera.resource.errors import (
    InsufficientScopeError,
    InvalidTokenError,
    TemporarilyUnavailableError,
)
from tessera.resource.starlette import token_from_connection
from tessera.resource.validator import AccessToken, TokenValidator
from tessera.shared.authorization import parse_access_authorization
from tessera.shared.bearer import MAX_TOKEN_LENGTH, MalformedAuthorization
from tessera.shared.dpop import DEFAULT_ALGS
from tessera.store.protocols import StoreUnavailable
from tessera.web.services import SCOPE_KEY, Services

__all__ = ["Caller", "admin_validator", "authenticate", "domain_services", "require_operator"]

# Few administrators per domain: a small cache of validated tokens is plenty.
_TOKEN_CACHE_SIZE = 256
# Where the request's checked caller is kept in the ASGI scope.
_CALLER_KEY = "tessera.admin_caller"


class _LocalJwks:
    """The validator's key source, read from the domain's own key ring instead of over HTTP."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def get(self, kid: str) -> ECKey | RSAKey | None:
        for key in self._svc.ctx.keys.public_keys():
            if key.get("kid") == kid:
                return ECKey.import_key(key) if key["kty"] == "EC" else RSAKey.import_key(key)
        return None


class _LocalRevocation:
    """The domain's own revocation state (the events its admins and users caused)."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        self._svc.revocations.sync()
        return self._svc.revocations.revoked(claims)


class _StoreProofReplay:
    """RFC 9449 §11.1 for the admin API: proof `jti`s in the store's use-once table, shared by
    every node (the memory of one node would let a proof be replayed at another)."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def use_once(self, key: str, expires_at: float) -> bool:
        try:
            return self._svc.ctx.store.nonces.use_once(
                key, datetime.fromtimestamp(expires_at, UTC), self._svc.ctx.clock()
            )
        except StoreUnavailable:
            raise TemporarilyUnavailableError("cannot check the DPoP proof right now") from None


def admin_validator(svc: Services) -> TokenValidator:
    """The validator of the domain's admin tokens, built once per `Services` (two requests
    racing to build it both get a correct one; the last is kept)."""
    found = svc.admin_validator
    if found is None:
        issuer = svc.ctx.settings.issuer
        found = TokenValidator(
            issuer,
            admin_audience(issuer),
            jwks=_LocalJwks(svc),  # type: ignore[arg-type]
            revocation=_LocalRevocation(svc),
            cache_size=_TOKEN_CACHE_SIZE,
            # The domain's server nonces when TESSERA_DPOP_NONCE is on (RFC 9449 §9).
            dpop=DPoPPolicy(replay=_StoreProofReplay(svc), nonces=svc.token_endpoint.dpop.nonces),
        )
        svc.admin_validator = found
    return found


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller let in: the token, and whether it came in as an operator."""

    token: AccessToken
    # A default-domain token with the operator scope (in the default domain: one without the
    # admin scope); its changes are audited as `operator:<sub>`.
    operator: bool
    # The token carries the operator scope (whatever let it in).
    holds_operator_scope: bool

    @property
    def actor(self) -> str:
        sub = self.token.subject
        return f"operator:{sub}" if self.operator else sub


def _has(token: AccessToken, short: str, canonical: str) -> bool:
    """The scope in the claim's usual short form (`scope_claim` drops the admin audience) or in
    its canonical Oracle form `<audience><scope>`."""
    return short in token.scopes or canonical in token.scopes


def _claimed_issuer(connection: HTTPConnection) -> str | None:
    """The `iss` a Bearer or DPoP token claims, unverified: only to choose the validator that
    then checks everything, `iss` included."""
    try:
        credentials = parse_access_authorization(connection.headers.getlist("authorization"))
    except MalformedAuthorization:
        return None  # `token_from_connection` answers it
    raw = credentials.token if credentials is not None else None
    if raw is None or len(raw) > MAX_TOKEN_LENGTH or raw.count(".") != 2:
        return None
    payload = raw.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def domain_services(connection: HTTPConnection, default: Services) -> Services:
    """The request's domain services, put on the scope by the domain router; else `default`."""
    found: Services | None = connection.scope.get(SCOPE_KEY)
    return found if found is not None else default


async def authenticate(
    connection: HTTPConnection, default: Services, *, provisioning: bool = False
) -> Caller:
    """The caller of the request's domain admin API; raises a `TokenError` (RFC 6750 §3).
    Checked once per request: `AuthenticateFirst`'s check is the route's. `provisioning` (the
    SCIM endpoints) also lets in an app's client-credentials token with the SCIM scope."""
    found: Caller | None = connection.scope.get(_CALLER_KEY)
    if found is None:
        found = await _authenticate(connection, default, provisioning)
        connection.scope[_CALLER_KEY] = found
    return found


def request_url(connection: HTTPConnection, svc: Services) -> str:
    """The URL the client used (RFC 9449 §4.3 check 9): the path as sent, under the request's
    domain issuer (a path domain's prefix is part of both)."""
    raw = connection.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else connection.scope["path"]
    path = path.partition("?")[0]
    if svc.prefix and path.startswith(svc.prefix):
        path = path[len(svc.prefix) :]
    return svc.ctx.settings.issuer + path


async def _authenticate(
    connection: HTTPConnection, default: Services, provisioning: bool = False
) -> Caller:
    svc = domain_services(connection, default)
    base_issuer = default.ctx.settings.issuer
    by_operator = not svc.domain.is_default and _claimed_issuer(connection) == base_issuer
    from_default = by_operator or svc.domain.is_default
    validator = admin_validator(default if from_default else svc)
    token = await token_from_connection(connection, validator, url=request_url(connection, svc))
    dpop = validator.dpop.algorithms
    if token is None:
        # No credentials: no error code (RFC 6750 §3.1).
        raise InvalidTokenError("").for_dpop(dpop)
    bound = token.is_dpop_bound
    operator = from_default and _has(token, OPERATOR_SCOPE, operator_scope(base_issuer))
    if by_operator:
        if not operator:
            raise InvalidTokenError("the token is from another identity domain").for_dpop(
                dpop, only=bound
            )
        return Caller(token, operator=True, holds_operator_scope=True)
    if _has(token, ADMIN_SCOPE, admin_scope(svc.ctx.settings.issuer)):
        return Caller(token, operator=False, holds_operator_scope=operator)
    if operator:  # in the default domain, an operator token without the admin scope
        return Caller(token, operator=True, holds_operator_scope=True)
    if (
        provisioning
        and not token.is_user  # users provision with the admin scope, never this one
        and _has(token, SCIM_SCOPE, scim_scope(svc.ctx.settings.issuer))
    ):
        return Caller(token, operator=False, holds_operator_scope=False)
    raise InsufficientScopeError(
        "the access token lacks a required scope", scope=ADMIN_SCOPE
    ).for_dpop(dpop, only=bound)


def require_operator(caller: Caller) -> None:
    """Managing domains needs the operator scope (RFC 6750 §3.1 `insufficient_scope`)."""
    if not caller.holds_operator_scope:
        raise InsufficientScopeError(
            "managing identity domains needs the operator scope", scope=OPERATOR_SCOPE
        ).for_dpop(DEFAULT_ALGS, only=caller.token.is_dpop_bound)
