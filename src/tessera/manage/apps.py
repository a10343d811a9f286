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

How an app authenticates (RFC 7591 §2 `token_endpoint_auth_method`, checked with its keys, PAR,
ID token algorithm and FAPI 2.0 profile in `tessera.manage.app_metadata`): a `private_key_jwt`
app gets no secret (its keys authenticate it); a `client_secret_jwt` app's secret is also kept
sealed (`tessera.domain.client_secrets`), since its assertions are HMACs keyed with the secret.
Switching an app to a secret method needs a secret of that kind: `rotate_secret` with the
method gives one (docs/client-authentication.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tessera.domain.admin import is_console
from tessera.domain.client_secrets import seal_secret
from tessera.domain.hashing import keyed_hash, new_id, new_token
from tessera.domain.model import Client, ClientKind, SecretHash
from tessera.domain.redirect_uris import InvalidRedirectUri, validate_for_registration
from tessera.domain.scopes import OIDC_SCOPES, UnknownScope, resolve_scope
from tessera.manage.app_metadata import (
    SECRET_METHODS,
    AuthMetadata,
    checked_details,
    metadata_for_new_app,
    metadata_for_update,
)
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_name
from tessera.manage.factors import checked_policy
from tessera.manage.resources import MAX_ACCESS_TTL, check_ttl, find_resource
from tessera.manage.revocation import RevokedSummary, revoke_client
from tessera.oauth.grant_types import GRANT_TYPES, JWT_BEARER, TOKEN_EXCHANGE
from tessera.oauth.interaction.account import is_account_app
from tessera.store.protocols import Conflict, NotFound, Store

__all__ = [
    "GRANT_TYPES",
    "MAX_REFRESH_TTL",
    "SELF_REGISTERED_GRANT_TYPES",
    "create_app",
    "delete_app",
    "find_app",
    "revoke_app_tokens",
    "rotate_secret",
    "set_resource_server_for",
    "set_token_exchange",
    "update_app",
]

# What RFC 7591 registration may ask for: administrators decide who exchanges tokens (RFC 8693).
SELF_REGISTERED_GRANT_TYPES = tuple(g for g in GRANT_TYPES if g != TOKEN_EXCHANGE)
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
    if public and JWT_BEARER in grants:
        raise InvalidInput("a public app cannot use the JWT bearer grant: it cannot authenticate")
    if public and TOKEN_EXCHANGE in grants:
        raise InvalidInput("a public app cannot exchange tokens: it cannot authenticate")
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
    return _audiences(store, refs)


def _audiences(store: Store, refs: list[str]) -> tuple[str, ...]:
    """The audiences of resources given by id, audience or name."""
    audiences: list[str] = []
    for ref in refs:
        try:
            audiences.append(find_resource(store, ref).audience)
        except NotFoundError:
            raise InvalidInput(f"no resource {ref!r} (give its id, audience or name)") from None
    return tuple(dict.fromkeys(audiences))


def _new_secret(
    secret_pepper: bytes, client_id: str, method: str, now: datetime
) -> tuple[str | None, tuple[SecretHash, ...]]:
    """A secret for an app of a secret method (sealed too for `client_secret_jwt`); none for
    a public or `private_key_jwt` app, which must never authenticate with one."""
    if method not in SECRET_METHODS:
        return None, ()
    secret = new_token(32)
    sealed = (
        seal_secret(secret_pepper, client_id, secret) if method == "client_secret_jwt" else None
    )
    return secret, (SecretHash(keyed_hash(secret_pepper, secret), now, sealed=sealed),)


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
    token_endpoint_auth_method: str | None = None,
    token_endpoint_auth_signing_alg: str | None = None,
    jwks: dict[str, Any] | str | None = None,
    jwks_uri: str | None = None,
    require_pushed_authorization_requests: bool | None = None,
    dpop_bound_access_tokens: bool | None = None,
    id_token_signed_response_alg: str | None = None,
    profile: str | None = None,
    details: Mapping[str, object] | None = None,
    registration_token_hash: str | None = None,
    allow_insecure_jwks_uri: bool = False,
) -> tuple[Client, str | None]:
    """Register an app; return it and its secret (shown once), None for an app without one
    (public, or `private_key_jwt`). `allow_insecure_jwks_uri`: the issuer is an http loopback
    issuer (`client_jwks.allows_insecure_jwks_uri`), so http loopback `jwks_uri` (and FAPI 2.0
    redirect URIs) are allowed. `require_pushed_authorization_requests` and
    `dpop_bound_access_tokens` None: on for FAPI 2.0."""
    name = checked_name(name)
    uris = _check_redirect_uris(redirect_uris or [])
    grants = _check_grants(grant_types or ["authorization_code", "refresh_token"], public, uris)
    meta = metadata_for_new_app(
        public=public,
        redirect_uris=uris,
        allow_insecure_jwks_uri=allow_insecure_jwks_uri,
        token_endpoint_auth_method=token_endpoint_auth_method,
        token_endpoint_auth_signing_alg=token_endpoint_auth_signing_alg,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        id_token_signed_response_alg=id_token_signed_response_alg,
        profile=profile,
    )
    client = Client(
        client_id="",
        name=name,
        kind=ClientKind.PUBLIC if public else ClientKind.CONFIDENTIAL,
        redirect_uris=uris,
        grant_types=grants,
        allowed_scopes=_check_scopes(store, allowed_scopes or []),
        created_at=now,
        post_logout_redirect_uris=_check_redirect_uris(post_logout_redirect_uris or []),
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        first_party=first_party,
        resource_server_for=_check_served(store, resource_server_for or [], public),
        mfa_policy=checked_policy(mfa_policy),
        details=checked_details(details, allow_insecure=allow_insecure_jwks_uri),
        registration_token_hash=registration_token_hash,
        **meta.fields(),
    )
    _check_ttls(access_ttl, refresh_ttl)
    return _add_app(store, secret_pepper, client, now, actor)


def _add_app(
    store: Store, secret_pepper: bytes, client: Client, now: datetime, actor: Actor
) -> tuple[Client, str | None]:
    """Give the checked app its id (and secret) and write it."""
    name = client.name
    if any(c.name == name for c in store.clients.list()):
        raise Conflicting(f"an app named {name!r} already exists")
    client_id = new_id()
    while store.users.get(client_id) or store.clients.get(client_id):  # never a user's `sub`
        client_id = new_id()
    secret, hashes = _new_secret(secret_pepper, client_id, client.auth_method, now)
    client = replace(client, client_id=client_id, secret_hashes=hashes)
    try:
        store.clients.add(client)
    except Conflict:
        raise Conflicting(f"an app named {name!r} already exists") from None
    actor.audit(
        "admin.app_created",
        client_id=client.client_id,
        name=client.name,
        token_endpoint_auth_method=client.auth_method,
        profile=client.profile,
    )
    return client, secret


def find_app(store: Store, ref: str) -> Client:
    """By client id or by name."""
    found = store.clients.get(ref) or next((c for c in store.clients.list() if c.name == ref), None)
    if found is None:
        raise NotFoundError(f"no app {ref!r}")
    return found


def rotate_secret(
    store: Store,
    secret_pepper: bytes,
    ref: str,
    grace_seconds: int,
    now: datetime,
    actor: Actor,
    *,
    token_endpoint_auth_method: str | None = None,
) -> tuple[Client, str]:
    """Give the app a new secret; the current one keeps working for `grace_seconds`.

    `token_endpoint_auth_method` (a secret method) switches the app to it with the new secret:
    the way to a `client_secret_jwt` app (its secret is kept sealed) and from a
    `private_key_jwt` app back to a secret (its keys go). Secrets made for another method do
    not authenticate under the new one, grace period or not."""
    client = find_app(store, ref)
    if client.is_public:
        raise InvalidInput(f"{client.name!r} is a public app: it has no secret")
    if not 0 <= grace_seconds <= 30 * 86400:
        raise InvalidInput("the grace period must be between 0 and 2592000 seconds (30 days)")
    method = token_endpoint_auth_method or client.auth_method
    if method not in SECRET_METHODS:
        raise InvalidInput(
            f"{client.name!r} authenticates with {method}, without a secret: to give it one, "
            "rotate the secret with a token endpoint auth method among "
            f"{', '.join(SECRET_METHODS)}"
        )
    meta = AuthMetadata.of(client)
    if token_endpoint_auth_method is not None:
        meta = metadata_for_update(
            client,
            {"token_endpoint_auth_method": token_endpoint_auth_method},
            redirect_uris=client.redirect_uris,
        )
    secret, (fresh,) = _new_secret(secret_pepper, client.client_id, method, now)
    assert secret is not None  # a secret method
    ends = now + timedelta(seconds=grace_seconds)
    previous = tuple(
        replace(
            s,
            expires_at=ends if s.expires_at is None else min(s.expires_at, ends),
            sealed=s.sealed if method == "client_secret_jwt" else None,
        )
        for s in client.secret_hashes
        if (s.expires_at is None or s.expires_at > now) and grace_seconds > 0
    )
    updated = replace(
        client,
        **meta.fields(),
        secret_hashes=(fresh, *previous[:1]),
        version=client.version + 1,
    )
    store.clients.update(updated)
    actor.audit(
        "admin.app_secret_rotated",
        client_id=client.client_id,
        grace_seconds=grace_seconds,
        token_endpoint_auth_method=updated.auth_method,
    )
    return updated, secret


_UNSET: object = object()


def _method_switch(client: Client, method: str) -> dict[str, object]:
    """The secret changes a switch of the app's method needs; refused when the app has no
    secret of the kind the new method needs."""
    old = client.auth_method
    if method == old:
        return {}
    how = (
        f"rotate the secret with --token-endpoint-auth-method {method} (admin API: POST "
        f"/apps/{client.client_id}/rotate-secret with token_endpoint_auth_method {method}), "
        "which switches the method with the new secret"
    )
    if method in SECRET_METHODS and not client.secret_hashes:
        raise InvalidInput(f"{client.name!r} has no secret to use with {method}: {how}")
    if method == "client_secret_jwt" and client.secret_hashes[0].sealed is None:
        raise InvalidInput(
            f"the secret of {client.name!r} is kept only as a hash, and client_secret_jwt needs "
            f"it recoverable: {how}"
        )
    if method == "private_key_jwt":
        # Its old secret must never come back: switching to a secret method again needs a new
        # one (rotate-secret), never the hash kept from before, which may have leaked.
        return {"secret_hashes": ()}
    if old == "client_secret_jwt":  # only client_secret_jwt apps keep a recoverable secret
        return {"secret_hashes": tuple(replace(s, sealed=None) for s in client.secret_hashes)}
    return {}


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
    token_endpoint_auth_method: str | object | None = _UNSET,
    token_endpoint_auth_signing_alg: str | object | None = _UNSET,
    jwks: dict[str, Any] | str | object | None = _UNSET,
    jwks_uri: str | object | None = _UNSET,
    require_pushed_authorization_requests: bool | object | None = _UNSET,
    dpop_bound_access_tokens: bool | object | None = _UNSET,
    id_token_signed_response_alg: str | object | None = _UNSET,
    profile: str | object | None = _UNSET,
    details: Mapping[str, object] | object | None = _UNSET,
    registration_token_hash: str | object | None = _UNSET,
    allow_insecure_jwks_uri: bool = False,
) -> Client:
    """Edit an app with the rules of `create_app`; None (or unset TTLs and policy) keeps a
    field as it is, a TTL of None goes back to the default, an `mfa_policy` of None to the
    domain's. The metadata keywords (RFC 7591 names) change only when given; None is the
    default (or removes keys, details, the profile); see `app_metadata.metadata_for_update`
    for what a change of method clears. The type (public or confidential) and the secret are
    not edited here: switching to a secret method the app has no secret for is refused with
    the `rotate_secret` to run."""
    client = find_app(store, ref)
    changes = _changes(
        store,
        client,
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        allowed_scopes=allowed_scopes,
        settable={
            "access_ttl": access_ttl,
            "refresh_ttl": refresh_ttl,
            "mfa_policy": mfa_policy,
            "details": details,
            "registration_token_hash": registration_token_hash,
        },
        allow_insecure=allow_insecure_jwks_uri,
    )
    given = _given(
        token_endpoint_auth_method=token_endpoint_auth_method,
        token_endpoint_auth_signing_alg=token_endpoint_auth_signing_alg,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        id_token_signed_response_alg=id_token_signed_response_alg,
        profile=profile,
    )
    if not changes and not given and grant_types is None:
        raise InvalidInput("nothing to change")
    uris = client.redirect_uris
    if redirect_uris is not None:
        uris = _check_redirect_uris(redirect_uris)
    grants = _check_grants(
        grant_types if grant_types is not None else client.grant_types, client.is_public, uris
    )
    if client.token_exchange_audiences and TOKEN_EXCHANGE not in grants:
        # Token exchange comes and goes with `set_token_exchange` only: an edit that lists
        # the other grants (the console's form) keeps it.
        grants += (TOKEN_EXCHANGE,)
    changes["grant_types"] = grants
    meta = metadata_for_update(
        client, given, redirect_uris=uris, allow_insecure_jwks_uri=allow_insecure_jwks_uri
    )
    changes.update(meta.fields())
    changes.update(_method_switch(client, meta.method(client.is_public)))
    return _write_update(store, ref, client, changes, actor)


def _given(**values: object) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not _UNSET}


def _changes(
    store: Store,
    client: Client,
    *,
    name: str | None,
    redirect_uris: list[str] | None,
    post_logout_redirect_uris: list[str] | None,
    allowed_scopes: list[str] | None,
    settable: dict[str, object],
    allow_insecure: bool,
) -> dict[str, object]:
    """The checked changes of the fields that are not client metadata."""
    system = _system_app(client.client_id)
    if system:
        raise InvalidInput(f"{system} is a system app: it cannot be edited")
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = checked_name(name)
    if redirect_uris is not None:
        changes["redirect_uris"] = _check_redirect_uris(redirect_uris)
    if post_logout_redirect_uris is not None:
        changes["post_logout_redirect_uris"] = _check_redirect_uris(post_logout_redirect_uris)
    if allowed_scopes is not None:
        changes["allowed_scopes"] = _check_scopes(store, allowed_scopes)
    changes.update(_given(**settable))
    if "mfa_policy" in changes:
        changes["mfa_policy"] = checked_policy(changes["mfa_policy"])
    if "details" in changes:
        changes["details"] = checked_details(changes["details"], allow_insecure=allow_insecure)
    return changes


def _write_update(
    store: Store, ref: str, client: Client, changes: dict[str, object], actor: Actor
) -> Client:
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
    # Never a hash or a sealed secret in the log: only the names of what changed.
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


def set_token_exchange(
    store: Store,
    ref: str,
    actor: Actor,
    *,
    audiences: list[str] | None = None,
    impersonation: bool | None = None,
) -> Client:
    """RFC 8693: the resources (by id, audience or name; None: as they are) the app may
    exchange users' access tokens for, and whether it may impersonate them (tokens without
    `act`, §4.1; None: as it is). Resources allow the grant type; none removes it (and
    impersonation)."""
    client = find_app(store, ref)
    if client.is_public and audiences:
        raise InvalidInput("a public app cannot exchange tokens: it cannot authenticate")
    served = client.token_exchange_audiences
    if audiences is not None:
        served = _audiences(store, audiences)
    grants = tuple(g for g in client.grant_types if g != TOKEN_EXCHANGE)
    if served:
        grants += (TOKEN_EXCHANGE,)
    elif not grants:
        raise InvalidInput(f"{client.name!r} would have no grant type left")
    if impersonation and not served:
        raise InvalidInput("impersonation needs a resource the app may exchange tokens for")
    impersonate = client.token_exchange_impersonation if impersonation is None else impersonation
    updated = replace(
        client,
        grant_types=grants,
        token_exchange_audiences=served,
        token_exchange_impersonation=impersonate and bool(served),
        version=client.version + 1,
    )
    store.clients.update(updated)
    actor.audit(
        "admin.app_token_exchange_set",
        client_id=client.client_id,
        audiences=list(served),
        impersonation=updated.token_exchange_impersonation,
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
