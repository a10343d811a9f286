"""Client authentication at every endpoint that authenticates apps: token, introspection,
revocation, pushed authorization requests and the revocation feed.

RFC 6749 §2.3.1 (`client_secret_basic` with form-urlencoded id and secret, `client_secret_post`),
§2.3 (a client MUST NOT use more than one method), §3.2.1 (public clients identify themselves
with `client_id`); RFC 7521 §4.2 and RFC 7523 §2.2 (`client_assertion`: `private_key_jwt` and
`client_secret_jwt`, OIDC Core §9). Secrets are compared in constant time against their keyed
hashes; during a rotation the previous secret works until its expiry.

The app's `token_endpoint_auth_method` decides (RFC 7591 §2): an app registered for a JWT
method authenticates only with an assertion, never with its secret, and an assertion never
authenticates an app registered for a secret. The two ways of sending a secret
(`client_secret_basic`, `client_secret_post`) are one credential and both are accepted for an
app of either (docs/client-authentication.md).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote_plus

import orjson
from joserfc.jwk import KeySet

from tessera.domain.client_secrets import open_secret
from tessera.domain.hashing import keyed_hash
from tessera.domain.model import Client
from tessera.oauth.client_assertion import (
    AssertionRefused,
    KeySource,
    client_id_of_assertion,
    verify_client_assertion,
)
from tessera.oauth.client_jwks import JwksFetcher, JwksUnavailable, parse_jwks
from tessera.oauth.errors import InvalidClient, InvalidClientAssertion, InvalidRequest
from tessera.oauth.fapi2 import FAPI2, FAPI2_SIGNING_ALGS

__all__ = [
    "ASSERTION_TYPE",
    "JWT_METHODS",
    "AssertionCheck",
    "authenticate_client",
    "parse_basic",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
JWT_METHODS = frozenset({"private_key_jwt", "client_secret_jwt"})

_MAX = 512


# The same public words for every failure: a caller learns nothing about which apps exist.
_BAD = "unknown client or bad credentials"


def parse_basic(authorization: str) -> tuple[str, str]:
    """Decode `Basic base64(urlencode(id):urlencode(secret))`; `InvalidClient` if malformed."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise InvalidClient("unsupported client authentication scheme; use Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII input, bad UTF-8
        raise InvalidClient("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not sep or "\x00" in client_id or "\x00" in secret:
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


def _secret_ok(client: Client, secret: str, pepper: bytes, now: datetime) -> bool:
    presented = keyed_hash(pepper, secret)
    ok = False
    for stored in client.secret_hashes:
        live = stored.expires_at is None or stored.expires_at > now
        # Compare against every stored hash so the time does not depend on which one matched.
        ok |= hmac.compare_digest(presented, stored.hash) and live
    return ok


@dataclass(slots=True)
class AssertionCheck:
    """What verifying client assertions needs in one identity domain: the `aud` values that
    name it (its issuer and its endpoints' URLs, RFC 7523 §3 item 3), the replay state shared
    by every node (`NonceStore.use_once`), and the node's fetcher of `jwks_uri`s."""

    issuer: str
    audiences: frozenset[str]
    use_once: Callable[[str, datetime, datetime], bool]
    fetcher: JwksFetcher
    # An app's inline `jwks` parsed once per version of the app.
    _inline: dict[tuple[str, int], KeySet] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keys_of(self, client: Client) -> KeySource:
        if client.jwks_uri is not None:
            uri = client.jwks_uri
            # An app that registered itself may not point us at internal addresses (SSRF).
            public_only = client.registration_token_hash is not None
            return lambda refresh: self.fetcher.keys(uri, refresh=refresh, public_only=public_only)
        if client.jwks is None:
            raise AssertionRefused("the app has registered no keys (jwks or jwks_uri)")
        cache_key = (client.client_id, client.version)
        with self._lock:
            found = self._inline.get(cache_key)
        if found is None:
            try:
                found = parse_jwks(orjson.loads(client.jwks))
            except (JwksUnavailable, orjson.JSONDecodeError) as exc:
                raise AssertionRefused(f"the app's jwks cannot be used: {exc}") from None
            with self._lock:
                if len(self._inline) > 4096:
                    self._inline.clear()
                self._inline[cache_key] = found
        return found


def _allowed_algs(client: Client) -> frozenset[str] | None:
    if client.token_endpoint_auth_signing_alg is not None:
        return frozenset({client.token_endpoint_auth_signing_alg})
    if client.profile == "fapi2":
        return FAPI2_SIGNING_ALGS  # FAPI 2.0 Security Profile §5.4.1
    return None


def _live_secrets(client: Client, pepper: bytes, now: datetime) -> list[bytes]:
    opened = [
        open_secret(pepper, client.client_id, stored.sealed)
        for stored in client.secret_hashes
        if stored.sealed is not None and (stored.expires_at is None or stored.expires_at > now)
    ]
    return [secret for secret in opened if secret is not None]


def _by_assertion(
    form: Mapping[str, str],
    lookup: Callable[[str], Client | None],
    pepper: bytes,
    now: datetime,
    check: AssertionCheck | None,
) -> Client:
    """RFC 7521 §4.2: `client_assertion_type` and `client_assertion`; `client_id` optional."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise InvalidClientAssertion(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise InvalidRequest("client_assertion is required with client_assertion_type")
    if check is None:
        raise InvalidClientAssertion("client assertions are not accepted here")
    client_id = form.get("client_id") or client_id_of_assertion(assertion)
    if not client_id or len(client_id) > _MAX:
        raise InvalidClientAssertion(_BAD, debug="the assertion names no client (iss = sub)")
    client = lookup(client_id)
    if client is None:
        raise InvalidClientAssertion(_BAD, debug="no app has this client_id")
    method = client.auth_method
    if method not in JWT_METHODS:
        reason = f"the app authenticates with {method}, not an assertion"
        raise InvalidClientAssertion(_BAD, debug=reason)
    try:
        if method == "private_key_jwt":
            keys: KeySource | None = check.keys_of(client)
            secrets = None
        else:
            keys, secrets = None, _live_secrets(client, pepper, now)
        verify_client_assertion(
            assertion,
            client_id=client.client_id,
            audiences=check.audiences,
            now=int(now.timestamp()),
            use_jti=lambda key, until: check.use_once(key, datetime.fromtimestamp(until, UTC), now),
            keys=keys,
            secret=secrets,
            allowed_algs=_allowed_algs(client),
            exact_audience=check.issuer if client.profile == FAPI2 else None,
        )
    except AssertionRefused as exc:
        raise InvalidClientAssertion(_BAD, debug=f"{method}: {exc.reason}") from None
    return client


def authenticate_client(
    authorization: str | None,
    form: Mapping[str, str],
    lookup: Callable[[str], Client | None],
    pepper: bytes,
    now: datetime,
    *,
    allow_public: bool = True,
    assertions: AssertionCheck | None = None,
) -> Client:
    """Return the authenticated client or raise `InvalidClient` / `InvalidRequest`.

    `assertions` enables `private_key_jwt` and `client_secret_jwt`; without it an assertion is
    refused (an endpoint that cannot record a `jti` must not accept one)."""
    if "client_assertion" in form or "client_assertion_type" in form:
        if authorization is not None or "client_secret" in form:
            raise InvalidRequest("use one client authentication method, not several")
        return _by_assertion(form, lookup, pepper, now, assertions)
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    if authorization is not None:
        if form_secret is not None:
            raise InvalidRequest("use one client authentication method, not Basic and the body")
        client_id, secret = parse_basic(authorization)
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id in the body differs from the Basic credentials")
    elif form_id is not None:
        client_id, secret = form_id, form_secret  # type: ignore[assignment]
    else:
        raise InvalidClient("client authentication is required")
    if not client_id or len(client_id) > _MAX or (secret is not None and len(secret) > _MAX):
        raise InvalidClient(_BAD, debug="an empty or overlong client_id or secret")
    found = lookup(client_id)
    if found is None:
        raise InvalidClient(_BAD, debug="no app has this client_id")
    client = found
    if client.is_public:
        if secret:
            raise InvalidClient("a public app has no secret")
        if not allow_public:
            raise InvalidClient("this endpoint needs a confidential app's credentials")
        return client
    if client.auth_method in JWT_METHODS:
        # RFC 7591 §2: the registered method is the only one; a secret is no fallback. The
        # public words stay the same as for an unknown app.
        raise InvalidClient(_BAD, debug=f"a secret for a {client.auth_method} app")
    if secret is None:
        raise InvalidClient("client authentication is required")
    if not _secret_ok(client, secret, pepper, now):
        raise InvalidClient(_BAD, debug="the secret matches none of the app's live secrets")
    return client
