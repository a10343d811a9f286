"""Starlette adapter: an `AuthenticationBackend`, so `@requires("scope")` works.

app.add_middleware(AuthenticationMiddleware, backend=BearerBackend(validator),
                   on_error=bearer_error_response)

@requires("orders:write", acr=ACR_MFA, max_age=600)   # RFC 9470 step-up per route
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

from tessera.resource.errors import (
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    TokenError,
)
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.resource.validator import AccessToken, TokenValidator
from tessera.shared.bearer import MalformedAuthorization, parse_bearer

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


async def token_from_connection(
    conn: HTTPConnection, validator: TokenValidator
) -> AccessToken | None:
    """The validated token of a request; None when no Authorization header was sent."""
    if "access_token" in conn.query_params:
        raise InvalidRequestError("send the access token in the Authorization header")
    try:
        raw = parse_bearer(conn.headers.getlist("authorization"))
    except MalformedAuthorization as exc:
        raise InvalidRequestError(str(exc)) from None
    if raw is None:
        return None
    # A cached validation costs microseconds; only a miss may need the network (JWKS).
    return validator.cached(raw) or await run_in_threadpool(validator.validate, raw)


class BearerBackend(AuthenticationBackend):
    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
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
) -> Callable[[_Endpoint], _Endpoint]:
    """Like Starlette's `requires`, with RFC 6750 responses (§3.1); `acr` (any one of these
    levels, or a higher known one) and `max_age` (seconds since the user signed in) add an
    RFC 9470 requirement, checked after the scopes: 401 `insufficient_user_authentication`."""
    needed = [scopes] if isinstance(scopes, str) else list(scopes)
    level = requirement(acr, max_age)  # a bad value fails here, at import time

    def decorator(endpoint: _Endpoint) -> _Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            user = request.user if "user" in request.scope else None
            if not isinstance(user, TokenUser):
                return _render(InvalidTokenError(""))
            if not set(needed) <= set(request.auth.scopes):
                return _render(
                    InsufficientScopeError(
                        "the access token lacks a required scope", scope=" ".join(needed)
                    )
                )
            try:
                user.require_authentication(level)
            except TokenError as exc:
                return _render(exc)
            return await endpoint(request)

        return wrapper

    return decorator


def _render(error: TokenError) -> Response:
    return JSONResponse(
        error.body(),
        status_code=error.status,
        headers=error.headers(),
    )
