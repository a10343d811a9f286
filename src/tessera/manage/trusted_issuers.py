"""Trusted assertion issuers for the JWT bearer grant (RFC 7523 §2.1,
`tessera.oauth.grants.jwt_bearer`): partner systems whose signed JWTs get the domain's apps
tokens for the domain's users.

An issuer is its `iss` string (a URL or any string, unique in the domain), its public keys
(an inline JWK Set or an https `jwks_uri`, checked exactly as an app's `private_key_jwt`
keys: `tessera.manage.app_metadata`), the apps that may present its assertions (client ids of
the domain) and the scopes those tokens may carry at most (canonical; none: what the app may
ask for; never the admin API's). Every change is audited through the caller's `Actor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from tessera.domain.hashing import new_id
from tessera.domain.model import TrustedIssuer
from tessera.manage.app_metadata import checked_jwks, checked_jwks_uri
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_description
from tessera.manage.registration_tokens import allowed_scopes_of
from tessera.oauth.grants.jwt_bearer import MAX_ISSUER
from tessera.store.protocols import Conflict, NotFound, Store

__all__ = [
    "create_issuer",
    "delete_issuer",
    "find_issuer",
    "issuer_view",
    "list_issuers",
    "update_issuer",
]

_MAX_APPS = 100
_UNSET: Any = object()


def _checked_issuer(value: object) -> str:
    # RFC 7519 §4.1.1: a StringOrURI, compared as an exact string (no normalisation).
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ISSUER:
        raise InvalidInput(f"the issuer must be 1 to {MAX_ISSUER} characters")
    if not all(" " < c < "\x7f" for c in value):
        raise InvalidInput("the issuer must be printable ASCII without spaces")
    return value


def _checked_keys(
    jwks: Mapping[str, Any] | str | None, jwks_uri: str | None, allow_insecure: bool
) -> tuple[str | None, str | None]:
    if (jwks is None) == (jwks_uri is None):
        raise InvalidInput(
            "give exactly one of jwks (the issuer's public JWK Set) and jwks_uri (where it "
            "publishes it)"
        )
    return checked_jwks(jwks), checked_jwks_uri(jwks_uri, allow_insecure)


def _checked_apps(store: Store, apps: Iterable[str]) -> tuple[str, ...]:
    checked = tuple(dict.fromkeys(apps))
    if len(checked) > _MAX_APPS:
        raise InvalidInput(f"name at most {_MAX_APPS} apps")
    for client_id in checked:
        if not isinstance(client_id, str) or store.clients.get(client_id) is None:
            raise InvalidInput(f"no app with client id {client_id!r} in this domain")
    return checked


def create_issuer(
    store: Store,
    *,
    now: datetime,
    actor: Actor,
    domain_issuer: str,
    issuer: str,
    jwks: Mapping[str, Any] | str | None = None,
    jwks_uri: str | None = None,
    allowed_apps: Iterable[str] = (),
    allowed_scopes: Iterable[str] = (),
    description: str = "",
    allow_insecure_jwks_uri: bool = False,
) -> TrustedIssuer:
    """Trust `issuer`; `domain_issuer` is the domain's own (its admin API scopes are refused).
    `allow_insecure_jwks_uri`: http `jwks_uri`s on loopback, for a development node
    (`tessera.oauth.client_jwks.allows_insecure_jwks_uri`)."""
    keys, uri = _checked_keys(jwks, jwks_uri, allow_insecure_jwks_uri)
    trusted = TrustedIssuer(
        id=new_id("ti_"),
        issuer=_checked_issuer(issuer),
        created_at=now,
        updated_at=now,
        jwks=keys,
        jwks_uri=uri,
        allowed_apps=_checked_apps(store, allowed_apps),
        allowed_scopes=allowed_scopes_of(store, domain_issuer, allowed_scopes),
        created_by=actor.name,
        description=checked_description(description),
    )
    try:
        store.trusted_issuers.add(trusted)
    except Conflict:
        raise Conflicting(f"the issuer {trusted.issuer!r} is trusted already") from None
    actor.audit("trusted_issuer.created", **_audited(trusted))
    return trusted


def list_issuers(store: Store) -> list[TrustedIssuer]:
    return store.trusted_issuers.list()


def find_issuer(store: Store, ref: str) -> TrustedIssuer:
    """By id or by issuer."""
    found = store.trusted_issuers.get(ref) or store.trusted_issuers.find(ref)
    if found is None:
        raise NotFoundError(f"no trusted issuer {ref!r}")
    return found


def update_issuer(
    store: Store,
    ref: str,
    *,
    now: datetime,
    actor: Actor,
    domain_issuer: str,
    issuer: str | None = None,
    jwks: Mapping[str, Any] | str | None = None,
    jwks_uri: str | None = None,
    allowed_apps: Iterable[str] | None = None,
    allowed_scopes: Iterable[str] | None = None,
    description: str | None = None,
    allow_insecure_jwks_uri: bool = False,
) -> TrustedIssuer:
    """Change what is given; new keys (`jwks` or `jwks_uri`) replace the old ones."""
    current = find_issuer(store, ref)
    changes: dict[str, Any] = {"updated_at": now}
    if issuer is not None:
        changes["issuer"] = _checked_issuer(issuer)
    if jwks is not None or jwks_uri is not None:
        changes["jwks"], changes["jwks_uri"] = _checked_keys(
            jwks, jwks_uri, allow_insecure_jwks_uri
        )
    if allowed_apps is not None:
        changes["allowed_apps"] = _checked_apps(store, allowed_apps)
    if allowed_scopes is not None:
        changes["allowed_scopes"] = allowed_scopes_of(store, domain_issuer, allowed_scopes)
    if description is not None:
        changes["description"] = checked_description(description)
    updated = replace(current, **changes)
    try:
        store.trusted_issuers.update(updated)
    except Conflict:
        raise Conflicting(f"the issuer {updated.issuer!r} is trusted already") from None
    except NotFound:
        raise NotFoundError(f"no trusted issuer {ref!r}") from None
    actor.audit("trusted_issuer.updated", **_audited(updated))
    return updated


def delete_issuer(store: Store, ref: str, actor: Actor) -> TrustedIssuer:
    """Stop trusting the issuer (tokens it got stay valid until they expire or are revoked)."""
    found = find_issuer(store, ref)
    try:
        store.trusted_issuers.delete(found.id)
    except NotFound:
        raise NotFoundError(f"no trusted issuer {ref!r}") from None
    actor.audit("trusted_issuer.deleted", issuer_id=found.id, issuer=found.issuer)
    return found


def _audited(trusted: TrustedIssuer) -> dict[str, Any]:
    return {
        "issuer_id": trusted.id,
        "issuer": trusted.issuer,
        "jwks_uri": trusted.jwks_uri,
        "allowed_apps": list(trusted.allowed_apps),
        "allowed_scopes": list(trusted.allowed_scopes),
    }


def issuer_view(trusted: TrustedIssuer) -> dict[str, Any]:
    """The issuer as the CLI's `--json` and the admin API show it (`jwks` as an object)."""
    return {
        "id": trusted.id,
        "issuer": trusted.issuer,
        "jwks": orjson.loads(trusted.jwks) if trusted.jwks is not None else None,
        "jwks_uri": trusted.jwks_uri,
        "allowed_apps": list(trusted.allowed_apps),
        "allowed_scopes": list(trusted.allowed_scopes),
        "description": trusted.description,
        "created_at": trusted.created_at.isoformat(),
        "created_by": trusted.created_by,
        "updated_at": trusted.updated_at.isoformat(),
    }
