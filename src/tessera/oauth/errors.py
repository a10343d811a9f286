"""Protocol errors: RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, OIDC Core §3.1.2.6.

Each error carries its `error` code, HTTP status and a public description. One renderer
(`tessera.shared.oauth_errors`, used by `tessera.web`) turns them into the JSON body, the error
redirect or `WWW-Authenticate`. Internal detail goes in `debug`: the audit log records it
(`audit_reason`), no answer ever carries it.
"""

from __future__ import annotations

from collections.abc import Collection

from tessera.shared.oauth_errors import error_body

__all__ = [
    "AccessDenied",
    "AuthorizationPending",
    "ConsentRequired",
    "DeviceAccessDenied",
    "ExpiredToken",
    "InsufficientScope",
    "InteractionRequired",
    "InvalidClient",
    "InvalidClientAssertion",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "MissingToken",
    "NotAResourceServer",
    "OAuthError",
    "RequestNotSupported",
    "RequestUriNotSupported",
    "SlowDown",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnmetAuthenticationRequirements",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
    "UseDPoPNonce",
    "refuse_repeated",
]


class OAuthError(Exception):
    error = "server_error"
    status = 400
    # RFC 9449: a fresh server nonce for the `DPoP-Nonce` header (§8, §9), and, at a protected
    # resource, whether the DPoP challenge alone carries the error (§7.1, §7.2: the request
    # used DPoP, or its token is DPoP-bound).
    dpop_nonce: str | None = None
    dpop_only: bool = False
    # The app that authenticated before the refusal, for the audit log (never the client's
    # claim of an identity that failed to authenticate).
    client_id: str | None = None

    def __init__(self, description: str = "", *, debug: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description  # public: what the client sees
        self.debug = debug  # internal: for the audit log and server logs, never a client

    @property
    def audit_reason(self) -> str:
        """What the audit log records: the internal detail when there is one."""
        return self.debug or self.description

    def body(self) -> dict[str, str]:
        """RFC 6749 §5.2: the public error body (never the debug text)."""
        return error_body(self.error, self.description)


class InvalidRequest(OAuthError):
    error = "invalid_request"


def refuse_repeated(names: Collection[str]) -> None:
    """RFC 6749 §3.1, §3.2: a request parameter MUST NOT be included more than once."""
    if names:
        raise InvalidRequest(f"repeated parameter: {sorted(names)[0]}")


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: 401 with `WWW-Authenticate` when the client tried to authenticate."""

    error = "invalid_client"
    status = 401


class InvalidClientAssertion(InvalidClient):
    """A client assertion (RFC 7523 §2.2) that does not authenticate the app: 401 without the
    Basic challenge, a scheme the client did not use (RFC 6749 §5.2 ties the challenge to the
    client's own scheme). Clients such as openid-client read the error from the body then."""


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class NotAResourceServer(UnauthorizedClient):
    """An authenticated app that is not registered as a resource server asked for what only
    resource servers may read (the revocation feed): 403."""

    status = 403


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    """OIDC Core §3.1.2.6: `prompt=none`, but the user must do something (a second factor)."""

    error = "interaction_required"


class UnmetAuthenticationRequirements(OAuthError):
    """OpenID Connect Core 1.0 errata / EAP ACR Values §5: the requested authentication
    context cannot be reached for this user."""

    error = "unmet_authentication_requirements"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


class RequestNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: the `request` parameter (a request object) is not supported."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: `request_uri` is not supported (and never fetched)."""

    error = "request_uri_not_supported"


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class TooManyRequests(TemporarilyUnavailable):
    """RFC 6585 §4: 429 with `Retry-After` (`retry_after` seconds), for an endpoint whose RFC
    names no error for a client that asks too often (RFC 8628 §3.1)."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many device authorization requests; retry in {retry_after} s")
        self.retry_after = retry_after


class InvalidToken(OAuthError):
    """RFC 6750 §3.1."""

    error = "invalid_token"
    status = 401


class MissingToken(InvalidToken):
    """RFC 6750 §3.1: the request carried no token; the challenge names no error code."""

    def __init__(self) -> None:
        super().__init__("")


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: 403 naming the scope needed."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, description: str = "", scope: str = "", *, debug: str | None = None) -> None:
        super().__init__(description, debug=debug)
        self.scope = scope


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5 (token endpoint, 400) and §7.1 (a protected resource, 401): the DPoP proof
    is missing where one is required, or fails a check of §4.3."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str = "", *, status: int = 400) -> None:
        super().__init__(description)
        self.status = status


class UseDPoPNonce(InvalidDPoPProof):
    """RFC 9449 §8 (400 at the token endpoint) and §9 (401 at a resource): the proof lacks
    the server's current nonce; the answer carries a fresh one in `DPoP-Nonce`."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str, *, status: int = 400) -> None:
        super().__init__(description, status=status)
        self.dpop_nonce = nonce


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the user has not decided yet; poll again after the interval."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: polling too fast; the interval is raised by 5 seconds."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: the device code expired; the device starts again."""

    error = "expired_token"


class DeviceAccessDenied(AccessDenied):
    """RFC 8628 §3.5: the user denied the request; a token error, so 400 (RFC 6749 §5.2)."""

    status = 400
