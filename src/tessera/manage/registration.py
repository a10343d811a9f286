"""Dynamic client registration (RFC 7591 §3) and management (RFC 7592 §2) as app changes.

The request is read by `tessera.oauth.registration`; the app is made and changed by the same
rules as `tessera admin apps` (`tessera.manage.apps`). Registered apps are never first-party
and never resource servers. Every function raises the protocol's errors (`OAuthError`):
`invalid_token` (401) for a missing, unknown, expired, revoked or used-up token,
`invalid_client_metadata` / `invalid_redirect_uri` (400) for bad metadata.

Order of a registration: the initial access token is looked up (no use counted), the metadata
are checked in full, then one use is counted atomically (`store.registration_tokens.use`: a
token with uses left has exactly one winner among concurrent requests), then the app is
written. A request refused for its metadata burns no use. The token's `allowed_scopes` bound
the app's scopes (none listed: any scope an app may register, never the admin API's). What can
still fail after the use is counted is only the database itself (a taken `client_name` is not
a failure: the app gets the name with a random suffix instead, so that registration never
reveals other apps' names).

The registration access token (RFC 7592 §1.1) is 256 bits of randomness stored as a keyed hash
(`Client.registration_token_hash`). It is rotated on every read and update (§3 allows it; the
response must carry a token, and a stored hash cannot be shown again): the previous one stops
working at once. A client that loses such a response has lost the management of its
registration (an administrator can still edit or delete the app); two concurrent reads with the
same token both succeed and only the later one's new token works. An update (§2.2) keeps the
app within the scopes it has (those its initial access token allowed, or an administrator
gave): it may narrow them, never widen them; the app keeps no link to its token, which
housekeeping deletes once it expires or is revoked.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from tessera.domain.hashing import keyed_hash, new_id, new_token, verify_keyed_hash
from tessera.domain.model import Client
from tessera.manage.app_metadata import (
    METADATA_FIELDS,
    SECRET_METHODS,
    checked_details,
    details_of,
    metadata_for_new_app,
)
from tessera.manage.apps import SELF_REGISTERED_GRANT_TYPES, create_app, delete_app, update_app
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_name
from tessera.manage.registration_tokens import find_usable
from tessera.oauth.client_jwks import allows_insecure_jwks_uri
from tessera.oauth.errors import InvalidToken
from tessera.oauth.metadata import ENDPOINT_PATHS
from tessera.oauth.registration import (
    ClientMetadata,
    InvalidClientMetadata,
    client_information,
    default_client_name,
    metadata_error,
    parse_metadata,
)
from tessera.store.protocols import Store

__all__ = [
    "Registry",
    "delete_registration",
    "read_registration",
    "register",
    "replace_registration",
]

_T = TypeVar("_T")
# A name with its collision suffix " (xxxxxxxx)" stays within checked_name's 200 characters.
_NAME_ROOM = 200 - 11


@dataclass(frozen=True, slots=True)
class Registry:
    """One identity domain's registration: its store, secret pepper and issuer."""

    store: Store
    secret_pepper: bytes
    issuer: str
    domain_id: str

    @property
    def allow_insecure(self) -> bool:
        """http loopback `jwks_uri`s (and the like) only for an http loopback issuer."""
        return allows_insecure_jwks_uri(self.issuer)

    def client_uri(self, client_id: str) -> str:
        """RFC 7592 §1.1: the client configuration endpoint of the app."""
        return f"{self.issuer}{ENDPOINT_PATHS['registration_endpoint']}/{client_id}"

    def parse(
        self,
        body: bytes | None,
        scope_ceiling: Collection[str] | None,
        admin_grants: tuple[str, ...] = (),
    ) -> ClientMetadata:
        """`admin_grants`: grant types an administrator gave the app (RFC 8693 token
        exchange), which its own metadata may name but never adds."""
        return parse_metadata(
            body,
            resources=self.store.resources.list(),
            issuer=self.issuer,
            domain_id=self.domain_id,
            grant_types=SELF_REGISTERED_GRANT_TYPES + admin_grants,
            scope_ceiling=scope_ceiling,
        )

    def response(
        self, client: Client, registration_token: str, secret: str | None = None
    ) -> dict[str, Any]:
        return client_information(
            client,
            registration_access_token=registration_token,
            registration_client_uri=self.client_uri(client.client_id),
            details=details_of(client),
            client_secret=secret,
        )


def _refused_token() -> InvalidToken:
    return InvalidToken("the token is unknown, expired, revoked or used up")


def _precheck(registry: Registry, meta: ClientMetadata, name: str) -> None:
    """What `create_app` would refuse beyond `parse_metadata`'s checks, before a use of the
    initial access token is counted."""
    fields = meta.fields
    try:
        checked_name(name, "client_name")
        metadata_for_new_app(
            public=meta.public,
            redirect_uris=tuple(fields["redirect_uris"]),
            allow_insecure_jwks_uri=registry.allow_insecure,
            **{k: fields[k] for k in METADATA_FIELDS},
        )
        checked_details(fields["details"], allow_insecure=registry.allow_insecure)
    except InvalidInput as exc:
        raise metadata_error(str(exc)) from None


def _named(write: Callable[[str], _T], name: str) -> _T:
    """`write(name)`, or with a random suffix when another app has the name (cut to leave the
    suffix room within the name's limit); `invalid_client_metadata` if names keep colliding."""
    try:
        return write(name)
    except Conflicting:
        pass
    for _ in range(3):
        try:
            return write(f"{name[:_NAME_ROOM]} ({new_id(nbytes=4)})")
        except Conflicting:
            continue
    raise InvalidClientMetadata("choose another client_name")


def register(
    registry: Registry, initial_token: str, body: bytes | None, now: datetime, actor: Actor
) -> dict[str, Any]:
    """RFC 7591 §3.1-§3.2: register an app; the client information response (§3.2.1).
    `body` None: the request was not JSON."""
    store, pepper = registry.store, registry.secret_pepper
    token_hash = keyed_hash(pepper, initial_token)
    found = find_usable(store, token_hash, now)
    if found is None:
        raise _refused_token()
    # RFC 7591 §3: the token bounds the scopes; none listed: any scope an app may register.
    meta = registry.parse(body, found.allowed_scopes or None)
    name = meta.name or default_client_name()
    _precheck(registry, meta, name)
    if store.registration_tokens.use(token_hash, now) is None:  # used up meanwhile
        raise _refused_token()
    actor = replace(actor, name=f"registration-token:{found.id}")
    management_token = new_token(32)

    def write(chosen: str) -> tuple[Client, str | None]:
        return create_app(
            store,
            pepper,
            name=chosen,
            now=now,
            actor=actor,
            public=meta.public,
            registration_token_hash=keyed_hash(pepper, management_token),
            allow_insecure_jwks_uri=registry.allow_insecure,
            **meta.fields,
        )

    try:
        client, secret = _named(write, name)
    except InvalidInput as exc:  # checked above: only if the rules changed meanwhile
        raise metadata_error(str(exc)) from None
    actor.audit("registration.created", client_id=client.client_id, token_id=found.id)
    return registry.response(client, management_token, secret)


def _authenticated(registry: Registry, client_id: str, token: str) -> Client:
    """RFC 7592 §2: the registered app whose registration access token this is; 401
    `invalid_token` for any other (an unknown app too, §2.1)."""
    client = registry.store.clients.get(client_id)
    if (
        client is None
        or client.registration_token_hash is None
        or not verify_keyed_hash(registry.secret_pepper, token, client.registration_token_hash)
    ):
        raise _refused_token()
    return client


def _client_actor(actor: Actor, client_id: str) -> Actor:
    return replace(actor, name=f"client:{client_id}")


def read_registration(
    registry: Registry, client_id: str, token: str, actor: Actor
) -> dict[str, Any]:
    """RFC 7592 §2.1: the app's client information, with a new registration access token."""
    client = _authenticated(registry, client_id, token)
    management_token = new_token(32)
    new_hash = keyed_hash(registry.secret_pepper, management_token)
    # Only the token changes, and only if it is still the one presented: a read never writes
    # back a stale copy of the app over an administrator's change, and of two reads with one
    # token only one gets the next token.
    old_hash = client.registration_token_hash or ""
    if not registry.store.clients.swap_registration_token(client_id, old_hash, new_hash):
        raise _refused_token()
    client = replace(client, registration_token_hash=new_hash, version=client.version + 1)
    _client_actor(actor, client_id).audit("registration.read", client_id=client_id)
    return registry.response(client, management_token)


def _check_replacement(
    registry: Registry, client: Client, meta: ClientMetadata, now: datetime
) -> None:
    """RFC 7592 §2.2: the same client_id, the current secret if one is sent; and what an
    update cannot do here: change the kind of credential the app authenticates with."""
    if meta.client_id != client.client_id:
        raise InvalidClientMetadata("client_id must be sent, and be this client's (RFC 7592 §2.2)")
    if meta.client_secret is not None and not any(
        verify_keyed_hash(registry.secret_pepper, meta.client_secret, s.hash)
        for s in client.secret_hashes
        if s.expires_at is None or s.expires_at > now
    ):
        raise InvalidClientMetadata("client_secret is not this client's secret (RFC 7592 §2.2)")
    before, after = client.auth_method, meta.fields["token_endpoint_auth_method"]
    if _credential(before) != _credential(after):
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method cannot change from {before} to {after}: the client "
            "would need other credentials; register a new client"
        )


def _credential(method: str) -> str:
    """What an app authenticates with under `method`: nothing, keys, or a (kind of) secret."""
    if method in SECRET_METHODS:
        return "sealed secret" if method == "client_secret_jwt" else "secret"
    return method


def replace_registration(
    registry: Registry,
    client_id: str,
    token: str,
    body: bytes | None,
    now: datetime,
    actor: Actor,
) -> dict[str, Any]:
    """RFC 7592 §2.2: replace the app's metadata with the request's (what is left out goes
    back to its default); the new client information, with a new registration access token."""
    client = _authenticated(registry, client_id, token)
    # Never wider than the app's scopes, which registration kept within its token's; the
    # grant types an administrator gave it stay, whether the app names them or not.
    kept = tuple(g for g in client.grant_types if g not in SELF_REGISTERED_GRANT_TYPES)
    meta = registry.parse(body, client.allowed_scopes, kept)
    grants = tuple(dict.fromkeys((*meta.fields.get("grant_types", ()), *kept)))
    _check_replacement(registry, client, meta, now)
    management_token = new_token(32)
    actor = _client_actor(actor, client_id)

    def write(chosen: str) -> Client:
        return update_app(
            registry.store,
            client_id,
            actor=actor,
            name=chosen,
            registration_token_hash=keyed_hash(registry.secret_pepper, management_token),
            allow_insecure_jwks_uri=registry.allow_insecure,
            **{**meta.fields, "grant_types": list(grants)},
        )

    try:
        updated = _named(write, meta.name or client.name)
    except InvalidInput as exc:
        raise metadata_error(str(exc)) from None
    except NotFoundError:  # deleted meanwhile
        raise _refused_token() from None
    actor.audit("registration.updated", client_id=client_id)
    return registry.response(updated, management_token)


def delete_registration(
    registry: Registry, client_id: str, token: str, now: datetime, actor: Actor
) -> None:
    """RFC 7592 §2.3: delete the app and revoke every token issued to it."""
    _authenticated(registry, client_id, token)
    actor = _client_actor(actor, client_id)
    try:
        delete_app(registry.store, client_id, now, actor)
    except NotFoundError:  # deleted meanwhile
        raise _refused_token() from None
    actor.audit("registration.deleted", client_id=client_id)
