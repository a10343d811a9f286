"""Identity domains as operators manage them: create, list, show, change, disable, enable and
delete (docs/domains.md). Shared by the CLI and the admin API; every change is audited in the
default domain's log, where the operators are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tessera.domain.identity_domains import (
    DOMAIN_RULES,
    DomainSettings,
    IdentityDomain,
    InvalidDomain,
    check_domain_name,
    check_host,
    domain_issuer,
    new_domain_id,
)
from tessera.domain.model import User
from tessera.manage.audit import Actor
from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError, checked_name
from tessera.manage.system import ensure_system_objects, system_objects
from tessera.manage.users import new_user
from tessera.oauth.keyring import first_keys
from tessera.store.protocols import Conflict, DomainContent, NotFound, Store

__all__ = [
    "CreatedDomain",
    "DeletedDomain",
    "NewAdmin",
    "create_domain",
    "created_view",
    "delete_domain",
    "domain_page",
    "domain_view",
    "find_domain",
    "list_domains",
    "set_domain_enabled",
    "update_domain",
]

# Rows deleted per statement when a domain is deleted (each batch its own short transaction).
_DELETE_BATCH = 2000
# Rounds of purge-then-delete before giving up (each round sweeps rows written meanwhile).
_DELETE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class NewAdmin:
    """The first administrator of a new domain."""

    username: str
    password: str
    email: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedDomain:
    domain: IdentityDomain
    admin: User | None


@dataclass(frozen=True, slots=True)
class DeletedDomain:
    domain: IdentityDomain
    rows: int  # how many rows of its data were deleted


def _checked(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except InvalidDomain as exc:
        raise InvalidInput(str(exc)) from None


def _settings(values: dict[str, Any] | None) -> DomainSettings:
    return _checked(lambda: DomainSettings.from_dict(values or {}))  # type: ignore[no-any-return]


def _host(host: str | None, base_issuer: str) -> str | None:
    if host is None or host == "":
        return None
    wanted: str = _checked(lambda: check_host(host))
    if wanted == (urlsplit(base_issuer).hostname or "").lower():
        raise InvalidInput(f"{wanted} is the default domain's host; choose another")
    return wanted


def create_domain(
    store: Store,
    *,
    name: str,
    base_issuer: str,
    signing_key_for: Callable[[str], bytes],
    now: datetime,
    actor: Actor,
    display_name: str | None = None,
    host: str | None = None,
    settings: dict[str, Any] | None = None,
    admin: NewAdmin | None = None,
) -> CreatedDomain:
    """A new domain with its signing keys, admin API, console app and (optionally) its first
    administrator, written in one transaction. `signing_key_for(domain_id)` is the key that
    seals the new domain's signing keys. Key generation and password hashing happen first, so
    the transaction stays short."""
    checked_name_: str = _checked(lambda: check_domain_name(name))
    title = checked_name(display_name or checked_name_, "the display name")
    domain = IdentityDomain(
        id=new_domain_id(),
        name=checked_name_,
        display_name=title,
        created_at=now,
        host=_host(host, base_issuer),
        settings=_settings(settings),
    )
    if store.domains.get_by_name(domain.name) is not None:
        raise Conflicting(f"a domain named {domain.name!r} already exists")
    user = None
    if admin is not None:
        user = new_user(
            username=admin.username,
            password=admin.password,
            now=now,
            email=admin.email,
            display_name=admin.display_name,
            is_admin=True,
            min_length=domain.settings.password_min_length,
        )
    resource, console = system_objects(domain_issuer(base_issuer, domain), domain.id, now)
    content = DomainContent(
        keys=first_keys(signing_key_for(domain.id), now),
        resources=(resource,),
        clients=(console,),
        users=(user,) if user is not None else (),
    )
    try:
        store.domains.create(domain, content)
    except Conflict:
        raise Conflicting(f"the name {domain.name!r} or the host is taken") from None
    actor.audit("admin.domain_created", domain=domain.name, domain_id=domain.id, host=domain.host)
    return CreatedDomain(domain, user)


def find_domain(store: Store, ref: str) -> IdentityDomain:
    """By name or id."""
    found = store.domains.get_by_name(ref.strip().lower()) or store.domains.get(ref)
    if found is None:
        raise NotFoundError(f"no identity domain {ref!r}")
    return found


def list_domains(
    store: Store, *, after: str | None = None, limit: int = 100
) -> list[IdentityDomain]:
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1 to 1000")
    return store.domains.list(after=after, limit=limit)


def domain_page(
    store: Store, base_issuer: str, *, after: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """A page of `list_domains` as the CLI and the admin API show it: {"domains": [view…],
    "next_after": the last name when the page is full (keyset pagination), else None}."""
    found = list_domains(store, after=after, limit=limit)
    return {
        "domains": [domain_view(d, base_issuer) for d in found],
        "next_after": found[-1].name if len(found) == limit else None,
    }


def _save(store: Store, domain: IdentityDomain) -> IdentityDomain:
    try:
        store.domains.update(domain)
    except Conflict:
        raise Conflicting(f"the host {domain.host} is another domain's") from None
    except NotFound:
        raise Conflicting(
            f"the domain {domain.name!r} was changed meanwhile; read it again and retry"
        ) from None
    return domain


def update_domain(
    store: Store,
    ref: str,
    *,
    base_issuer: str,
    actor: Actor,
    now: datetime,
    display_name: str | None = None,
    host: str | None = None,
    settings: dict[str, Any] | None = None,
) -> IdentityDomain:
    """Change the display name, the host (`""` releases it) or settings (`None` unsets one).
    A new host changes the issuer: tokens issued before are refused, as their issuer is not
    the domain's any more; the console app follows the new issuer."""
    domain = find_domain(store, ref)
    if domain.is_default and host:
        raise InvalidInput("the default domain is served at the deployment's base URL")
    if domain.is_default and settings and not DOMAIN_RULES.issuperset(settings):
        # Its services are the node's own, built from the environment at start; its rules
        # (password length, second factors) are read from its row like any domain's.
        raise InvalidInput(
            "the default domain follows the node's TESSERA_… settings; set those instead "
            f"(only {', '.join(sorted(DOMAIN_RULES))} can be set here)"
        )
    changes: dict[str, Any] = {}
    if display_name is not None:
        changes["display_name"] = checked_name(display_name, "the display name")
    if host is not None:
        changes["host"] = _host(host, base_issuer)
    if settings:
        changes["settings"] = _checked(lambda: domain.settings.merged(settings))
    if not changes:
        return domain
    updated = _save(store, domain.with_changes(**changes))
    if updated.host != domain.host:
        ensure_system_objects(store.for_domain(domain.id), domain_issuer(base_issuer, updated), now)
    actor.audit("admin.domain_updated", domain=domain.name, changed=sorted(changes))
    return updated


def set_domain_enabled(
    store: Store, ref: str, enabled: bool, now: datetime, actor: Actor
) -> IdentityDomain:
    """Disable (every endpoint of the domain answers a clear error within seconds on every
    node) or enable again."""
    domain = find_domain(store, ref)
    if domain.is_default:
        raise InvalidInput("the default domain cannot be disabled: the operators sign in there")
    if domain.enabled == enabled:
        return domain
    updated = _save(store, domain.with_changes(disabled_at=None if enabled else now))
    actor.audit("admin.domain_enabled" if enabled else "admin.domain_disabled", domain=domain.name)
    return updated


def _purge(store: Store, domain_id: str) -> int:
    """Delete the domain's data, a batch at a time; how many rows."""
    rows = 0
    while deleted := store.domains.purge_data(domain_id, _DELETE_BATCH):
        rows += deleted
    return rows


def delete_domain(store: Store, ref: str, now: datetime, actor: Actor) -> DeletedDomain:
    """Delete a domain and everything of it. First it is disabled, so every node refuses its
    requests and tokens (introspection, userinfo, the admin API, the revocation feed: its
    resource servers fail closed once the feed stops answering); then its rows are deleted
    table by table in short batches, children first, and last the domain's row. Interrupted,
    it can be run again: it goes on where it stopped."""
    domain = find_domain(store, ref)
    if domain.is_default:
        raise InvalidInput("the default domain cannot be deleted")
    if domain.enabled:
        domain = _save(store, domain.with_changes(disabled_at=now))
    rows = 0
    for _ in range(_DELETE_ATTEMPTS):
        rows += _purge(store, domain.id)
        try:
            store.domains.delete(domain.id)
            break
        except Conflict:
            # A node that had not yet seen the domain disabled (its cache lives a couple of
            # seconds) wrote a row after its table was emptied: empty it again.
            continue
    else:
        raise Conflicting(
            f"the domain {domain.name!r} is still being written to; run the deletion again in "
            "a few seconds"
        )
    actor.audit("admin.domain_deleted", domain=domain.name, domain_id=domain.id, rows=rows)
    return DeletedDomain(domain, rows)


def domain_view(domain: IdentityDomain, base_issuer: str) -> dict[str, Any]:
    """What the CLI and the admin API show of a domain."""
    issuer = domain_issuer(base_issuer, domain)
    return {
        "id": domain.id,
        "name": domain.name,
        "display_name": domain.display_name,
        "issuer": issuer,
        "host": domain.host,
        "enabled": domain.enabled,
        "default": domain.is_default,
        "created_at": domain.created_at.isoformat(),
        "disabled_at": domain.disabled_at.isoformat() if domain.disabled_at else None,
        "settings": domain.settings.as_dict(),
        "discovery": f"{issuer}/.well-known/openid-configuration",
        "console": f"{issuer}/console/",
        "version": domain.version,
    }


def created_view(created: CreatedDomain, base_issuer: str) -> dict[str, Any]:
    """What the CLI and the admin API show of a new domain: its view and its first
    administrator ({"id", "username"}, or None)."""
    user = created.admin
    return {
        **domain_view(created.domain, base_issuer),
        "admin": {"id": user.id, "username": user.username} if user is not None else None,
    }
