"""Starlette adapter: an `AuthenticationBackend`, so `@requires("scope")` works.

app.add_middleware(AuthenticationMiddleware, backend=BearerBackend(validator),
                   on_error=bearer_error_response)

@requires("orders:write", acr=ACR_MFA, max_age=600)   # RFC 9470 step-up per route
@requires("payments:write", dpop=True)                 # RFC 9449: DPoP-bound tokens only
@requires("orders:write", roles=["Clerk", "Manager"])  # any one of these application roles

DPoP (RFC 9449): a bound token must come as `Authorization: DPoP` with a proof, checked on
every request (`tessera.resource.dpop`); the validator's `dpop` policy says how.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from tessera.resource.dpop import check_proof, read_credentials, request_url, use_proof
from tessera.resource.errors import (
    InsufficientScopeError,
    InvalidTokenError,
    TokenError,
)
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.resource.validator import AccessToken, TokenValidator

__all__ = [
    "BearerBackend",
    "TokenUser",
    "bearer_error_response",
    "requires",
    "token_from_connection",
]


class TokenUser(BaseUser):
    def __init__(self, token: AccessToken, validator: TokenValidator | None = None) -> None:
        self.token = token
        self.validator = validator  # whose clock and leeway judge `max_age`

    def require_authentication(self, needed: AuthRequirement) -> None:
        """RFC 9470 §3: `InsufficientUserAuthenticationError` unless the sign-in meets it."""
        if self.validator is not None:
            self.validator.require_authentication(self.token, needed)
        else:
            needed.check(self.token, time.time(), 30)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.token.user_display_name or self.token.subject

    @property
    def identity(self) -> str:
        return self.token.subject


class _AuthError(AuthenticationError):
    def __init__(self, error: TokenError) -> None:
        super().__init__(error.description)
        self.error = error


# Where `BearerBackend` leaves its validator's DPoP algorithms for `requires`' challenges.
_DPOP_ALGS_KEY = "tessera.dpop_algs"


async def token_from_connection(
    conn: HTTPConnection,
    validator: TokenValidator,
    *,
    require_dpop: bool = False,
    url: str | None = None,
) -> AccessToken | None:
    """The validated token of a request; None when no Authorization header was sent.

    `Authorization: Bearer` (RFC 6750 §2.1) for an unbound token, `DPoP` with a proof for a
    bound one (RFC 9449 §7.1), the proof checked against the request's method and `url`
    (default: `request_url` of the scope and the policy's `public_url`). `require_dpop`
    refuses Bearer tokens. Every `TokenError` raised carries the DPoP challenge."""
    policy = validator.dpop
    only = require_dpop or policy.required
    try:
        credentials = read_credentials(conn.query_params, conn.headers.getlist("authorization"))
        if credentials is None:
            return None
        only = only or credentials.is_dpop
        raw = credentials.token
        # A cached validation costs microseconds; only a miss may need the network (JWKS).
        token = validator.cached(raw)
        if token is None:
            token = await run_in_threadpool(validator.validate_token, raw)
        only = only or token.is_dpop_bound
        if not only:
            return token  # a plain bearer token where bearer tokens do: nothing more to check
        proof = check_proof(
            policy,
            credentials,
            token,
            conn.headers.getlist("dpop"),
            method=conn.scope.get("method", "GET"),
            url=url or request_url(conn.scope, policy.public_url),
            now=validator.clock(),
            required=require_dpop,
        )
        if proof is not None:
            if policy.local_replay:
                use_proof(policy, proof)
            else:  # a shared replay cache is a network round trip
                await run_in_threadpool(use_proof, policy, proof)
        return token
    except TokenError as exc:
        raise exc.for_dpop(policy.algorithms, only=only) from None


class BearerBackend(AuthenticationBackend):
    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        conn.scope[_DPOP_ALGS_KEY] = self.validator.dpop.algorithms
        try:
            token = await token_from_connection(conn, self.validator)
        except TokenError as exc:
            raise _AuthError(exc) from None
        if token is None:
            return None
        return AuthCredentials(sorted(token.scopes)), TokenUser(token, self.validator)


def bearer_error_response(conn: HTTPConnection, exc: Exception) -> Response:
    """`on_error` for `AuthenticationMiddleware`: RFC 6750 status, body and challenge."""
    error = exc.error if isinstance(exc, _AuthError) else InvalidTokenError(str(exc))
    return JSONResponse(
        error.body(),
        status_code=error.status,
        headers=error.headers(),
    )


_Endpoint = Callable[[Request], Awaitable[Response]]


def requires(
    scopes: str | Sequence[str] = (),
    *,
    acr: str | Iterable[str] | None = None,
    max_age: int | None = None,
    dpop: bool = False,
    roles: Iterable[str] = (),
) -> Callable[[_Endpoint], _Endpoint]:
    """Like Starlette's `requires`, with RFC 6750 responses (§3.1); `acr` (any one of these
    levels, or a higher known one) and `max_age` (seconds since the user signed in) add an
    RFC 9470 requirement, checked after the scopes: 401 `insufficient_user_authentication`.
    `dpop` refuses tokens that are not DPoP-bound (RFC 9449 §7.1: 401 `invalid_token` with
    the DPoP challenge alone); a bound token's proof was checked by `BearerBackend`. `roles`:
    any one of these application roles (RFC 9068 §2.2.3.1 `roles`), checked after the scopes:
    403 `insufficient_scope` naming them."""
    needed = [scopes] if isinstance(scopes, str) else list(scopes)
    any_role = tuple(roles)
    level = requirement(acr, max_age)  # a bad value fails here, at import time

    def decorator(endpoint: _Endpoint) -> _Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            user = request.user if "user" in request.scope else None
            if not isinstance(user, TokenUser):
                return _render(request, InvalidTokenError(""), dpop)
            only = dpop or user.token.is_dpop_bound
            if dpop and not user.token.is_dpop_bound:
                error = InvalidTokenError("this resource requires a DPoP-bound access token")
                return _render(request, error, only)
            if not set(needed) <= set(request.auth.scopes):
                return _render(
                    request,
                    InsufficientScopeError(
                        "the access token lacks a required scope", scope=" ".join(needed)
                    ),
                    only,
                )
            try:
                TokenValidator.require_roles(user.token, any_role)
                user.require_authentication(level)
            except TokenError as exc:
                return _render(request, exc, only)
            return await endpoint(request)

        return wrapper

    return decorator


def _render(request: Request, error: TokenError, dpop_only: bool) -> Response:
    algs = request.scope.get(_DPOP_ALGS_KEY)
    if algs:
        error.for_dpop(algs, only=dpop_only)
    return JSONResponse(
        error.body(),
        status_code=error.status,
        headers=error.headers(),
    )
