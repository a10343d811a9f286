"""JSON views of the domain's entities, shared by the admin API and the CLI's `--json` output.

Never a secret: client secrets appear only as returned once by `create_app`/`rotate_secret`,
hashes never.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from tessera.domain.model import (
    AuditEvent,
    BrowserSession,
    Client,
    Consent,
    Grant,
    Group,
    Resource,
    SigningKey,
    User,
)
from tessera.manage.app_metadata import details_of

__all__ = [
    "app_view",
    "consent_view",
    "event_view",
    "grant_view",
    "group_view",
    "iso",
    "key_view",
    "resource_view",
    "session_view",
    "user_view",
]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_view(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "email_verified": u.email_verified,
        "is_admin": u.is_admin,
        "disabled": u.disabled_at is not None,
        "created_at": iso(u.created_at),
        "password_changed_at": iso(u.password_changed_at),
    }


def resource_view(r: Resource) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "audience": r.audience,
        "scopes": list(r.scopes),
        "oracle_scopes": [f"{r.audience}{s}" for s in r.scopes],
        "access_token_ttl": r.access_ttl,
        "signing_alg": r.signing_alg,
        "created_at": iso(r.created_at),
        # Its application roles (the `roles` claim's values) and whether its tokens carry the
        # user's `groups` (docs/groups-and-roles.md).
        "roles": [{"name": role.name, "description": role.description} for role in r.roles],
        "include_groups": r.include_groups,
    }


def app_view(c: Client, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "client_id": c.client_id,
        "name": c.name,
        "type": c.kind.value,
        "redirect_uris": list(c.redirect_uris),
        "post_logout_redirect_uris": list(c.post_logout_redirect_uris),
        "grant_types": list(c.grant_types),
        "allowed_scopes": list(c.allowed_scopes),
        "access_token_ttl": c.access_ttl,
        "refresh_token_ttl": c.refresh_ttl,
        "first_party": c.first_party,
        "resource_server_for": list(c.resource_server_for),
        # RFC 8693: the resources it may exchange users' tokens for; impersonation: no `act`.
        "token_exchange_audiences": list(c.token_exchange_audiences),
        "token_exchange_impersonation": c.token_exchange_impersonation,
        # None: the domain's policy (the stricter of the two applies).
        "mfa_policy": c.mfa_policy,
        "created_at": iso(c.created_at),
        "version": c.version,
        "secrets": [
            {"created_at": iso(s.created_at), "expires_at": iso(s.expires_at)}
            for s in c.secret_hashes
        ],
        # RFC 7591 §2 metadata. The keys are public; the registration access token's hash and
        # the sealed secret of a client_secret_jwt app never appear.
        "token_endpoint_auth_method": c.auth_method,
        "token_endpoint_auth_signing_alg": c.token_endpoint_auth_signing_alg,
        "jwks": orjson.loads(c.jwks) if c.jwks else None,
        "jwks_uri": c.jwks_uri,
        "require_pushed_authorization_requests": c.requires_par,
        "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
        "profile": c.profile,
        "dynamically_registered": c.registration_token_hash is not None,
        **_details_view(c),
    }
    if secret is not None:
        view["client_secret"] = secret
    return view


def _details_view(c: Client) -> dict[str, Any]:
    """RFC 7591 §2's informational metadata, each field present (null: not given)."""
    details = details_of(c)
    return {
        "client_uri": details.get("client_uri"),
        "logo_uri": details.get("logo_uri"),
        "tos_uri": details.get("tos_uri"),
        "policy_uri": details.get("policy_uri"),
        "contacts": list(details.get("contacts") or []),
        "software_id": details.get("software_id"),
        "software_version": details.get("software_version"),
    }


def grant_view(g: Grant) -> dict[str, Any]:
    return {
        "grant_id": g.grant_id,
        "client_id": g.client_id,
        "user_id": g.user_id,
        "scopes": list(g.scopes),
        "audience": g.audience,
        "auth_time": iso(g.auth_time),
        "created_at": iso(g.created_at),
        "absolute_expiry": iso(g.absolute_expiry),
    }


def consent_view(c: Consent) -> dict[str, Any]:
    return {
        "user_id": c.user_id,
        "client_id": c.client_id,
        "scopes": list(c.scopes),
        "granted_at": iso(c.granted_at),
    }


def session_view(s: BrowserSession, providers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`providers`: upstream provider names by id, for a federated session's `upstream_provider`
    (its id when the provider is gone)."""
    upstream = s.upstream_provider
    # The id hash identifies the session for "end" without being the cookie value.
    return {
        "id": s.id_hash,
        "user_id": s.user_id,
        "auth_time": iso(s.auth_time),
        "expires_at": iso(s.expires_at),
        "amr": list(s.amr),
        "upstream_provider": (providers or {}).get(upstream, upstream) if upstream else None,
    }


def event_view(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "at": iso(e.at),
        "actor": e.actor,
        "user_id": e.user_id,
        "client_id": e.client_id,
        "ip": e.ip,
        "details": e.details,
    }


def key_view(k: SigningKey) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state.value,
        "created_at": iso(k.created_at),
        "activated_at": iso(k.activated_at),
        "retire_after": iso(k.retire_after),
    }


def group_view(g: Group, members: list[User] | None = None) -> dict[str, Any]:
    """A group; with `members`, its members (users) by username."""
    view: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "external_id": g.external_id,
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
        "version": g.version,
    }
    if members is not None:
        view["members"] = [
            {"id": u.id, "username": u.username, "display_name": u.display_name} for u in members
        ]
    return view
