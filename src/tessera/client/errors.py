"""The errors of the client library; each carries a message for people and, when there is
one, a `hint` saying what to do next (the CLI prints both, never a traceback).
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ClientError",
    "DeviceLoginError",
    "DiscoveryError",
    "KeyFileError",
    "KeyFileWarning",
    "LoginError",
    "LoginExpired",
    "LoginTimeout",
    "NotLoggedIn",
    "OAuthResponseError",
    "PushedRequestError",
    "StepUpRequired",
]


class ClientError(Exception):
    """Base class: something the user can act on."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DiscoveryError(ClientError):
    """The issuer's metadata cannot be fetched, or does not name the same issuer."""


class OAuthResponseError(ClientError):
    """An OAuth error answer of the token or revocation endpoint (RFC 6749 §5.2)."""

    def __init__(
        self, error: str, description: str | None = None, *, status: int | None = None
    ) -> None:
        text = f"{error}: {description}" if description else error
        super().__init__(f"the identity domain refused the request ({text})")
        self.error = error
        self.description = description
        self.status = status


class LoginError(ClientError):
    """The browser login failed: an error answer, or a `state` / `iss` mismatch."""


class PushedRequestError(LoginError):
    """The pushed authorization request endpoint refused the request (RFC 9126 §2.3)."""

    def __init__(
        self,
        error: str,
        description: str | None = None,
        *,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        text = f"{error}: {description}" if description else error
        super().__init__(
            f"the identity domain refused the pushed authorization request ({text})", hint=hint
        )
        self.error = error
        self.description = description
        self.status = status


class DeviceLoginError(LoginError):
    """The device login ended without tokens (RFC 8628 §3.5): `error` is `access_denied` (the
    user denied it) or `expired_token` (nobody approved it in time)."""

    def __init__(self, error: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.error = error


class LoginTimeout(LoginError):
    """No answer came back from the browser in time."""


class NotLoggedIn(ClientError):
    """There are no cached tokens for this profile."""


class LoginExpired(ClientError):
    """The cached login can no longer be refreshed (expired, revoked, or logged out)."""


class CacheError(ClientError):
    """The token cache cannot be read (a corrupted file) or written."""


class KeyFileError(ClientError):
    """The app's private key file cannot be read, or holds no key usable for
    `private_key_jwt`."""


class KeyFileWarning(UserWarning):
    """The app's private key file is readable by other users of this machine."""


class StepUpRequired(ClientError):
    """An API asked for a stronger or more recent sign-in (RFC 9470 §3) and this session cannot
    sign in interactively; `acr_values` / `max_age` are what the API asked for."""

    def __init__(
        self,
        message: str,
        *,
        acr_values: tuple[str, ...] = (),
        max_age: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.acr_values = acr_values
        self.max_age = max_age
