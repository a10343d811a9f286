"""Trusted applications (OAuth clients): register, edit, rotate the secret, delete.

Every change is audited through the caller's `Actor` and bumps the app's `version`. Nodes
cache apps for about two seconds (`tessera.caching`), so an edit reaches every node within that
time. Removing a scope or a grant type refuses new authorizations and token requests for it;
access tokens and grants already issued keep working until they expire (revoke the app's tokens
to cut them off at once).

An app may ask for a stricter second-factor policy than its domain's (`mfa_policy`: "off",
"optional", "required"; None: the domain's); the stricter of the two applies (docs/mfa.md).

A confidential app's secret is 256 bits of randomness, shown once and stored only as a keyed
hash (docs/architecture.md, "Decisions"). During rotation the previous secret keeps working
until the grace period given by the administrator ends.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tessera.domain.admin import is_console
from tessera.domain.hashing import keyed_hash, new_id, new_token
from tessera.domain.model import Client, ClientKind, SecretHash
from tessera.domain.redirect_uris import InvalidRedirectUri, validate_for_registration
from tessera.domain.scopes import OIDC_SCOPES, UnknownScope, resolve_scope
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_name
from tessera.manage.factors import checked_policy
from tessera.manage.resources import MAX_ACCESS_TTL, check_ttl, find_resource
from tessera.manage.revocation import RevokedSummary, revoke_client
from tessera.oauth.interaction.account import is_account_app
from tessera.store.protocols import Conflict, NotFound, Store

__all__ = [
    "GRANT_TYPES",
    "MAX_REFRESH_TTL",
    "create_app",
    "delete_app",
    "find_app",
    "revoke_app_tokens",
    "rotate_secret",
    "set_resource_server_for",
    "update_app",
]

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
MAX_REFRESH_TTL = 365 * 86400


def _check_redirect_uris(uris: list[str]) -> tuple[str, ...]:
    checked: list[str] = []
    for uri in uris:
        try:
            checked.append(validate_for_registration(uri))
        except InvalidRedirectUri as exc:
            raise InvalidInput(f"redirect URI {uri!r}: {exc}") from None
    return tuple(dict.fromkeys(checked))


def _check_scopes(store: Store, scopes: list[str]) -> tuple[str, ...]:
    resources = store.resources.list()
    canonical: list[str] = []
    for scope in scopes:
        try:
            canonical.append(resolve_scope(scope, resources).canonical)
        except UnknownScope:
            raise InvalidInput(
                f"unknown scope {scope!r}: use one of {', '.join(sorted(OIDC_SCOPES))} or a "
                "registered resource scope written <audience><scope>, e.g. "
                "https://integration.example.test:443urn:opc:resource:consumer::all"
            ) from None
    return tuple(dict.fromkeys(canonical))


def _check_grants(
    grant_types: list[str] | tuple[str, ...], public: bool, redirect_uris: tuple[str, ...]
) -> tuple[str, ...]:
    grants = tuple(dict.fromkeys(grant_types))
    if not grants:
        raise InvalidInput("give at least one grant type")
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise InvalidInput(
                f"unsupported grant type {grant!r}: use {', '.join(GRANT_TYPES)} "
                "(the password and implicit grants are not offered, RFC 9700 §2.4)"
            )
    if public and "client_credentials" in grants:
        raise InvalidInput("a public app cannot use client_credentials: it has no secret")
    if "authorization_code" in grants and not redirect_uris:
        raise InvalidInput("an app with the authorization_code grant needs a --redirect-uri")
    return grants


def _check_ttls(access_ttl: int | None, refresh_ttl: int | None) -> None:
    check_ttl(access_ttl, "the access-token lifetime", 30, MAX_ACCESS_TTL)
    check_ttl(refresh_ttl, "the refresh-token lifetime", 60, MAX_REFRESH_TTL)


def _check_served(store: Store, refs: list[str], public: bool) -> tuple[str, ...]:
    """The audiences of the resources (by id, audience or name) an app serves.

    Kept as audiences, the `aud` every token of the resource carries, so that introspection
    decides with a tuple lookup on the (cached) app, no query.
    """
    if refs and public:
        raise InvalidInput("a resource server authenticates: a public app cannot be one")
    audiences: list[str] = []
    for ref in refs:
        try:
            audiences.append(find_resource(store, ref).audience)
        except NotFoundError:
            raise InvalidInput(f"no resource {ref!r} (give its id, audience or name)") from None
    return tuple(dict.fromkeys(audiences))


def create_app(
    store: Store,
    secret_pepper: bytes,
    *,
    name: str,
    now: datetime,
    actor: Actor,
    redirect_uris: list[str] | None = None,
    public: bool = False,
    grant_types: list[str] | None = None,
    allowed_scopes: list[str] | None = None,
    access_ttl: int | None = None,
    refresh_ttl: int | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    first_party: bool = False,
    resource_server_for: list[str] | None = None,
    mfa_policy: str | None = None,
) -> tuple[Client, str | None]:
    """Register an app; return it and, for a confidential app, its secret (shown once)."""
    name = checked_name(name)
    uris = _check_redirect_uris(redirect_uris or [])
    grants = _check_grants(grant_types or ["authorization_code", "refresh_token"], public, uris)
    logout_uris = _check_redirect_uris(post_logout_redirect_uris or [])
    scopes = _check_scopes(store, allowed_scopes or [])
    served = _check_served(store, resource_server_for or [], public)
    _check_ttls(access_ttl, refresh_ttl)
    policy = checked_policy(mfa_policy)
    if any(c.name == name for c in store.clients.list()):
        raise Conflicting(f"an app named {name!r} already exists")
    client_id = new_id()
    while store.users.get(client_id) or store.clients.get(client_id):  # never a user's `sub`
        client_id = new_id()
    secret = None if public else new_token(32)
    hashes = () if secret is None else (SecretHash(keyed_hash(secret_pepper, secret), now),)
    client = Client(
        client_id=client_id,
        name=name,
        kind=ClientKind.PUBLIC if public else ClientKind.CONFIDENTIAL,
        redirect_uris=uris,
        grant_types=grants,
        allowed_scopes=scopes,
        created_at=now,
        secret_hashes=hashes,
        post_logout_redirect_uris=logout_uris,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        first_party=first_party,
        resource_server_for=served,
        mfa_policy=policy,
    )
    try:
        store.clients.add(client)
    except Conflict:
        raise Conflicting(f"an app named {name!r} already exists") from None
    actor.audit("admin.app_created", client_id=client.client_id, name=client.name)
    return client, secret


def find_app(store: Store, ref: str) -> Client:
    """By client id or by name."""
    found = store.clients.get(ref) or next((c for c in store.clients.list() if c.name == ref), None)
    if found is None:
        raise NotFoundError(f"no app {ref!r}")
    return found


def rotate_secret(
    store: Store, secret_pepper: bytes, ref: str, grace_seconds: int, now: datetime, actor: Actor
) -> tuple[Client, str]:
    """Give the app a new secret; the current one keeps working for `grace_seconds`."""
    client = find_app(store, ref)
    if client.is_public:
        raise InvalidInput(f"{client.name!r} is a public app: it has no secret")
    if not 0 <= grace_seconds <= 30 * 86400:
        raise InvalidInput("the grace period must be between 0 and 2592000 seconds (30 days)")
    secret = new_token(32)
    ends = now + timedelta(seconds=grace_seconds)
    previous = tuple(
        replace(s, expires_at=ends if s.expires_at is None else min(s.expires_at, ends))
        for s in client.secret_hashes
        if (s.expires_at is None or s.expires_at > now) and grace_seconds > 0
    )
    updated = replace(
        client,
        secret_hashes=(SecretHash(keyed_hash(secret_pepper, secret), now), *previous[:1]),
        version=client.version + 1,
    )
    store.clients.update(updated)
    actor.audit("admin.app_secret_rotated", client_id=client.client_id, grace_seconds=grace_seconds)
    return updated, secret


_UNSET: object = object()


def update_app(
    store: Store,
    ref: str,
    *,
    actor: Actor,
    name: str | None = None,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    grant_types: list[str] | None = None,
    allowed_scopes: list[str] | None = None,
    access_ttl: int | object | None = _UNSET,
    refresh_ttl: int | object | None = _UNSET,
    mfa_policy: str | object | None = _UNSET,
) -> Client:
    """Edit an app with the rules of `create_app`; None (or unset TTLs and policy) keeps a
    field as it is, a TTL of None goes back to the default, an `mfa_policy` of None to the
    domain's. The type (public or confidential) and the
    secret are not edited here."""
    client = find_app(store, ref)
    system = _system_app(client.client_id)
    if system:
        raise InvalidInput(f"{system} is a system app: it cannot be edited")
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = checked_name(name)
    uris = client.redirect_uris
    if redirect_uris is not None:
        changes["redirect_uris"] = uris = _check_redirect_uris(redirect_uris)
    if post_logout_redirect_uris is not None:
        changes["post_logout_redirect_uris"] = _check_redirect_uris(post_logout_redirect_uris)
    if allowed_scopes is not None:
        changes["allowed_scopes"] = _check_scopes(store, allowed_scopes)
    if access_ttl is not _UNSET:
        changes["access_ttl"] = access_ttl
    if refresh_ttl is not _UNSET:
        changes["refresh_ttl"] = refresh_ttl
    if mfa_policy is not _UNSET:
        changes["mfa_policy"] = checked_policy(mfa_policy)
    if not changes and grant_types is None:
        raise InvalidInput("nothing to change")
    changes["grant_types"] = _check_grants(
        grant_types if grant_types is not None else client.grant_types, client.is_public, uris
    )
    updated = replace(client, **changes, version=client.version + 1)  # type: ignore[arg-type]
    _check_ttls(updated.access_ttl, updated.refresh_ttl)
    if any(
        c.name == updated.name and c.client_id != client.client_id for c in store.clients.list()
    ):
        raise Conflicting(f"an app named {updated.name!r} already exists")
    try:
        store.clients.update(updated)
    except Conflict:
        raise Conflicting(f"an app named {updated.name!r} already exists") from None
    except NotFound:
        raise NotFoundError(f"no app {ref!r}") from None
    changed = sorted(k for k in changes if getattr(client, k) != getattr(updated, k))
    actor.audit("admin.app_updated", client_id=client.client_id, changed=changed)
    return updated


def revoke_app_tokens(store: Store, ref: str, now: datetime, actor: Actor) -> RevokedSummary:
    client = find_app(store, ref)
    summary = revoke_client(store, client.client_id, now)
    actor.audit("admin.app_tokens_revoked", client_id=client.client_id, grants=summary.grants)
    return summary


def set_resource_server_for(store: Store, ref: str, resources: list[str], actor: Actor) -> Client:
    """Mark the app as the resource server of these resources (none: unmark it). It may then
    introspect their tokens and follow the revocation feed (RFC 7662 §2.1, §4)."""
    client = find_app(store, ref)
    served = _check_served(store, resources, client.is_public)
    updated = replace(client, resource_server_for=served, version=client.version + 1)
    store.clients.update(updated)
    actor.audit(
        "admin.app_resource_server_set",
        client_id=client.client_id,
        resource_server_for=list(served),
    )
    return updated


def _system_app(client_id: str) -> str | None:
    """What a system app of every domain is (None for the administrators' own apps)."""
    if is_console(client_id):
        return "the admin console"
    if is_account_app(client_id):
        return "the account pages' app"
    return None


def delete_app(store: Store, ref: str, now: datetime, actor: Actor) -> Client:
    """Delete the app and revoke every token issued to it."""
    client = find_app(store, ref)
    system = _system_app(client.client_id)
    if system:
        raise InvalidInput(f"{system} is a system app: it cannot be deleted")
    revoke_client(store, client.client_id, now)
    store.clients.delete(client.client_id)
    actor.audit("admin.app_deleted", client_id=client.client_id, name=client.name)
    return client
