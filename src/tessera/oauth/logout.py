"""RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0): which requests end the
browser session at once, which ask the user first, and where to send the browser afterwards.

§2: without a valid `id_token_hint` the OP cannot tell that the request comes from the app the
user signed in to (any page can link to the endpoint), so it asks the user to confirm; a
`client_id` sent with a hint must be the hint's audience. §3: the browser is sent only to a
`post_logout_redirect_uri` registered, exactly, by that client. `decide_logout` says whether to
end the session now, to ask first, or to refuse a confirmation that fails its CSRF check
(docs/security.md rules 4 and 9).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.domain.model import Client, User
from tessera.oauth.authorize import redirect_with
from tessera.oauth.interaction.csrf import csrf_valid
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.tokens import InvalidOwnToken, TokenIssuer

__all__ = [
    "ConfirmLogout",
    "InvalidLogout",
    "LogoutRefused",
    "LogoutRequest",
    "SignOut",
    "decide_logout",
    "hint_verifier",
    "validate_logout",
]


class InvalidLogout(Exception):
    """A sign-out request to refuse; the message is for the user."""


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    client_id: str | None
    location: str | None  # where to send the browser after sign-out (validated), with `state`
    hinted: bool  # a valid `id_token_hint` came with it: end the session without asking

    def carried(self, params: Mapping[str, str]) -> dict[str, str]:
        """The parameters the confirmation form carries to its POST."""
        names = ("client_id", "post_logout_redirect_uri", "state")
        values = {n: params[n] for n in names if params.get(n)}
        if self.client_id:
            values["client_id"] = self.client_id
        return values


def validate_logout(
    params: Mapping[str, str],
    verify_hint: Callable[[str], Mapping[str, Any]],
    lookup: Callable[[str], Client | None],
) -> LogoutRequest:
    """`verify_hint` returns an ID token's claims (signed by us, expired or not) or raises
    `InvalidLogout`; `lookup` finds a client. Raises `InvalidLogout`."""
    client_id = params.get("client_id") or None
    hint = params.get("id_token_hint")
    if hint:
        audience = verify_hint(hint).get("aud")
        hinted_client = audience if isinstance(audience, str) else None
        if hinted_client is None or (client_id is not None and client_id != hinted_client):
            raise InvalidLogout("The sign-out request names another application than its hint.")
        client_id = hinted_client
    target = params.get("post_logout_redirect_uri")
    location = None
    if target is not None:
        client = lookup(client_id) if client_id else None
        if client is None or target not in client.post_logout_redirect_uris:
            raise InvalidLogout(
                "The application asked to send you to an address it has not registered."
            )
        location = redirect_with(target, {"state": params.get("state")})
    return LogoutRequest(client_id, location, hinted=bool(hint))


def hint_verifier(issuer: TokenIssuer, now: datetime) -> Callable[[str], Mapping[str, Any]]:
    """`verify_hint` for `validate_logout`: an ID token signed by us, expired or not (§2)."""

    def verify(hint: str) -> Mapping[str, Any]:
        try:
            return issuer.verify_own(hint, int(now.timestamp()), typ=None, check_exp=False)
        except InvalidOwnToken:
            raise InvalidLogout("The sign-out request carries an invalid id_token_hint.") from None

    return verify


@dataclass(frozen=True, slots=True)
class ConfirmLogout:
    """Ask the signed-in user to confirm, on a form carrying a CSRF token."""

    current: SignedInUser


@dataclass(frozen=True, slots=True)
class LogoutRefused:
    """A confirmation whose CSRF token does not match: not sent from our page."""

    user: User


@dataclass(frozen=True, slots=True)
class SignOut:
    """End the session, then go to `location` (or show the signed-out page)."""

    location: str | None


def decide_logout(
    req: LogoutRequest, current: SignedInUser | None, presented: str | None, csrf_key: bytes
) -> ConfirmLogout | LogoutRefused | SignOut:
    """`presented`: the CSRF token of a POSTed confirmation (None otherwise). Without a hint,
    any page can link here, so a signed-in user confirms first (§2)."""
    if current is not None and not req.hinted:
        if presented is None:
            return ConfirmLogout(current)
        if not csrf_valid(csrf_key, "logout", current.session.csrf_secret, presented):
            return LogoutRefused(current.user)
    return SignOut(req.location)
