"""The token exchange grant: RFC 8693 (docs/security.md rule 56).

A confidential app that an administrator allowed (`Client.token_exchange_audiences`) presents
a user's access token of this domain (`subject_token`) and names one registered resource
(`resource` and/or `audience`, §2.1); it gets an access token for that resource for the same
user. The checks, in order, each a plain function below:

- `parse_exchange` (§2.1): `subject_token` and its type (our access tokens only), no
  `actor_token` (not supported: the authenticated app is the actor), `requested_token_type`
  absent or an access token;
- the app may exchange at all (`unauthorized_client`);
- `check_subject`: the token is ours (signature with the domain's keys, `iss`, `exp`, `typ`:
  the introspection endpoint's `verified_access_token`), a user's, not revoked (the same
  revocation state as introspection: its `jti`, grant or user cut-off), meant for this app
  (its client, or the resource server of its audience: RFC 7662 §2.1's rule, so a token that
  leaked elsewhere cannot be exchanged), bound to the request's DPoP key when the app is the
  token's own client, and `may_act` (§4.4) naming the app if present. §2.2.2: an invalid or
  unacceptable subject token is `invalid_request`;
- `target_resource` (§2.1, §2.2.2): one registered resource the app may exchange for, else
  `invalid_target`;
- `exchanged_scopes`: the requested scopes (default: all) within the subject token's scopes
  (compared by name: the subject token's `scope` claim is written without its audience) and
  the app's allowed scopes of the target, else `invalid_scope`;
- `actor_claim` (§4.1): delegation by default, `act: {"sub": <app>}` with a prior `act` nested
  inside; an app allowed to impersonate adds no `act` (a prior one stays);
- the lifetime never reaches past the subject token's `exp`.

The exchanged token is recorded as a grant of the app (no refresh token) in one unit of work
with the user's cut-off check, as a code redemption is: revoking the user, the grant or the app
revokes it, and a revocation that races the exchange is seen by one of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tessera.domain.hashing import new_id
from tessera.domain.model import Client, Grant, Resource
from tessera.domain.scopes import (
    OIDC_SCOPES,
    UnknownScope,
    normalize_audience,
    parse_scope_param,
    resolve_scope,
)
from tessera.oauth import errors
from tessera.oauth.grant_types import TOKEN_EXCHANGE
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import (
    ACCESS_TOKEN_TYPE,
    TokenMinter,
    TokenResponse,
    scope_claim,
)
from tessera.oauth.grants.user_grant import Refusal, start_user_grant
from tessera.oauth.introspection import may_introspect, verified_access_token
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.tokens import AccessTokenSpec, TokenIssuer
from tessera.store.protocols import Store

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "ExchangeRequest",
    "TokenExchangeGrant",
    "actor_claim",
    "check_subject",
    "exchanged_lifetime",
    "exchanged_scopes",
    "parse_exchange",
    "target_resource",
]

_MAX_ACT_DEPTH = 5  # a chain of actors longer than this is refused (each exchange nests one)


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """The §2.1 parameters we act on."""

    subject_token: str
    resource: str | None
    audience: str | None
    scope: list[str]
    scope_given: bool


def parse_exchange(form: Mapping[str, str]) -> ExchangeRequest:
    """RFC 8693 §2.1; `invalid_request` for what we do not support."""
    subject = form.get("subject_token")
    if not subject:
        raise errors.InvalidRequest("subject_token is required")
    kind = form.get("subject_token_type")
    if not kind:
        raise errors.InvalidRequest("subject_token_type is required")
    if kind != ACCESS_TOKEN_TYPE:
        raise errors.InvalidRequest(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    if "actor_token" in form or "actor_token_type" in form:
        # §2.1: optional. The authenticated app is the actor (§4.1); a token of another
        # party is not accepted in its place.
        raise errors.InvalidRequest(
            "actor_token is not supported: the authenticated app is the actor"
        )
    wanted = form.get("requested_token_type")
    if wanted is not None and wanted != ACCESS_TOKEN_TYPE:
        raise errors.InvalidRequest(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
    try:
        scope = parse_scope_param(form.get("scope"))
    except ValueError as exc:
        raise errors.InvalidScope(str(exc)) from None
    if "scope" in form and not scope:
        raise errors.InvalidScope("scope is empty")
    resource, audience = form.get("resource"), form.get("audience")
    if resource is None and audience is None:
        raise errors.InvalidRequest("name the target with resource or audience (RFC 8693 §2.1)")
    return ExchangeRequest(subject, resource, audience, scope, "scope" in form)


def check_subject(
    token: str,
    client: Client,
    issuer: TokenIssuer,
    revocations: RevocationState,
    now: datetime,
    dpop_jkt: str | None = None,
) -> Mapping[str, Any]:
    """The claims of an acceptable subject token; `invalid_request` otherwise (§2.2.2)."""
    claims = verified_access_token(token, issuer, now)
    if claims is None:
        # Not ours (another domain's issuer or keys), expired, malformed: all alike.
        raise errors.InvalidRequest("subject_token is not a valid access token of this domain")
    if claims.get("sub_type") != "user" or not isinstance(claims.get("sub"), str):
        raise errors.InvalidRequest("subject_token must be a user's access token")
    if not may_introspect(client, claims):
        raise errors.InvalidRequest(
            "subject_token was issued neither to this app nor for a resource it serves"
        )
    bound = claims.get("cnf")
    serves = may_introspect(client, {"aud": claims.get("aud")})
    if isinstance(bound, Mapping) and not serves and dpop_jkt != bound.get("jkt"):
        # A bound token's own app holds its key and proves it (RFC 9449 §7.1); a resource
        # server of its audience checked the holder's proof when the token reached it.
        raise errors.InvalidRequest("subject_token is DPoP-bound: send a DPoP proof of its key")
    check_may_act(claims, client)
    if _depth(claims.get("act")) >= _MAX_ACT_DEPTH:
        raise errors.InvalidRequest("subject_token has too many actors")
    revocations.sync()  # revocations made on any node a moment ago
    if revocations.revoked(claims):
        raise errors.InvalidRequest("subject_token is revoked")
    return claims


def check_may_act(claims: Mapping[str, Any], client: Client) -> None:
    """§4.4: a `may_act` claim names who may act for the subject; anyone else is refused."""
    if "may_act" not in claims:
        return
    allowed = claims["may_act"]
    if not isinstance(allowed, Mapping) or allowed.get("sub") != client.client_id:
        raise errors.InvalidRequest("subject_token's may_act does not name this app")
    if "iss" in allowed and allowed["iss"] != claims.get("iss"):
        raise errors.InvalidRequest("subject_token's may_act does not name this app")


def _depth(act: Any) -> int:
    depth = 0
    while isinstance(act, Mapping) and depth <= _MAX_ACT_DEPTH:
        depth, act = depth + 1, act.get("act")
    return depth


def _resource_uri(value: str) -> str:
    """§2.1: `resource` is an absolute URI without a fragment."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket: bad input, not a server error
        raise errors.InvalidTarget("resource must be an absolute URI without a fragment") from None
    if not parts.scheme or not (parts.netloc or parts.path) or "#" in value:
        raise errors.InvalidTarget("resource must be an absolute URI without a fragment")
    return value


def target_resource(
    exchange: ExchangeRequest, client: Client, resources: list[Resource]
) -> Resource:
    """§2.1, §2.2.2: the one registered resource named by `resource` and/or `audience` (by
    its audience), among those an administrator lets the app exchange for."""
    named = [exchange.audience] if exchange.audience is not None else []
    if exchange.resource is not None:
        named.append(_resource_uri(exchange.resource))
    found: dict[str, Resource] = {}
    for value in named:
        wanted = normalize_audience(value)
        match = next((r for r in resources if normalize_audience(r.audience) == wanted), None)
        if match is None:
            raise errors.InvalidTarget("resource or audience names no registered resource")
        found[match.id] = match
    if len(found) != 1:
        raise errors.InvalidTarget("resource and audience name different resources")
    target = next(iter(found.values()))
    if target.audience not in client.token_exchange_audiences:
        raise errors.InvalidTarget("this app may not exchange tokens for this resource")
    return target


def exchanged_scopes(
    exchange: ExchangeRequest,
    subject_scope: str,
    client: Client,
    target: Resource,
    admin_scopes: frozenset[str],
) -> tuple[str, ...]:
    """The canonical scopes of the exchanged token: those asked for (default: every one the
    app may have) of the target that the subject token has too. The subject token's `scope`
    claim names its scopes without their audience (`scope_claim`), so they compare by name:
    an exchange never adds a scope the user did not grant, nor one the app may not ask for."""
    held = set(subject_scope.split())
    try:
        if exchange.scope:
            resolved = [resolve_scope(t, [target], target.audience) for t in exchange.scope]
        else:
            resolved = [resolve_scope(s, [target], target.audience) for s in target.scopes]
    except UnknownScope:
        raise errors.InvalidScope("unknown scope of the target resource") from None
    if any(r.audience != target.audience or r.scope in OIDC_SCOPES for r in resolved):
        raise errors.InvalidScope("ask only for scopes of the target resource")
    usable = [
        r.canonical for r in resolved if r.scope in held and r.canonical in client.allowed_scopes
    ]
    if exchange.scope and len(usable) != len(resolved):
        raise errors.InvalidScope(
            "the scope is wider than the subject token's or than this app may ask for"
        )
    scopes = tuple(dict.fromkeys(usable))
    if not scopes:
        raise errors.InvalidScope("the subject token and this app share no scope of the target")
    if not admin_scopes.isdisjoint(scopes):
        raise errors.InvalidScope("the admin scope is never exchanged")
    return scopes


def actor_claim(subject: Mapping[str, Any], client: Client) -> dict[str, Any] | None:
    """§4.1: the exchanging app acts for the subject; the subject token's own `act` (a prior
    actor) is nested inside. An app an administrator allowed to impersonate adds none."""
    prior = subject.get("act")
    prior = dict(prior) if isinstance(prior, Mapping) else None
    if client.token_exchange_impersonation:
        return prior
    act: dict[str, Any] = {"sub": client.client_id}
    if prior is not None:
        act["act"] = prior
    return act


def exchanged_lifetime(app_lifetime: int, subject_exp: float, now: datetime) -> int:
    """The app's lifetime for the target, never past the subject token's `exp`."""
    left = int(subject_exp - now.timestamp())
    return max(1, min(app_lifetime, left))


class TokenExchangeGrant:
    def __init__(
        self,
        store: Store,
        minter: TokenMinter,
        revocations: RevocationState,
        list_resources: Callable[[], list[Resource]],
        admin_scopes: frozenset[str],
    ) -> None:
        self._store = store
        self._minter = minter
        self._revocations = revocations
        self._list_resources = list_resources
        self._admin_scopes = admin_scopes

    def handle(self, request: TokenRequest) -> TokenResponse:
        client, now = request.client, request.now
        exchange = parse_exchange(request.form)
        if client.is_public or not client.token_exchange_audiences:
            raise errors.UnauthorizedClient("an administrator has not let this app exchange tokens")
        issuer = self._minter.issuer
        subject = check_subject(
            exchange.subject_token, client, issuer, self._revocations, now, request.dpop_jkt
        )
        target = target_resource(exchange, client, self._list_resources())
        scopes = exchanged_scopes(
            exchange, str(subject.get("scope", "")), client, target, self._admin_scopes
        )
        lifetime, alg = self._minter.lifetime(client, target)
        lifetime = exchanged_lifetime(lifetime, float(subject["exp"]), now)
        grant = self._record(request, subject, target, scopes, lifetime)
        auth_time = subject.get("auth_time")
        directory = self._minter.memberships.for_user(target, grant.user_id)
        spec = AccessTokenSpec(
            subject=grant.user_id,
            sub_type="user",
            client_id=client.client_id,
            audience=target.audience,
            scope=scope_claim(scopes, target.audience),
            lifetime=lifetime,
            alg=alg,
            grant_id=grant.grant_id,
            auth_time=int(auth_time) if isinstance(auth_time, int | float) else None,
            user_display_name=_text(subject.get("user_displayname")),
            amr=grant.amr,
            jkt=request.dpop_jkt,
            act=actor_claim(subject, client),
            roles=directory.roles,
            groups=directory.groups,
        )
        return self._minter.exchanged(request, spec)

    def _record(
        self,
        request: TokenRequest,
        subject: Mapping[str, Any],
        target: Resource,
        scopes: tuple[str, ...],
        lifetime: int,
    ) -> Grant:
        """The exchange as a grant of the app, written in one unit of work with the user's
        cut-off check (docs/security.md rule 31's serialisation): a revocation of the user is
        either seen here, or lists and revokes this grant after it is written."""
        now = request.now
        user_id = str(subject["sub"])
        auth_time = subject.get("auth_time")
        amr = subject.get("amr")
        grant = Grant(
            grant_id=new_id("g_"),
            client_id=request.client.client_id,
            user_id=user_id,
            scopes=scopes,
            audience=target.audience,
            auth_time=(
                datetime.fromtimestamp(auth_time, UTC)
                if isinstance(auth_time, int | float)
                else now
            ),
            created_at=now,
            absolute_expiry=now + timedelta(seconds=lifetime),
            amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        )
        iat = subject.get("iat")
        issued_at = datetime.fromtimestamp(iat if isinstance(iat, int | float) else 0, UTC)
        with self._store.transaction() as work:
            user = start_user_grant(work, grant, None, cut_off_at=issued_at)
        if isinstance(user, Refusal):
            raise errors.InvalidRequest("subject_token's user is revoked or no longer active")
        return grant


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
