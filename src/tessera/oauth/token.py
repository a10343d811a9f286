"""The token endpoint: RFC 6749 §3.2, §4.1.3 (authorization code), §6 (refresh), §4.4 (client
credentials), with RFC 7636 (PKCE), RFC 9700 §4.14 (refresh rotation), RFC 9068 (JWT access
tokens) and OIDC Core §3.1.3 (ID token).

`TokenEndpoint.handle` authenticates the client, dispatches on `grant_type` and answers the
§5.1 response body or raises an `OAuthError` (§5.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tessera.domain.hashing import new_token, sha256_b64
from tessera.domain.model import AuthorizationCode, Client, Grant, RefreshToken, Resource, User
from tessera.domain.scopes import (
    OIDC_SCOPES,
    UnknownScope,
    normalize_audience,
    parse_scope_param,
    resolve_scope,
)
from tessera.oauth import errors
from tessera.oauth.client_auth import authenticate_client
from tessera.oauth.keyring import MAX_TOKEN_LIFETIME
from tessera.oauth.pkce import check_verifier
from tessera.oauth.tokens import AccessTokenSpec, TokenIssuer
from tessera.store.protocols import RotateOutcome, Store

__all__ = ["TokenEndpoint", "TokenPolicy", "scope_claim", "user_claims"]

DEFAULT_ACCESS_TTL = 3600


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    default_access_ttl: int = DEFAULT_ACCESS_TTL
    id_token_ttl: int = 3600
    refresh_ttl: int = 14 * 86400
    refresh_absolute_ttl: int = 90 * 86400
    refresh_grace_seconds: float = 2.0


def scope_claim(scopes: tuple[str, ...], audience: str | None) -> str:
    """The `scope` claim and response parameter: resource scopes without their audience."""
    out = []
    for scope in scopes:
        if audience is not None and scope.startswith(audience) and scope not in OIDC_SCOPES:
            out.append(scope[len(audience) :])
        else:
            out.append(scope)
    return " ".join(out)


def user_claims(user: User, scopes: tuple[str, ...]) -> dict[str, Any]:
    """OIDC Core §5.4: the claims each standard scope releases."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims.update(name=user.display_name, preferred_username=user.username)
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=False)
    return claims


class TokenEndpoint:
    def __init__(
        self,
        store: Store,
        issuer: TokenIssuer,
        *,
        pepper: bytes,
        refresh_key: bytes,
        clock: Callable[[], datetime],
        lookup_client: Callable[[str], Client | None],
        lookup_resource: Callable[[str], Resource | None],
        list_resources: Callable[[], list[Resource]],
        policy: TokenPolicy,
        lookup_user: Callable[[str], User | None] | None = None,
        admin_scope: str | None = None,
    ) -> None:
        self.store = store
        self.issuer = issuer
        self._pepper = pepper
        self._refresh_key = refresh_key
        self.clock = clock
        self.lookup_client = lookup_client
        self.lookup_resource = lookup_resource
        self.list_resources = list_resources
        self.lookup_user = lookup_user or store.users.get
        self.policy = policy
        self.admin_scope = admin_scope

    def handle(
        self, authorization: str | None, form: Mapping[str, str], duplicated: set[str]
    ) -> dict[str, Any]:
        if duplicated:
            # RFC 6749 §3.2: parameters MUST NOT be included more than once.
            raise errors.InvalidRequest(f"repeated parameter: {sorted(duplicated)[0]}")
        now = self.clock()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.InvalidRequest("grant_type is required")
        handler = {
            "authorization_code": self._authorization_code,
            "refresh_token": self._refresh_token,
            "client_credentials": self._client_credentials,
        }.get(grant_type)
        if handler is None:
            # The password and implicit grants are not offered (RFC 9700 §2.4).
            raise errors.UnsupportedGrantType(f"unsupported grant_type {grant_type[:64]}")
        client = authenticate_client(authorization, form, self.lookup_client, self._pepper, now)
        if grant_type not in client.grant_types:
            raise errors.UnauthorizedClient(f"this app may not use the {grant_type} grant")
        return handler(client, form, now)

    # --- RFC 6749 §4.1.3 -----------------------------------------------------------------------

    def _authorization_code(
        self, client: Client, form: Mapping[str, str], now: datetime
    ) -> dict[str, Any]:
        code_value = form.get("code")
        if not code_value:
            raise errors.InvalidRequest("code is required")
        if len(code_value) > 256:
            raise errors.InvalidGrant("unknown, used or expired code")
        redirect_uri = form.get("redirect_uri")
        verifier = form.get("code_verifier")
        issued: dict[str, Any] = {}

        def issue(code: AuthorizationCode) -> tuple[Grant, RefreshToken | None]:
            """Inside the redemption's transaction: the checks, then what to insert."""
            if code.client_id != client.client_id:
                raise errors.InvalidGrant("the code was issued to another app")
            if redirect_uri is None:
                if client.redirect_uris != (code.redirect_uri,):
                    raise errors.InvalidGrant("redirect_uri is required")
            elif redirect_uri != code.redirect_uri:
                raise errors.InvalidGrant("redirect_uri differs from the authorization request")
            check_verifier(code.code_challenge, verifier)
            grant = Grant(
                grant_id=code.grant_id,
                client_id=client.client_id,
                user_id=code.user_id,
                scopes=code.scopes,
                audience=code.audience,
                auth_time=code.auth_time,
                created_at=now,
                absolute_expiry=now + timedelta(seconds=self.policy.refresh_absolute_ttl),
                session_id=code.session_id,
            )
            refresh_row = None
            if "refresh_token" in client.grant_types:
                issued["refresh"] = new_token(32)
                refresh_row = self._refresh_row(issued["refresh"], grant, client, None, now)
            issued["grant"] = grant
            return grant, refresh_row

        # One transaction: the atomic consume, the checks, the grant and its refresh token.
        # A failed check leaves the code burned (RFC 6749 §4.1.2: used once).
        code, won = self.store.codes.redeem(sha256_b64(code_value), now, issue)
        if code is None:
            raise errors.InvalidGrant("unknown, used or expired code")
        if not won:
            if code.consumed_at is not None:
                # RFC 6749 §4.1.2, RFC 9700 §4.2.4: a replayed code revokes what it issued.
                self.store.grants.revoke(code.grant_id, now, self._event_expiry(now))
            raise errors.InvalidGrant("unknown, used or expired code")
        grant = issued["grant"]
        user = self.store.users.get(code.user_id)  # uncached: a user disabled a moment ago
        if user is None or not user.active:
            self.store.grants.revoke(grant.grant_id, now, self._event_expiry(now))
            raise errors.InvalidGrant("the user is no longer active")
        return self._user_response(client, grant, user, now, issued.get("refresh"), code.nonce)

    # --- RFC 6749 §6 ---------------------------------------------------------------------------

    def _refresh_token(
        self, client: Client, form: Mapping[str, str], now: datetime
    ) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise errors.InvalidRequest("refresh_token is required")
        if len(presented) > 256:
            raise errors.InvalidGrant("unknown, expired or revoked refresh token")
        token_hash = sha256_b64(presented)
        requested: tuple[str, ...] | None = None
        if "scope" in form:  # the rare path: read the grant first, so a bad scope burns nothing
            current = self.store.refresh_tokens.get(token_hash)
            known = self.store.grants.get(current.grant_id) if current else None
            if known is None or known.client_id != client.client_id:
                raise errors.InvalidGrant("unknown, expired or revoked refresh token")
            requested = self._narrowed_scopes(form["scope"], known)
        successor_value = self._successor(presented)
        successor = RefreshToken(
            token_hash=sha256_b64(successor_value),
            grant_id="",  # the store takes it from the presented token's grant
            issued_at=now,
            expires_at=now + timedelta(seconds=client.refresh_ttl or self.policy.refresh_ttl),
            parent_hash=token_hash,
        )
        # One atomic write: bound to this client, rotation, replay detection (RFC 9700 §4.14).
        result = self.store.refresh_tokens.rotate(
            token_hash,
            successor,
            now,
            self.policy.refresh_grace_seconds,
            self._event_expiry(now),
            client_id=client.client_id,
        )
        grant = result.grant
        if result.outcome is RotateOutcome.FOREIGN:
            raise errors.InvalidGrant("the refresh token was issued to another app")
        if result.outcome not in (RotateOutcome.ROTATED, RotateOutcome.RETRY) or grant is None:
            raise errors.InvalidGrant("unknown, expired or revoked refresh token")
        scopes = requested or grant.scopes
        user = self.lookup_user(grant.user_id)
        if user is None or not user.active:
            raise errors.InvalidGrant("the user is no longer active")
        narrowed = replace(grant, scopes=scopes)
        return self._user_response(client, narrowed, user, now, successor_value, None)

    def _narrowed_scopes(self, requested: str, grant: Grant) -> tuple[str, ...]:
        """RFC 6749 §6: the new scope MUST NOT include any scope not originally granted."""
        resources = [r for r in [self.lookup_resource(grant.audience or "")] if r]
        try:
            tokens = parse_scope_param(requested)
            canonical = tuple(resolve_scope(t, resources).canonical for t in tokens)
        except (ValueError, UnknownScope):
            raise errors.InvalidScope("scope exceeds what was granted") from None
        if not canonical or not set(canonical) <= set(grant.scopes):
            raise errors.InvalidScope("scope exceeds what was granted")
        return canonical

    def _successor(self, presented: str) -> str:
        """Derived, not random: a retry of the same refresh gets the same successor."""
        digest = hmac.new(self._refresh_key, presented.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _refresh_row(
        self, value: str, grant: Grant, client: Client, parent: str | None, now: datetime
    ) -> RefreshToken:
        inactivity = client.refresh_ttl or self.policy.refresh_ttl
        return RefreshToken(
            token_hash=sha256_b64(value),
            grant_id=grant.grant_id,
            issued_at=now,
            expires_at=min(now + timedelta(seconds=inactivity), grant.absolute_expiry),
            parent_hash=parent,
        )

    # --- RFC 6749 §4.4 -------------------------------------------------------------------------

    def _client_credentials(
        self, client: Client, form: Mapping[str, str], now: datetime
    ) -> dict[str, Any]:
        if client.is_public:
            raise errors.UnauthorizedClient("a public app cannot use client_credentials")
        try:
            tokens = parse_scope_param(form.get("scope"))
        except ValueError as exc:
            raise errors.InvalidScope(str(exc)) from None
        resources = self._resources_for(client)
        resource_param = form.get("resource")
        if resource_param is not None:
            wanted = normalize_audience(resource_param)
            resources = [r for r in resources if normalize_audience(r.audience) == wanted]
            if not resources:
                raise errors.InvalidTarget("resource is not an audience this app may ask for")
        if "scope" in form and not tokens:
            raise errors.InvalidScope("scope is empty")
        try:
            if tokens:
                resolved = [resolve_scope(t, resources, resource_param) for t in tokens]
            else:  # no scope: everything the app may ask for of its (single) resource
                resolved = [
                    resolve_scope(s, resources)
                    for s in client.allowed_scopes
                    if s not in OIDC_SCOPES and any(s.startswith(r.audience) for r in resources)
                ]
        except UnknownScope:
            raise errors.InvalidScope("unknown scope") from None
        if any(r.audience is None for r in resolved):
            raise errors.InvalidScope("OpenID scopes need a user; use the authorization code flow")
        scopes = tuple(dict.fromkeys(r.canonical for r in resolved))
        if self.admin_scope in scopes:
            raise errors.InvalidScope("the admin scope needs an administrator, not an app")
        if not scopes or not set(scopes) <= set(client.allowed_scopes):
            raise errors.InvalidScope("the app may not ask for this scope")
        audiences = {r.audience for r in resolved}
        if len(audiences) != 1:
            raise errors.InvalidTarget("ask for the scopes of one resource at a time")
        audience = audiences.pop()
        assert audience is not None
        lifetime, alg = self._lifetime(client, audience)
        token, _ = self.issuer.access_token(
            AccessTokenSpec(
                subject=client.client_id,
                sub_type="client",
                client_id=client.client_id,
                audience=audience,
                scope=scope_claim(scopes, audience),
                lifetime=lifetime,
                alg=alg,
            ),
            int(now.timestamp()),
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope_claim(scopes, audience),
        }

    def _resources_for(self, client: Client) -> list[Resource]:
        audiences = {s for s in client.allowed_scopes if s not in OIDC_SCOPES}
        found: dict[str, Resource] = {}
        for resource in self.list_resources():
            if any(s.startswith(resource.audience) for s in audiences):
                found[resource.id] = resource
        return list(found.values())

    # --- the response --------------------------------------------------------------------------

    def _lifetime(self, client: Client, audience: str | None) -> tuple[int, str]:
        """The app's access-token lifetime, capped by the resource's (seed: 1 hour default)."""
        lifetime = client.access_ttl or self.policy.default_access_ttl
        alg = "ES256"
        resource = self.lookup_resource(audience) if audience else None
        if resource is not None:
            alg = resource.signing_alg
            if resource.access_ttl is not None:
                lifetime = min(lifetime, resource.access_ttl)
        return lifetime, alg

    def _user_response(
        self,
        client: Client,
        grant: Grant,
        user: User,
        now: datetime,
        refresh_value: str | None,
        nonce: str | None,
    ) -> dict[str, Any]:
        if self.admin_scope in grant.scopes and not user.is_admin:
            # Only administrators hold the admin scope, also after losing the flag.
            raise errors.InvalidGrant("the admin scope is for administrators only")
        audience = grant.audience or self.issuer.issuer
        lifetime, alg = self._lifetime(client, grant.audience)
        issued_at = int(now.timestamp())
        auth_time = int(grant.auth_time.timestamp())
        scope = scope_claim(grant.scopes, grant.audience)
        access, _ = self.issuer.access_token(
            AccessTokenSpec(
                subject=user.id,
                sub_type="user",
                client_id=client.client_id,
                audience=audience,
                scope=scope,
                lifetime=lifetime,
                alg=alg,
                grant_id=grant.grant_id,
                auth_time=auth_time,
                user_display_name=user.display_name,
            ),
            issued_at,
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }
        if refresh_value is not None:
            body["refresh_token"] = refresh_value
        if "openid" in grant.scopes:
            body["id_token"] = self.issuer.id_token(
                subject=user.id,
                client_id=client.client_id,
                now=issued_at,
                lifetime=self.policy.id_token_ttl,
                auth_time=auth_time,
                nonce=nonce,
                access_token=access,
                extra=user_claims(user, grant.scopes),
                sid=grant.session_id and grant.grant_id,
            )
        return body

    def _event_expiry(self, now: datetime) -> datetime:
        """Keep a grant revocation as long as any token of the family can live."""
        return now + max(MAX_TOKEN_LIFETIME, timedelta(seconds=self.policy.refresh_absolute_ttl))
