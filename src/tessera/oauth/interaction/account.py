"""Signing in to the user's own account pages through the domain's authorization endpoint, and
the fresh sign-in their sensitive actions need (docs/mfa.md).

The account pages are a first-party public app of the domain (`tessera-account`): a page without
a session sends the browser to the authorization endpoint (RFC 6749 §4.1.1 with PKCE, RFC 7636
S256), so the whole sign-in (password, second factor, enrollment, throttling) is the one every
app gets. The PKCE verifier lives in a short-lived cookie of the account pages; `state` carries
the page to return to under an HMAC (RFC 2104) and a hash of that verifier, so a callback is
accepted only in the browser that started it. The code is consumed (single use) and checked
against the verifier, the app, the redirect URI and the session's user, but no token is minted:
the pages act on the browser session itself, which the code flow has just (re)established.

A sensitive action (password, factors, recovery codes, e-mail address) needs a sign-in at most
`RECENT` old, and a second factor when the user holds one (`may_enroll_now`): otherwise the
browser goes through the authorization endpoint again with `prompt=login` and/or `acr_values`
(OIDC Core §3.1.2.1) and comes back to the page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.domain.hashing import sha256_b64
from tessera.domain.model import DEFAULT_DOMAIN, BrowserSession, FederatedIdentity, User
from tessera.oauth.interaction.requirements import UserFactors, may_enroll_now
from tessera.oauth.pkce import s256
from tessera.shared.acr import ACR_MFA
from tessera.store.protocols import CodeStore, UpstreamProviderStore

__all__ = [
    "ACCOUNT_CLIENT_ID",
    "ACCOUNT_SCOPES",
    "FLOW_TTL",
    "RECENT",
    "Flow",
    "FlowInvalid",
    "StepUp",
    "account_client_id",
    "account_redirect",
    "finish_flow",
    "is_account_app",
    "redeem_account_code",
    "start_flow",
    "step_up_needed",
    "unlink_refused",
]

ACCOUNT_CLIENT_ID = "tessera-account"
ACCOUNT_SCOPES = ("openid", "profile")
RECENT = timedelta(minutes=5)  # how old a sign-in a sensitive action accepts
FLOW_TTL = 900  # seconds a sign-in started by the account pages may take
_MAX_STATE = 1200
_MAX_PATH = 300


def account_client_id(domain_id: str) -> str:
    """The account pages' app in a domain (client ids are unique across domains)."""
    return ACCOUNT_CLIENT_ID if domain_id == DEFAULT_DOMAIN else f"{ACCOUNT_CLIENT_ID}-{domain_id}"


def is_account_app(client_id: str) -> bool:
    return client_id == ACCOUNT_CLIENT_ID or client_id.startswith(ACCOUNT_CLIENT_ID + "-")


def account_redirect(issuer: str) -> str:
    return f"{issuer}/account/callback"


@dataclass(frozen=True, slots=True)
class StepUp:
    """What a sensitive action still needs: a fresh sign-in, and/or a second factor."""

    fresh: bool
    second_factor: bool

    def params(self) -> dict[str, str]:
        """The authorization request's parameters that ask for it (OIDC Core §3.1.2.1)."""
        out: dict[str, str] = {}
        if self.fresh:
            out["prompt"] = "login"
        if self.second_factor:
            out["acr_values"] = ACR_MFA
        return out


def step_up_needed(session: BrowserSession, factors: UserFactors, now: datetime) -> StepUp | None:
    """None when the session may do a sensitive action now. A user with a factor signs in
    with it again (the fresh sign-in asks for it) when the session has not used one."""
    fresh = now - session.auth_time > RECENT
    second = factors.any and (fresh or not may_enroll_now(session.amr, factors))
    if not fresh and not second:
        return None
    return StepUp(fresh=fresh, second_factor=second)


@dataclass(frozen=True, slots=True)
class Flow:
    """A started sign-in: the cookie to set (the verifier), the `state` and the challenge."""

    cookie: str
    state: str
    code_challenge: str


class FlowInvalid(ValueError):
    """The callback does not belong to a sign-in this browser started (or it expired)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FlowInvalid("malformed state") from None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"tessera account sign-in\x00" + payload, hashlib.sha256).digest()


def start_flow(key: bytes, return_to: str, now: datetime) -> Flow:
    """A new PKCE verifier (kept in the cookie) and the signed `state` that names the page to
    come back to and binds the callback to that verifier."""
    verifier = secrets.token_urlsafe(48)
    payload = json.dumps(
        {
            "r": return_to[:_MAX_PATH],
            "e": int(now.timestamp()) + FLOW_TTL,
            "v": sha256_b64(verifier)[:22],
        },
        separators=(",", ":"),
    ).encode()
    state = f"{_b64(payload)}.{_b64(_mac(key, payload))}"
    return Flow(cookie=verifier, state=state, code_challenge=s256(verifier))


def finish_flow(key: bytes, state: str, cookie: str | None, now: datetime) -> str:
    """The page to return to; `FlowInvalid` unless `state` is ours, unexpired and was issued
    with the verifier in this browser's cookie."""
    if not state or len(state) > _MAX_STATE or state.count(".") != 1 or not state.isascii():
        raise FlowInvalid("malformed state")
    payload_text, mac_text = state.split(".")
    payload = _unb64(payload_text)
    if not hmac.compare_digest(_mac(key, payload), _unb64(mac_text)):
        raise FlowInvalid("the state is not ours")
    try:
        claims = json.loads(payload)
        return_to, expires, bound = str(claims["r"]), int(claims["e"]), str(claims["v"])
    except (ValueError, KeyError, TypeError):
        raise FlowInvalid("malformed state") from None
    if expires <= now.timestamp():
        raise FlowInvalid("the sign-in took too long")
    if not cookie or not hmac.compare_digest(sha256_b64(cookie)[:22], bound):
        raise FlowInvalid("the sign-in was started in another browser or tab")
    return return_to


def redeem_account_code(
    codes: CodeStore,
    code: str,
    *,
    client_id: str,
    redirect_uri: str,
    verifier: str,
    user_id: str,
    now: datetime,
) -> bool:
    """Consume the account pages' code (RFC 6749 §4.1.3 checks, RFC 7636 §4.6) without minting
    tokens: True when it was this app's, for this redirect URI, this verifier and this user."""
    if not code or len(code) > 128:
        return False
    found, won = codes.consume(sha256_b64(code), now)
    return (
        found is not None
        and won
        and found.client_id == client_id
        and found.redirect_uri == redirect_uri
        and found.user_id == user_id
        and found.code_challenge is not None
        and hmac.compare_digest(found.code_challenge, s256(verifier))
    )


def unlink_refused(
    user: User,
    links: Sequence[FederatedIdentity],
    provider_id: str,
    subject: str,
    *,
    passkeys: int,
    enabled: Collection[str],
) -> str | None:
    """Why the user may not remove the link (`provider_id`, `subject`) from their account, or
    None when they may (docs/federation.md). `links` are the user's own; the link must be one
    of them. Removing it must leave a way to sign in: a password, another link to one of the
    `enabled` providers, or a passkey (which signs in alone, W3C WebAuthn §7.2)."""
    if not any(i.provider_id == provider_id and i.subject == subject for i in links):
        return "This provider is not linked to your account."
    others = [
        i
        for i in links
        if i.provider_id in enabled and (i.provider_id, i.subject) != (provider_id, subject)
    ]
    if way_left(user, links=len(others), passkeys=passkeys):
        return None
    return (
        "This provider is your only way to sign in: set a password first (on your password "
        "page), or link another provider."
    )


def enabled_providers(providers: UpstreamProviderStore) -> set[str]:
    """The ids of the providers one can sign in through now (a link counts only to those)."""
    return {p.id for p in providers.list() if p.enabled}


def way_left(user: User, *, links: int, passkeys: int) -> bool:
    """Whether an account keeping `links` links to enabled providers and `passkeys` passkeys
    still has a way to sign in: one of them, or its password (docs/federation.md)."""
    return bool(user.password_hash) or links > 0 or passkeys > 0
