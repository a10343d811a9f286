"""Upstream OpenID Connect providers of an identity domain (docs/federation.md): the domain's
users sign in through them. Create, list, find (by id or name), update, enable, disable,
delete, check; every change is audited through the caller's `Actor`.

A provider is found by its exact `issuer` (OpenID Connect Discovery 1.0 §4: the document at
`<issuer>/.well-known/openid-configuration` must name the same issuer, §4.3); we are its
client `client_id`, authenticating with a client secret (`client_secret_basic`, RFC 6749
§2.3.1, or `client_secret_post`) or with our own RS256 key (`private_key_jwt`, RFC 7523 §2.2,
OIDC Core §9), generated here and sealed. The secret and the private key are never shown;
the view shows what the administrator registers upstream: the redirect URI
`<issuer>/oauth2/v1/federation/<name>/callback` and, for `private_key_jwt`, our public JWK Set
(also served at `<issuer>/oauth2/v1/federation/<name>/jwks`).

Deleting a provider deletes the links of its users' accounts to their upstream accounts: the
users stay, but can no longer sign in through it (those without a password need a reset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from tessera.domain.emails import dns_name
from tessera.domain.hashing import new_id
from tessera.domain.model import UpstreamProvider
from tessera.manage.audit import Actor
from tessera.manage.errors import (
    Conflicting,
    InvalidInput,
    NotFoundError,
    checked_description,
    checked_name,
)
from tessera.oauth.client_jwks import JwksUnavailable, allows_insecure_jwks_uri
from tessera.oauth.federation.errors import UpstreamError
from tessera.oauth.federation.flow import COOKIE_PATH, TEST_TICKET_PURPOSE, seal_test_ticket
from tessera.oauth.federation.metadata import UpstreamClient, check_endpoint
from tessera.oauth.federation.secrets import (
    PRIVATE_KEY_JWT,
    PROVIDER_KEY_PURPOSE,
    SECRET_METHODS,
    client_jwks,
    new_client_key,
    seal_secret,
)
from tessera.shared.sealing import SealError
from tessera.shared.urlencoding import encode_pairs
from tessera.store.protocols import Conflict, EmailDomainTaken, NotFound, Store

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_SCOPES",
    "ProviderSetup",
    "check_provider",
    "create_provider",
    "delete_provider",
    "disable_provider",
    "enable_provider",
    "federation_url",
    "find_provider",
    "list_providers",
    "provider_setup",
    "provider_test",
    "provider_view",
    "try_sign_in_url",
    "update_provider",
]

AUTH_METHODS = (*sorted(SECRET_METHODS), PRIVATE_KEY_JWT)
DEFAULT_SCOPES = ("openid", "email", "profile")

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# RFC 6749 §3.3: scope-token = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E).
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")
_MAX_SCOPES = 30
_MAX_DOMAINS = 50
_MAX_DISPLAY = 100
_MAX_CLAIM = 255
_MAX_SECRET = 1024


@dataclass(frozen=True, slots=True)
class ProviderSetup:
    """What the rules need of the domain besides its store: its issuer (our redirect URIs),
    the keys that seal the providers' secrets and the test sign-in tickets, and whether http
    issuers on loopback are allowed (a development node)."""

    domain_issuer: str
    secret_key: bytes
    ticket_key: bytes
    allow_insecure: bool


def provider_setup(domain_issuer: str, subkey: Callable[[str], bytes]) -> ProviderSetup:
    """The setup of the domain of `domain_issuer`; `subkey` is its `Context.subkey`. http
    issuers are allowed on loopback only on a development node, as apps' `jwks_uri`s
    (`tessera.oauth.client_jwks.allows_insecure_jwks_uri`)."""
    return ProviderSetup(
        domain_issuer=domain_issuer,
        secret_key=subkey(PROVIDER_KEY_PURPOSE),
        ticket_key=subkey(TEST_TICKET_PURPOSE),
        allow_insecure=allows_insecure_jwks_uri(domain_issuer),
    )


# --- values ------------------------------------------------------------------------------------


def _checked_slug(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            "the provider name must be 1 to 63 lower-case letters, digits and hyphens, starting "
            "with a letter or a digit (it is part of the provider's URLs)"
        )
    return value


def _checked_issuer(value: object, allow_insecure: bool) -> str:
    """OIDC Core §2 / Discovery §4: an https URL (http on loopback on a development node) with
    a host and no query or fragment, kept exactly as given (the discovery document must name
    the same string, §4.3). The URL rule is the one every upstream endpoint meets."""
    try:
        issuer = check_endpoint(value, "issuer", allow_insecure_loopback=allow_insecure)
    except UpstreamError as exc:
        raise InvalidInput(exc.detail) from None
    if urlsplit(issuer).query or issuer.endswith("?"):
        raise InvalidInput("the issuer must have no query (OIDC Core §2)")
    return issuer


def _checked_client_id(value: object) -> str:
    # RFC 6749 Appendix A.1: client_id = *VSCHAR (%x20-7E).
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise InvalidInput("the client id must be 1 to 255 characters")
    if not all(" " <= c <= "~" for c in value) or value != value.strip():
        raise InvalidInput("the client id must be printable ASCII (no leading or trailing space)")
    return value


def _checked_method(value: object) -> str:
    if value not in AUTH_METHODS:
        raise InvalidInput(f"the auth method must be one of {', '.join(AUTH_METHODS)}")
    return str(value)


def _checked_secret(value: object) -> str:
    # RFC 6749 Appendix A.2: client_secret = *VSCHAR.
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_SECRET:
        raise InvalidInput(f"the client secret must be 1 to {_MAX_SECRET} characters")
    if not all(" " <= c <= "~" for c in value):
        raise InvalidInput("the client secret must be printable ASCII")
    return value


def _checked_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """`openid` first (OIDC Core §3.1.2.1: required), then the others once each."""
    scopes = tuple(dict.fromkeys(["openid", *values]))
    if len(scopes) > _MAX_SCOPES:
        raise InvalidInput(f"name at most {_MAX_SCOPES} scopes")
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise InvalidInput(f"{scope!r} is not a scope (RFC 6749 §3.3: no spaces or quotes)")
    return scopes


def _checked_claim(value: object, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_CLAIM:
        raise InvalidInput(f"the {what} claim must be a claim name of 1 to {_MAX_CLAIM} characters")
    if not all(" " < c < "\x7f" for c in value):
        raise InvalidInput(f"the {what} claim must be printable ASCII without spaces")
    return value


def _checked_groups_claim(value: str | None) -> str | None:
    """None or "": no group mapping."""
    return _checked_claim(value, "groups") if value else None


def _checked_sync(provider: UpstreamProvider) -> UpstreamProvider:
    """`sync_groups` says what a groups claim does: without one it would do nothing."""
    if provider.sync_groups and provider.groups_claim is None:
        raise InvalidInput(
            "sync_groups needs a groups claim (groups_claim) to read the groups from"
        )
    return provider


def _checked_email_domain(value: object) -> str:
    """A DNS name in lower case (an internationalised one in its A-label form, RFC 5890)."""
    if not isinstance(value, str):
        raise InvalidInput("an e-mail domain must be a DNS name")
    name = dns_name(value.strip().removeprefix("@"))
    if name is None:
        raise InvalidInput(f"{value!r} is not an e-mail domain (a DNS name such as example.com)")
    return name


def _checked_email_domains(values: Iterable[str]) -> tuple[str, ...]:
    domains = tuple(dict.fromkeys(_checked_email_domain(v) for v in values))
    if len(domains) > _MAX_DOMAINS:
        raise InvalidInput(f"name at most {_MAX_DOMAINS} e-mail domains")
    return domains


def _checked_display_name(value: str) -> str:
    name = checked_name(value, "the display name")
    if len(name) > _MAX_DISPLAY:
        raise InvalidInput(f"the display name must be 1 to {_MAX_DISPLAY} characters")
    return name


def _unique_email_domains(store: Store, provider: UpstreamProvider) -> None:
    """Home-realm discovery sends an e-mail domain to one provider only: said before the
    issuer is checked over the network (the store holds the rule at the write)."""
    try:
        EmailDomainTaken.check(provider, store.upstream_providers.list())
    except EmailDomainTaken as taken:
        raise Conflicting(str(taken)) from None


@contextmanager
def _written(ref: str, name: str) -> Iterator[None]:
    """The store's refusals of a write of the provider `ref` (named `name`), as errors that
    say what to change."""
    try:
        yield
    except EmailDomainTaken as taken:
        raise Conflicting(str(taken)) from None
    except Conflict:
        raise Conflicting(f"a provider named {name!r} already exists") from None
    except NotFound:
        raise NotFoundError(f"no provider {ref!r}") from None


def _unique_name(store: Store, provider: UpstreamProvider) -> None:
    found = store.upstream_providers.get_by_name(provider.name)
    if found is not None and found.id != provider.id:
        raise Conflicting(f"a provider named {provider.name!r} already exists")


# --- the discovery check ------------------------------------------------------------------------


def check_provider(client: UpstreamClient, provider: UpstreamProvider) -> dict[str, Any]:
    """Fetch the provider's discovery document (OIDC Discovery §4, its issuer checked exactly,
    §4.3) and its JWK Set now, bypassing the caches; what was found, or `InvalidInput` with the
    reason. `warnings` names what will not work as configured (our auth method, PKCE S256)
    without refusing: a provider may support more than it advertises."""
    try:
        metadata = client.metadata(provider.issuer, refresh=True)
        keys = client.keys(metadata, refresh=True)
    except UpstreamError as exc:
        raise InvalidInput(f"{provider.issuer} fails the discovery check: {exc.detail}") from None
    except JwksUnavailable as exc:
        raise InvalidInput(
            f"{provider.issuer} fails the discovery check: its keys: {exc}"
        ) from None
    methods = list(metadata.token_endpoint_auth_methods_supported)
    pkce = list(metadata.code_challenge_methods_supported)
    warnings = []
    if provider.auth_method not in methods:
        warnings.append(
            f"the provider does not advertise {provider.auth_method} "
            f"(it names {', '.join(methods)})"
        )
    if "S256" not in pkce:
        warnings.append("the provider does not advertise PKCE with S256 (RFC 7636 §4.2)")
    return {
        "issuer": metadata.issuer,
        "authorization_endpoint": metadata.authorization_endpoint,
        "token_endpoint": metadata.token_endpoint,
        "jwks_uri": metadata.jwks_uri,
        "userinfo_endpoint": metadata.userinfo_endpoint,
        "end_session_endpoint": metadata.end_session_endpoint,
        "iss_parameter_supported": metadata.iss_parameter_supported,
        "id_token_signing_alg_values_supported": list(
            metadata.id_token_signing_alg_values_supported
        ),
        "token_endpoint_auth_methods_supported": methods,
        "auth_method_supported": provider.auth_method in methods,
        "code_challenge_methods_supported": pkce,
        "key_ids": [key.kid for key in keys.keys],
        "warnings": warnings,
    }


def _checked(upstream: UpstreamClient | None, check: bool, provider: UpstreamProvider) -> None:
    if not check:
        return
    if upstream is None:
        raise TypeError("give the upstream client to check the provider, or check=False")
    check_provider(upstream, provider)


# --- changes -------------------------------------------------------------------------------------


def _sealed_credentials(
    setup: ProviderSetup, provider: UpstreamProvider, secret: str | None, rotate_key: bool
) -> UpstreamProvider:
    """The secret or our key that `provider.auth_method` needs: a new `secret` sealed, a new
    key when asked or when there is none; what the method does not use is dropped."""
    if provider.auth_method == PRIVATE_KEY_JWT:
        if secret is not None:
            raise InvalidInput("private_key_jwt uses our own key: give no client secret")
        if rotate_key or provider.private_key_sealed is None:
            sealed, kid = new_client_key(setup.secret_key, provider.id)
            provider = replace(provider, private_key_sealed=sealed, key_id=kid)
        return replace(provider, secret_sealed=None)
    if rotate_key:
        raise InvalidInput(f"{provider.auth_method} uses a client secret, not a key of ours")
    if secret is not None:
        sealed_secret = seal_secret(setup.secret_key, provider.id, _checked_secret(secret))
        provider = replace(provider, secret_sealed=sealed_secret)
    if provider.secret_sealed is None:
        raise InvalidInput(f"{provider.auth_method} needs the client secret the provider issued")
    return replace(provider, private_key_sealed=None, key_id=None)


def create_provider(
    store: Store,
    setup: ProviderSetup,
    *,
    now: datetime,
    actor: Actor,
    name: str,
    issuer: str,
    client_id: str,
    auth_method: str = "client_secret_basic",
    client_secret: str | None = None,
    display_name: str | None = None,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    username_claim: str = "preferred_username",
    email_claim: str = "email",
    name_claim: str = "name",
    groups_claim: str | None = None,
    sync_groups: bool = False,
    jit: bool = True,
    link_existing: bool = False,
    email_domains: Iterable[str] = (),
    enabled: bool = True,
    description: str = "",
    upstream: UpstreamClient | None = None,
    check: bool = True,
) -> UpstreamProvider:
    """Add a provider; with `check` its discovery document and keys are fetched through
    `upstream` first (`check_provider`), so a mistyped issuer is refused, not stored."""
    provider = UpstreamProvider(
        id=new_id("up_"),
        name=_checked_slug(name),
        display_name=_checked_display_name(name if display_name is None else display_name),
        issuer=_checked_issuer(issuer, setup.allow_insecure),
        client_id=_checked_client_id(client_id),
        auth_method=_checked_method(auth_method),
        created_at=now,
        updated_at=now,
        scopes=_checked_scopes(scopes),
        username_claim=_checked_claim(username_claim, "username"),
        email_claim=_checked_claim(email_claim, "e-mail"),
        name_claim=_checked_claim(name_claim, "name"),
        groups_claim=_checked_groups_claim(groups_claim),
        sync_groups=bool(sync_groups),
        jit=bool(jit),
        link_existing=bool(link_existing),
        email_domains=_checked_email_domains(email_domains),
        enabled=bool(enabled),
        created_by=actor.name,
        description=checked_description(description),
    )
    _checked_sync(provider)
    _unique_name(store, provider)
    _unique_email_domains(store, provider)
    provider = _sealed_credentials(setup, provider, client_secret, rotate_key=False)
    _checked(upstream, check, provider)
    with _written(provider.name, provider.name):
        store.upstream_providers.add(provider)
    actor.audit("provider.created", **_audited(provider))
    return provider


def list_providers(store: Store) -> list[UpstreamProvider]:
    """By name."""
    return store.upstream_providers.list()


def find_provider(store: Store, ref: str) -> UpstreamProvider:
    """By id or by name (case-insensitively)."""
    found = store.upstream_providers.get(ref) or store.upstream_providers.get_by_name(ref)
    if found is None:
        raise NotFoundError(f"no provider {ref!r}")
    return found


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _checked_slug,
    "display_name": _checked_display_name,
    "client_id": _checked_client_id,
    "auth_method": _checked_method,
    "scopes": _checked_scopes,
    "username_claim": partial(_checked_claim, what="username"),
    "email_claim": partial(_checked_claim, what="e-mail"),
    "name_claim": partial(_checked_claim, what="name"),
    "groups_claim": _checked_groups_claim,
    "sync_groups": bool,
    "jit": bool,
    "link_existing": bool,
    "email_domains": _checked_email_domains,
    "description": checked_description,
}


def _changes(values: dict[str, Any], allow_insecure: bool) -> dict[str, Any]:
    """The checked values of the fields given (not None)."""
    unknown = set(values) - {*_CHECKS, "issuer"}
    if unknown:
        raise TypeError(f"not fields of a provider: {sorted(unknown)}")
    changes = {k: _CHECKS[k](v) for k, v in values.items() if v is not None and k != "issuer"}
    if values.get("issuer") is not None:
        changes["issuer"] = _checked_issuer(values["issuer"], allow_insecure)
    return changes


def update_provider(
    store: Store,
    setup: ProviderSetup,
    ref: str,
    *,
    now: datetime,
    actor: Actor,
    client_secret: str | None = None,
    rotate_key: bool = False,
    upstream: UpstreamClient | None = None,
    check: bool = True,
    **values: Any,
) -> UpstreamProvider:
    """Change the fields given in `values` (those of `create_provider`; None: kept; a
    `groups_claim` of "" ends the group mapping). `client_secret` replaces the secret,
    `rotate_key` replaces our `private_key_jwt` key (register the new public key upstream).
    A new `name` changes the redirect URI to register upstream. A new issuer is checked as at
    creation."""
    current = find_provider(store, ref)
    changes = _changes(values, setup.allow_insecure)
    updated = _checked_sync(replace(current, **changes, updated_at=now))
    if updated.name != current.name:
        _unique_name(store, updated)
    if updated.email_domains != current.email_domains:
        _unique_email_domains(store, updated)
    updated = _sealed_credentials(setup, updated, client_secret, rotate_key)
    if updated.issuer != current.issuer:
        _checked(upstream, check, updated)
    with _written(ref, updated.name):
        store.upstream_providers.update(updated)
    changed = sorted(k for k, v in changes.items() if getattr(current, k) != v)
    if client_secret is not None:
        changed.append("client_secret")
    if updated.key_id != current.key_id:
        changed.append("private_key")
    actor.audit("provider.updated", **_audited(updated), changed=changed)
    return find_provider(store, current.id)


def _set_enabled(
    store: Store, ref: str, enabled: bool, now: datetime, actor: Actor
) -> UpstreamProvider:
    current = find_provider(store, ref)
    with _written(ref, current.name):
        store.upstream_providers.update(replace(current, enabled=enabled, updated_at=now))
    actor.audit(
        "provider.enabled" if enabled else "provider.disabled",
        provider_id=current.id,
        name=current.name,
    )
    return find_provider(store, current.id)


def enable_provider(store: Store, ref: str, *, now: datetime, actor: Actor) -> UpstreamProvider:
    """Show it on the sign-in page again (and send its e-mail domains to it)."""
    return _set_enabled(store, ref, True, now, actor)


def disable_provider(store: Store, ref: str, *, now: datetime, actor: Actor) -> UpstreamProvider:
    """Nobody signs in through it until it is enabled; its links stay. Sessions begun through
    it stay until they end (revoke the users to end them at once)."""
    return _set_enabled(store, ref, False, now, actor)


def delete_provider(store: Store, ref: str, actor: Actor) -> tuple[UpstreamProvider, int]:
    """Delete the provider and its links (the users stay; those without a password need a
    reset to sign in again): the provider and how many links went with it."""
    found = find_provider(store, ref)
    links = store.federated_identities.count_for_provider(found.id)
    try:
        store.upstream_providers.delete(found.id)
    except NotFound:
        raise NotFoundError(f"no provider {ref!r}") from None
    actor.audit("provider.deleted", provider_id=found.id, name=found.name, links=links)
    return found, links


def _audited(provider: UpstreamProvider) -> dict[str, Any]:
    """Never the secret or the key."""
    return {
        "provider_id": provider.id,
        "name": provider.name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "auth_method": provider.auth_method,
        "enabled": provider.enabled,
        "jit": provider.jit,
        "link_existing": provider.link_existing,
        "sync_groups": provider.sync_groups,
        "email_domains": list(provider.email_domains),
    }


# --- what is shown ------------------------------------------------------------------------------


def federation_url(domain_issuer: str, provider: UpstreamProvider, endpoint: str) -> str:
    """`<issuer>/oauth2/v1/federation/<name>/<endpoint>` (callback, jwks, start, test)."""
    return f"{domain_issuer}{COOKIE_PATH}/{provider.name}/{endpoint}"


def provider_view(store: Store, setup: ProviderSetup, provider: UpstreamProvider) -> dict[str, Any]:
    """The provider as the CLI's `--json` and the admin API show it: never its secret or
    private key; what to register upstream (`redirect_uri`, and for `private_key_jwt` our
    public keys `jwks` and where they are served, `jwks_uri`); how many accounts are linked."""
    own_key = provider.auth_method == PRIVATE_KEY_JWT
    try:
        jwks = client_jwks(setup.secret_key, provider)
    except SealError:  # sealed under another TESSERA_SECRET_KEY: rotate the key
        jwks = {"keys": []}
    return {
        "id": provider.id,
        "name": provider.name,
        "display_name": provider.display_name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "auth_method": provider.auth_method,
        "has_client_secret": provider.secret_sealed is not None,
        "key_id": provider.key_id,
        "jwks": jwks,
        "jwks_uri": federation_url(setup.domain_issuer, provider, "jwks") if own_key else None,
        "redirect_uri": federation_url(setup.domain_issuer, provider, "callback"),
        "scopes": list(provider.scopes),
        "username_claim": provider.username_claim,
        "email_claim": provider.email_claim,
        "name_claim": provider.name_claim,
        "groups_claim": provider.groups_claim,
        "sync_groups": provider.sync_groups,
        "jit": provider.jit,
        "link_existing": provider.link_existing,
        "email_domains": list(provider.email_domains),
        "enabled": provider.enabled,
        "description": provider.description,
        "linked_accounts": store.federated_identities.count_for_provider(provider.id),
        "created_at": provider.created_at.isoformat(),
        "created_by": provider.created_by,
        "updated_at": provider.updated_at.isoformat(),
        "version": provider.version,
    }


def try_sign_in_url(
    setup: ProviderSetup, provider: UpstreamProvider, admin_id: str, now: datetime
) -> str:
    """A test sign-in through the provider for the administrator `admin_id`, valid 10
    minutes: it shows the claims the provider sends and what a sign-in would do, writing
    nothing (`tessera.oauth.federation.flow.seal_test_ticket`)."""
    ticket = seal_test_ticket(setup.ticket_key, provider.id, admin_id, now)
    test = federation_url(setup.domain_issuer, provider, "test")
    return f"{test}?{encode_pairs([('ticket', ticket)])}"


def provider_test(
    upstream: UpstreamClient,
    setup: ProviderSetup,
    provider: UpstreamProvider,
    admin_id: str,
    now: datetime,
) -> dict[str, Any]:
    """`providers test` and the admin API's test: the discovery check now (`check_provider`,
    `InvalidInput` when it fails) and a "try sign-in" URL for `admin_id`."""
    return {
        "id": provider.id,
        "name": provider.name,
        "enabled": provider.enabled,
        "check": check_provider(upstream, provider),
        "try_sign_in_url": try_sign_in_url(setup, provider, admin_id, now),
    }
