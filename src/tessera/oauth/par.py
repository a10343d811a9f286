"""Pushed authorization requests (RFC 9126).

`push` is the PAR endpoint (§2): the authenticated client's parameters get the authorization
endpoint's validation and are stored under a one-time `request_uri` (§2.2), redeemable once, by
the same client, for `ttl` seconds (60 by default, §2.2 and §4).

`resolve` is the authorization endpoint's first step (§4): a `request_uri` of ours is taken
from the store and its parameters replace the query's. The sign-in that follows spans several
requests (login form, second factor, consent), so the pushed request then travels as a
*ticket*: its parameters sealed (AES-256-GCM) with a key of the domain, bound to the client
and with an expiry of its own (the interaction may outlast the `request_uri`). A ticket that
does not open exactly is refused like a used `request_uri`: nothing of a pushed request can be
changed or read in the browser, which is what PAR is for (§1).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import Client, PushedRequest, Resource
from tessera.oauth import errors
from tessera.oauth.authorize import (
    AuthorizationError,
    UnsafeToRedirect,
    validate_authorization_request,
)
from tessera.oauth.fapi2 import FAPI2
from tessera.shared.sealing import Sealer, derive_key
from tessera.store.protocols import PushedRequestStore

__all__ = [
    "REQUEST_URI_PREFIX",
    "TICKET_PARAM",
    "TICKET_TTL",
    "Pushed",
    "Resolved",
    "Ticket",
    "open_ticket",
    "push",
    "request_uri_hash",
    "resolve",
    "resumed",
    "seal_ticket",
]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"  # §2.2
PUSHED_TTL = 60  # seconds (§2.2: "a short-lived" URI; TESSERA_PAR_TTL)
# How long the sign-in of a pushed request may take once its request_uri is used (a user may
# have to find a second factor or enrol one); the session and consent are checked again anyway.
TICKET_TTL = 30 * 60
# The parameter that carries the ticket (with `client_id`) through the sign-in forms.
TICKET_PARAM = "pushed_request"
_MAX_URI = 200
_MAX_TICKET = 64 * 1024
_MAC_CONTEXT = b"tessera pushed request ticket\x00"  # the associated data of the seal
_SEAL_PURPOSE = b"tessera pushed request tickets"
_EXPIRED_HINT = "Go back to the application and start again."


@dataclass(frozen=True, slots=True)
class Pushed:
    """The PAR endpoint's answer (§2.2)."""

    request_uri: str
    expires_in: int

    def body(self) -> dict[str, str | int]:
        return {"request_uri": self.request_uri, "expires_in": self.expires_in}


# --- the PAR endpoint (§2) ---------------------------------------------------------------------


def push(
    store: PushedRequestStore,
    client: Client,
    params: Mapping[str, str],
    resources: Sequence[Resource],
    now: datetime,
    ttl: int = PUSHED_TTL,
    proof_jkt: str | None = None,
) -> Pushed:
    """Validate the pushed parameters of the authenticated `client` as the authorization
    endpoint would (§2.1) and store them; raise the `OAuthError` of §2.3 otherwise. The caller
    has refused repeated parameters (RFC 6749 §3.1). `proof_jkt`: the key of the request's
    verified DPoP proof, which binds the code as `dpop_jkt` does (RFC 9449 §10.1)."""
    given = params.get("client_id")
    if given is not None and given != client.client_id:  # §2.1
        raise errors.InvalidRequest("client_id is not the authenticated client")
    if "request_uri" in params:  # §2.1: a pushed request cannot point at another
        raise errors.InvalidRequest("request_uri cannot be pushed")
    if "request" in params:  # request objects (JAR) are not supported
        raise errors.RequestNotSupported("request objects are not supported")
    pairs = {**params, "client_id": client.client_id}
    pairs.pop(TICKET_PARAM, None)  # ours: never part of a request
    if proof_jkt is not None:
        if pairs.get("dpop_jkt", proof_jkt) != proof_jkt:
            # RFC 9449 §10.1: both given and not the same key: MUST reject.
            raise errors.InvalidDPoPProof("dpop_jkt is not the thumbprint of the proof's key")
        pairs["dpop_jkt"] = proof_jkt
    _check_profile(client, pairs)
    try:
        validate_authorization_request(
            pairs,
            set(),
            lambda client_id: client if client_id == client.client_id else None,
            resources,
            pushed=True,
        )
    except UnsafeToRedirect:  # §2.3: the redirect URI is checked at push time
        raise errors.InvalidRequest(
            "redirect_uri is not registered for this app"
            if "redirect_uri" in pairs
            else "redirect_uri is required: the app has several"
        ) from None
    except AuthorizationError as exc:
        raise exc.error from None
    random = new_token(32)
    store.add(
        PushedRequest(
            uri_hash=sha256_b64(random),
            client_id=client.client_id,
            params=tuple(pairs.items()),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return Pushed(REQUEST_URI_PREFIX + random, ttl)


def _check_profile(client: Client, params: Mapping[str, str]) -> None:
    """FAPI 2.0 Security Profile §5.3.2.2: the redirect URI in every pushed request (PKCE S256
    for every such app is the authorization endpoint's rule)."""
    if client.profile == FAPI2 and "redirect_uri" not in params:
        raise errors.InvalidRequest("redirect_uri is required (FAPI 2.0)")


# --- the authorization endpoint (§4) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    """The authorization request to validate, and what carries it on through the sign-in."""

    params: Mapping[str, str]
    duplicated: set[str]
    pushed: bool  # from a pushed request (a used request_uri or a valid ticket)
    carried: dict[str, str]  # what the forms and the redirect after sign-in hold


def request_uri_hash(request_uri: str) -> str | None:
    """The store key of one of our request_uris; None for any other value (§4: a request_uri
    that is not ours is never fetched)."""
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > _MAX_URI:
        return None
    random = request_uri[len(REQUEST_URI_PREFIX) :]
    return sha256_b64(random) if random else None


def resolve(
    params: Mapping[str, str],
    duplicated: set[str],
    take: Callable[[str, str], PushedRequest | None],
    key: Callable[[], bytes],
    now: datetime,
) -> Resolved:
    """The request behind the query: a pushed request's (taken once with `take(uri_hash,
    client_id)`), a ticket's, or the query itself. A request_uri or ticket that does not hold
    raises `UnsafeToRedirect`: no redirect URI of it can be trusted. `key()`: the ticket key
    (derived only when a pushed request is in play)."""
    uri_hash = request_uri_hash(params.get("request_uri", ""))
    if uri_hash is not None:
        client_id = _single_client_id(params, duplicated, "request_uri")
        found = take(uri_hash, client_id)
        if found is None:
            raise _expired()
        inner = dict(found.params)
        ticket = Ticket(client_id, inner, now + timedelta(seconds=TICKET_TTL))
        carried = {"client_id": client_id, TICKET_PARAM: seal_ticket(key(), ticket)}
        return Resolved(inner, set(), True, carried)
    if TICKET_PARAM in params:
        client_id = _single_client_id(params, duplicated, TICKET_PARAM)
        opened = open_ticket(key(), client_id, params[TICKET_PARAM], now)
        if opened is None:
            raise _expired()
        carried = {"client_id": client_id, TICKET_PARAM: params[TICKET_PARAM]}
        return Resolved(opened.params, set(), True, carried)
    return Resolved(params, duplicated, False, dict(params))


def _single_client_id(params: Mapping[str, str], duplicated: set[str], what: str) -> str:
    """§4: the client_id must come with the request_uri (and ours with the ticket)."""
    client_id = params.get("client_id")
    if not client_id or duplicated & {"client_id", what}:
        raise UnsafeToRedirect(
            "Invalid request",
            "The request does not name its application.",
            hint=_EXPIRED_HINT,
        )
    return client_id


def _expired() -> UnsafeToRedirect:
    return UnsafeToRedirect(
        "Sign-in request expired",
        "This sign-in request is not valid any more: it was used already, has expired, or "
        "belongs to another application.",
        hint=_EXPIRED_HINT,
    )


# --- tickets -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    """A pushed request in flight through the sign-in."""

    client_id: str
    params: dict[str, str]
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sealer(key: bytes) -> Sealer:
    return Sealer(derive_key(key, _SEAL_PURPOSE))


def seal_ticket(key: bytes, ticket: Ticket) -> str:
    """The client, expiry and parameters sealed with AES-256-GCM (base64url): the browser can
    neither change nor read them (a `login_hint`, `nonce` or `claims` stays the app's)."""
    document = {
        "c": ticket.client_id,
        "e": int(ticket.expires_at.timestamp()),
        "p": list(ticket.params.items()),
    }
    plain = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return _b64(_sealer(key).seal(plain, _MAC_CONTEXT))


def open_ticket(key: bytes, client_id: str, sealed: str, now: datetime) -> Ticket | None:
    """The ticket when it was sealed with `key` for `client_id` and has not expired."""
    if len(sealed) > _MAX_TICKET or not sealed.isascii():
        return None
    try:
        document = json.loads(_sealer(key).open(_unb64(sealed), _MAC_CONTEXT))
        ticket = Ticket(
            str(document["c"]),
            {str(k): str(v) for k, v in document["p"]},
            datetime.fromtimestamp(int(document["e"]), UTC),
        )
    except (ValueError, TypeError, KeyError):  # SealError is a ValueError
        return None
    if ticket.client_id != client_id or ticket.expires_at <= now:
        return None
    return ticket


def resumed(
    key: bytes,
    carried: Mapping[str, str],
    change: Callable[[Mapping[str, str]], dict[str, str]],
    now: datetime,
) -> dict[str, str]:
    """The carried request with `change` applied to the request it holds (after a sign-in:
    without what asked for it), resealed with the same expiry; a plain request is changed as
    it is. A ticket that does not open is kept as it is, to be refused where it is used."""
    sealed, client_id = carried.get(TICKET_PARAM), carried.get("client_id")
    if sealed is None:
        return change(carried)
    opened = open_ticket(key, client_id or "", sealed, now)
    if opened is None:
        return dict(carried)
    again = replace(opened, params=change(opened.params))
    return {"client_id": opened.client_id, TICKET_PARAM: seal_ticket(key, again)}
