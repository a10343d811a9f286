"""Initial access tokens (RFC 7591 §3, §1.2): administrators mint them, automation registers
apps with them at `/oauth2/v1/register` (`tessera.manage.registration`).

A token is 256 bits of randomness, shown once and stored only as a keyed hash (the domain's
secret pepper, as client secrets), usable `max_uses` times (None: without limit) until it
expires (None: until revoked), for apps with scopes among its `allowed_scopes` (none listed:
any scope an app may register, never the admin API's). Minting and revoking are audited
through the caller's `Actor`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from tessera.domain.hashing import keyed_hash, new_id, new_token
from tessera.domain.model import RegistrationToken
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput, NotFoundError, checked_description
from tessera.oauth.errors import OAuthError
from tessera.oauth.registration import registrable_scopes
from tessera.store.protocols import NotFound, Store

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "MAX_EXPIRES_IN",
    "allowed_scopes_of",
    "find_usable",
    "list_tokens",
    "mint_token",
    "revoke_token",
    "token_view",
]

DEFAULT_EXPIRES_IN = 86400  # a day: long enough for a pipeline run, short if it leaks
MAX_EXPIRES_IN = 365 * 86400
_MAX_USES = 1_000_000
_MAX_DESCRIPTION = 200


def _checked(expires_in: int | None, max_uses: int | None, description: str) -> str:
    if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise InvalidInput(
            f"the lifetime must be 1 to {MAX_EXPIRES_IN} seconds (0 or none: until revoked)"
        )
    if max_uses is not None and not 1 <= max_uses <= _MAX_USES:
        raise InvalidInput(f"the number of uses must be 1 to {_MAX_USES} (none: without limit)")
    return checked_description(description, _MAX_DESCRIPTION)


def allowed_scopes_of(store: Store, issuer: str, scopes: Iterable[str]) -> tuple[str, ...]:
    """The registrable canonical scopes (`tessera.oauth.registration.registrable_scopes`)."""
    try:
        return tuple(registrable_scopes(scopes, store.resources.list(), issuer, store.domain_id))
    except OAuthError as exc:
        raise InvalidInput(exc.description or exc.error) from None


def mint_token(
    store: Store,
    secret_pepper: bytes,
    *,
    now: datetime,
    actor: Actor,
    issuer: str,
    expires_in: int | None = DEFAULT_EXPIRES_IN,
    max_uses: int | None = None,
    description: str = "",
    allowed_scopes: Iterable[str] = (),
) -> tuple[RegistrationToken, str]:
    """A new initial access token and its value (shown once). `expires_in` None or 0: it
    works until revoked. `allowed_scopes`: the scopes the apps it registers may have at most
    (resolved to their canonical form; none: any an app may register); `issuer` is the
    domain's, whose admin API scopes are refused."""
    expires_in = expires_in or None
    description = _checked(expires_in, max_uses, description)
    scopes = allowed_scopes_of(store, issuer, allowed_scopes)
    value = new_token(32)
    token = RegistrationToken(
        id=new_id("rt_"),
        token_hash=keyed_hash(secret_pepper, value),
        created_at=now,
        expires_at=None if expires_in is None else now + timedelta(seconds=expires_in),
        max_uses=max_uses,
        created_by=actor.name,
        description=description,
        allowed_scopes=scopes,
    )
    store.registration_tokens.add(token)
    actor.audit(
        "registration_token.created",
        token_id=token.id,
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
        max_uses=max_uses,
        allowed_scopes=list(scopes),
    )
    return token, value


def list_tokens(store: Store) -> list[RegistrationToken]:
    """Every token not yet purged, newest first (expired and revoked ones too, until the
    housekeeping deletes them)."""
    return store.registration_tokens.list()


def revoke_token(store: Store, token_id: str, now: datetime, actor: Actor) -> RegistrationToken:
    """Stop the token from registering more apps (apps it registered stay)."""
    try:
        store.registration_tokens.revoke(token_id, now)
    except NotFound:
        raise NotFoundError(f"no registration token {token_id!r}") from None
    actor.audit("registration_token.revoked", token_id=token_id)
    revoked = store.registration_tokens.get(token_id)
    if revoked is None:  # purged meanwhile
        raise NotFoundError(f"no registration token {token_id!r}")
    return revoked


def find_usable(store: Store, token_hash: str, now: datetime) -> RegistrationToken | None:
    """The usable token with this hash, without counting a use (`store.registration_tokens.use`
    does that, atomically, once the request is known to be valid)."""
    token = store.registration_tokens.find(token_hash)
    return token if token is not None and token.usable(now) else None


def _state(token: RegistrationToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    if token.max_uses is not None and token.uses >= token.max_uses:
        return "used up"
    return "active"


def token_view(token: RegistrationToken, now: datetime, value: str | None = None) -> dict[str, Any]:
    """The token as the CLI's `--json` and the admin API show it; `value` (the token) only
    when it was just minted."""
    view: dict[str, Any] = {"id": token.id}
    if value is not None:
        view["token"] = value
    view.update(
        {
            "description": token.description,
            "created_at": token.created_at.isoformat(),
            "created_by": token.created_by,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "max_uses": token.max_uses,
            "uses": token.uses,
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
            "allowed_scopes": list(token.allowed_scopes),
            "state": _state(token, now),
        }
    )
    return view
