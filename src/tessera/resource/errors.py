"""Errors a resource server answers with, rendered per RFC 6750 §3 by
`tessera.shared.oauth_errors` (the renderer the identity domain uses too), RFC 9470 §3's
`insufficient_user_authentication` with its `acr_values` / `max_age` auth-params, and RFC 9449
§7.1's DPoP challenge (`invalid_dpop_proof`, `use_dpop_nonce` with `DPoP-Nonce`).

An error knows whether its resource takes DPoP only once an adapter says so (`for_dpop`):
the adapters mark every error they answer with, so a bare `TokenError` renders the plain
Bearer challenge it always did."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Self

from tessera.shared.oauth_errors import error_body, error_headers

__all__ = [
    "InsufficientRoleError",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "InvalidDPoPProofError",
    "InvalidRequestError",
    "InvalidTokenError",
    "RevocationUnavailableError",
    "TemporarilyUnavailableError",
    "TokenError",
    "UseDPoPNonceError",
]


class TokenError(Exception):
    error = "invalid_token"
    status = 401
    retry_after = 5  # seconds, for the 503 of `RevocationUnavailableError`
    # RFC 9449 §7.1: the proof algorithms of a resource that takes DPoP (empty: Bearer only),
    # whether the DPoP challenge alone carries the error (the request used DPoP, the token is
    # bound, or the resource requires DPoP), and the fresh nonce of a `use_dpop_nonce` (§9).
    dpop_algs: tuple[str, ...] = ()
    dpop_only = False
    dpop_nonce: str | None = None

    def __init__(self, description: str = "", *, scope: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.scope = scope

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """Further auth-params of the challenge (none but for RFC 9470's error)."""
        return ()

    @property
    def token_sent(self) -> bool:
        """False for the error of a request without any token: `InvalidTokenError("")`."""
        return self.error != "invalid_token" or self.description != ""

    def for_dpop(self, algs: Sequence[str], *, only: bool = False) -> Self:
        """Answer as a resource that takes DPoP proofs signed with `algs` (RFC 9449 §7.1); with
        `only`, with the DPoP challenge alone."""
        self.dpop_algs = tuple(algs)
        self.dpop_only = self.dpop_only or only
        return self

    def www_authenticate(self, realm: str = "api") -> str:
        """RFC 6750 §3 (and RFC 9449 §7.1): the challenge; no error code when no token was
        sent at all (§3.1)."""
        return self._headers(realm, 401)["WWW-Authenticate"]

    def headers(self, realm: str = "api") -> dict[str, str]:
        """The response headers: the challenge (`Retry-After` for a 503, `DPoP-Nonce` for a
        `use_dpop_nonce`)."""
        return self._headers(realm, self.status)

    def _headers(self, realm: str, status: int) -> dict[str, str]:
        return error_headers(
            self.error if self.token_sent else None,
            status,
            realm=realm,
            bearer=True,
            description=self.description,
            scope=self.scope or "",
            retry_after=self.retry_after,
            params=self.params,
            dpop_algs=self.dpop_algs,
            dpop_only=self.dpop_only,
            dpop_nonce=self.dpop_nonce,
        )

    def body(self) -> dict[str, str]:
        return error_body(self.error, self.description)


class InvalidTokenError(TokenError):
    """401: missing, malformed, expired, revoked, or not for this audience."""


class InsufficientScopeError(TokenError):
    """403: a valid token without the scope this request needs."""

    error = "insufficient_scope"
    status = 403


class InsufficientRoleError(InsufficientScopeError):
    """403 `insufficient_scope` (RFC 6750 §3.1: the request needs higher privileges than the
    token gives): a valid token with the scope, without any of the application roles
    (RFC 9068 §2.2.3.1) the request needs. The description names them; no `scope=`, since no
    other scope would help."""

    def __init__(self, roles: Iterable[str], description: str = "") -> None:
        self.roles = tuple(roles)
        if not description:
            names = ", ".join(self.roles)
            many = len(self.roles) > 1
            description = f"needs one of the roles {names}" if many else f"needs the role {names}"
        super().__init__(description)


class InvalidRequestError(TokenError):
    """400: a malformed Authorization header, a token in the query string."""

    error = "invalid_request"
    status = 400


class TemporarilyUnavailableError(TokenError):
    """503 with Retry-After (RFC 9110 §15.6.4, §10.2.3): the resource server cannot check the
    request right now (its revocation state, its DPoP replay cache); nothing is wrong with the
    credentials, so no challenge is sent."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str = "", *, retry_after: int = 5) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class RevocationUnavailableError(TemporarilyUnavailableError):
    """503: the resource server cannot tell right now whether the token was revoked (its
    revocation feed is stale and it has no fallback).

    Not 401 `invalid_token` (RFC 6750 §3.1): nothing is wrong with the token, and a 401 would
    send every client to refresh its tokens at an identity domain that is already unreachable.
    503 with Retry-After (RFC 9110 §15.6.4, §10.2.3) says "try the same request again later".
    """


class InsufficientUserAuthenticationError(TokenError):
    """401 (RFC 9470 §3): a valid token whose user sign-in is too weak or too old for this
    request. The challenge names what would do: `acr_values` (space-separated, in order of
    preference) and/or `max_age` (seconds since the sign-in, `auth_time`)."""

    error = "insufficient_user_authentication"
    status = 401

    def __init__(
        self,
        description: str = "",
        *,
        acr_values: Iterable[str] = (),
        max_age: int | None = None,
    ) -> None:
        super().__init__(description or "a stronger or more recent sign-in is required")
        self.acr_values = tuple(acr_values)
        self.max_age = max_age

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The §3 auth-params; `max_age` quoted as in the RFC's own example (Figure 3)."""
        parts = []
        if self.acr_values:
            parts.append(("acr_values", " ".join(self.acr_values)))
        if self.max_age is not None:
            parts.append(("max_age", str(int(self.max_age))))
        return tuple(parts)

    def body(self) -> dict[str, str]:
        return {**super().body(), **dict(self.params)}  # the challenge's parameters too


class InvalidDPoPProofError(TokenError):
    """401 (RFC 9449 §7.1): the DPoP proof is missing or fails a check of §4.3."""

    error = "invalid_dpop_proof"
    dpop_only = True


class UseDPoPNonceError(TokenError):
    """401 (RFC 9449 §9): the proof lacks the resource's current nonce, sent in `DPoP-Nonce`;
    the client retries with a proof carrying it."""

    error = "use_dpop_nonce"
    dpop_only = True

    def __init__(self, description: str, *, nonce: str) -> None:
        super().__init__(description)
        self.dpop_nonce = nonce
