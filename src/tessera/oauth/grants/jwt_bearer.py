"""The JWT bearer authorization grant: RFC 7523 §2.1 (`grant_type`
`urn:ietf:params:oauth:grant-type:jwt-bearer` with an `assertion`), §3 (the rules of the JWT)
and §3.1 (`invalid_grant`); RFC 7521 §4.1; docs/security.md rule 55. Oracle Integration calls
it "JWT user assertion".

A partner system that the domain's administrators trust (`TrustedIssuer`: its `iss`, its
public keys, the apps that may present its assertions, the scopes their tokens may carry)
signs a short-lived JWT naming a user of the domain in `sub` (a user id or a user name). An
app presents it, authenticated as usual (a secret, or its own `private_key_jwt` assertion, RFC
7523 §2.2, in the same request), and gets an access token for that user (`sub_type: user`,
the app's `client_id`), with the scopes asked for that the app, the issuer and the domain all
allow; no refresh token (the partner signs a new assertion instead) and no ID token (nobody
signed in here). Each token is recorded as a grant, so revoking the user or the app reaches it.

Checks and their answers: the assertion itself (signature by a key of the trusted issuer,
`aud`, `exp` within five minutes, `iat`/`nbf`, `jti` once) and its user → `invalid_grant`; an
app the issuer does not name, or a public app → `unauthorized_client`; scopes → `invalid_scope`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from joserfc.jwk import KeySet

from tessera.domain.hashing import new_id
from tessera.domain.model import Client, Grant, Resource, TrustedIssuer, User
from tessera.oauth import errors
from tessera.oauth.authorize import check_scope
from tessera.oauth.client_assertion import (
    AssertionRefused,
    KeySource,
    check_assertion_jwt,
    unverified_claims,
    use_assertion_jti,
)
from tessera.oauth.client_jwks import JwksFetcher, JwksUnavailable, parse_jwks
from tessera.oauth.grant_types import JWT_BEARER
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse
from tessera.oauth.grants.user_grant import Refusal, start_user_grant
from tessera.store.protocols import Store

__all__ = [
    "JWT_BEARER",
    "MAX_ISSUER",
    "MAX_SUBJECT",
    "IssuerKeys",
    "JwtBearerGrant",
    "check_app_allowed",
    "granted_scopes",
    "verify_user_assertion",
]

MAX_SUBJECT = 256
MAX_ISSUER = 1024  # as long as a trusted issuer may be
_REPLAY_KIND = "user-assertion"  # a trusted issuer's jti never collides with a client's
_REFUSED = "the assertion is not valid"  # public words; the reason goes to the audit log


class IssuerKeys:
    """The keys of trusted issuers: an inline `jwks` parsed once per version of the issuer, a
    `jwks_uri` through the node's `JwksFetcher` (timeout, size limit, no redirects, refetch on
    an unknown `kid` at most every few seconds), as for apps' `private_key_jwt` keys."""

    def __init__(self, fetcher: JwksFetcher) -> None:
        self._fetcher = fetcher
        self._inline: dict[tuple[str, datetime], KeySet] = {}
        self._lock = threading.Lock()

    def __call__(self, issuer: TrustedIssuer) -> KeySource:
        if issuer.jwks_uri is not None:
            uri = issuer.jwks_uri
            # An administrator registered it: like an administrator's app, it may name an
            # internal host (a partner on the private network).
            return lambda refresh: self._fetcher.keys(uri, refresh=refresh)
        key = (issuer.id, issuer.updated_at)
        with self._lock:
            found = self._inline.get(key)
        if found is None:
            try:
                found = parse_jwks(orjson.loads(issuer.jwks or ""))
            except (JwksUnavailable, orjson.JSONDecodeError) as exc:
                raise AssertionRefused(f"the issuer's jwks cannot be used: {exc}") from None
            with self._lock:
                if len(self._inline) > 4096:
                    self._inline.clear()
                self._inline[key] = found
        return found


def verify_user_assertion(
    assertion: str,
    *,
    find_issuer: Callable[[str], TrustedIssuer | None],
    keys_of: Callable[[TrustedIssuer], KeySource],
    audiences: Collection[str],
    now: int,
    max_lifetime: int = 300,
    leeway: int = 30,
) -> tuple[TrustedIssuer, dict[str, Any], int]:
    """RFC 7523 §3 for an authorization grant: the trusted issuer named by `iss` (item 1, an
    exact string match), its signature (item 9, an asymmetric algorithm only), `aud` among
    `audiences` (item 3), `exp` at most `max_lifetime` ahead and `iat`/`nbf` (items 4-6), a
    `sub` (item 2). Returns the issuer, the claims and the last second the `jti` must be kept
    (`use_assertion_jti`, left to the caller: a refused request burns no `jti`). Raises
    `AssertionRefused`."""
    unverified = unverified_claims(assertion)
    if unverified is None:
        raise AssertionRefused("the assertion is not a compact JWS with a JSON payload")
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not 0 < len(iss) <= MAX_ISSUER:
        raise AssertionRefused("the assertion has no iss, or one no trusted issuer can have")
    trusted = find_issuer(iss)
    if trusted is None:
        raise AssertionRefused("the assertion's iss is not a trusted issuer of this domain")
    claims, until = check_assertion_jwt(
        assertion,
        keys=keys_of(trusted),
        audiences=audiences,
        now=now,
        max_lifetime=max_lifetime,
        leeway=leeway,
    )
    if claims.get("iss") != trusted.issuer:  # the signed value, not only the one we read
        raise AssertionRefused("the assertion's iss is not the trusted issuer")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT:
        raise AssertionRefused("the assertion has no sub")
    return trusted, claims, until


def check_app_allowed(trusted: TrustedIssuer, client: Client) -> None:
    """Only a confidential app the issuer names may present its assertions."""
    if client.is_public:
        raise errors.UnauthorizedClient("a public app cannot present user assertions")
    if client.client_id not in trusted.allowed_apps:
        raise errors.UnauthorizedClient("this app may not present this issuer's assertions")


def granted_scopes(
    form: Mapping[str, str],
    client: Client,
    trusted: TrustedIssuer,
    resources: Sequence[Resource],
    admin_scopes: frozenset[str],
) -> tuple[tuple[str, ...], str | None]:
    """The scopes asked for (`scope`, optionally with RFC 8707 `resource`), each allowed to the
    app (resolved as at the authorization endpoint: one resource at most) and to the issuer
    (its list; empty: what the app may ask for); never the admin API's. Returns the canonical
    scopes and the audience."""
    scopes, audience = check_scope(form, client, resources)
    if trusted.allowed_scopes:
        wider = [s for s in scopes if s not in trusted.allowed_scopes]
        if wider:
            raise errors.InvalidScope(f"the issuer's assertions may not grant {wider[0]}")
    if not admin_scopes.isdisjoint(scopes):
        # A partner's assertion is no administrator's sign-in.
        raise errors.InvalidScope("the admin scope needs an administrator's sign-in")
    return scopes, audience


def _find_user(store: Store, subject: str) -> User | None:
    """`sub` is a user id or, failing that, a user name (Oracle's assertions name users)."""
    return store.users.get(subject) or store.users.get_by_username(subject)


class JwtBearerGrant:
    def __init__(
        self,
        store: Store,
        minter: TokenMinter,
        *,
        audiences: Collection[str],
        use_once: Callable[[str, datetime, datetime], bool],
        keys_of: Callable[[TrustedIssuer], KeySource],
        list_resources: Callable[[], list[Resource]],
        admin_scopes: frozenset[str],
        max_lifetime: int = 300,
    ) -> None:
        self._store = store
        self._minter = minter
        self._audiences = audiences
        self._use_once = use_once
        self._keys_of = keys_of
        self._list_resources = list_resources
        self._admin_scopes = admin_scopes
        self._max_lifetime = max_lifetime

    def handle(self, request: TokenRequest) -> TokenResponse:
        assertion = request.form.get("assertion")
        if not assertion:
            raise errors.InvalidRequest("assertion is required")  # RFC 7523 §2.1
        now = request.now
        try:
            trusted, claims, until = verify_user_assertion(
                assertion,
                find_issuer=self._store.trusted_issuers.find,
                keys_of=self._keys_of,
                audiences=self._audiences,
                now=int(now.timestamp()),
                max_lifetime=self._max_lifetime,
            )
        except AssertionRefused as exc:
            raise errors.InvalidGrant(_REFUSED, debug=exc.reason) from None
        check_app_allowed(trusted, request.client)
        scopes, audience = granted_scopes(
            request.form, request.client, trusted, self._list_resources(), self._admin_scopes
        )
        user = _find_user(self._store, claims["sub"])
        if user is None or not user.active:
            raise errors.InvalidGrant(_REFUSED, debug="the sub is no active user of the domain")
        try:  # last: a refused request burns no jti
            use_assertion_jti(
                claims,
                trusted.issuer,
                until,
                lambda key, end: self._use_once(key, datetime.fromtimestamp(end, UTC), now),
                _REPLAY_KIND,
            )
        except AssertionRefused as exc:
            raise errors.InvalidGrant(_REFUSED, debug=exc.reason) from None
        lifetime, _ = self._minter.lifetime(request.client, self._minter.resource(audience))
        grant = Grant(
            grant_id=new_id("g_"),
            client_id=request.client.client_id,
            user_id=user.id,
            scopes=scopes,
            audience=audience,
            auth_time=now,
            created_at=now,
            # No refresh family: the grant lives as long as its one access token.
            absolute_expiry=now + timedelta(seconds=lifetime),
            amr=(),  # nobody signed in here: the token claims no acr, amr or auth_time
        )
        with self._store.transaction() as work:
            # Uncached, in the transaction that records the grant: a user disabled a moment
            # ago gets nothing, and a revocation of the user lists this grant or follows it.
            current = start_user_grant(work, grant, None, cut_off_at=None)
        if isinstance(current, Refusal):  # no cut-off is checked: the user is inactive
            raise errors.InvalidGrant(_REFUSED, debug="the user was disabled meanwhile")
        return self._minter.for_user(request, grant, current, None, None, signed_in=False)
