"""The browser's round trip through an upstream OpenID provider (docs/federation.md, "The round
trip"; docs/security.md rule 65).

`begin` builds the authorization request (OIDC Core §3.1.2.1, the code flow; PKCE S256, RFC
7636 §4.1-§4.3; a fresh `state`, RFC 6749 §10.12, and `nonce`, OIDC Core §15.5.2) and the
`FederationRequest` that remembers it. The web seals the request into a cookie
(`seal_request`: AES-256-GCM, `tessera.shared.sealing`, so the browser can neither read nor
change it; ten minutes). At the callback `check_response` checks the authorization response
before its code is used, and `complete` uses `state` once, redeems the code, validates the ID
token and maps the claims.

The mix-up defences (RFC 9700 §4.4.2, RFC 9207 §2.4): each provider has its own redirect URI,
so a response arriving at provider B's callback with a request made for provider A is refused;
the `iss` parameter, when sent, must be the provider's issuer, and must be sent when the
provider says it sends it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from tessera.domain.model import UpstreamProvider
from tessera.oauth.authorize import redirect_with
from tessera.oauth.federation.accounts import UpstreamClaims, map_claims
from tessera.oauth.federation.errors import UpstreamError, clipped
from tessera.oauth.federation.id_token import validate_id_token
from tessera.oauth.federation.metadata import ProviderMetadata, UpstreamClient
from tessera.oauth.federation.secrets import Credentials
from tessera.oauth.pkce import s256
from tessera.shared.jwt_parts import is_numeric_date
from tessera.shared.sealing import Sealer, SealError
from tessera.store.protocols import Store

__all__ = [
    "COOKIE_NAME",
    "COOKIE_PATH",
    "PURPOSES",
    "REQUEST_LIFETIME",
    "TEST_TICKET_LIFETIME",
    "TEST_TICKET_PURPOSE",
    "FederationRequest",
    "Purpose",
    "begin",
    "check_response",
    "complete",
    "open_request",
    "open_test_ticket",
    "seal_request",
    "seal_test_ticket",
]

Purpose = Literal["sign-in", "link", "test"]
PURPOSES: frozenset[str] = frozenset({"sign-in", "link", "test"})
REQUEST_LIFETIME = timedelta(minutes=10)
COOKIE_NAME = "tessera_federation"
COOKIE_PATH = "/oauth2/v1/federation"  # the federation routes' common path, and their cookie's
_REQUEST_AD = b"federation request"
_MAX_SEALED = 8192  # characters of a sealed request or ticket we try to open
_MAX_CODE = 4096
_MAX_LOGIN_HINT = 256
# The registered error codes' shape (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6): only such a code
# is shown on the page; anything else the upstream sent stays in the detail.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_START_AGAIN = "Start the sign-in again."


@dataclass(frozen=True, slots=True)
class FederationRequest:
    """One authorization request to an upstream provider, as the callback must find it:
    sealed in the browser's cookie. `authz`: the downstream authorization request the
    sign-in page had (sealed by the web), to resume after the sign-in; `user_id`: the
    signed-in user who links (purpose `link`) or the administrator who tests (`test`);
    `prompt_login`, `max_age`: the downstream request's (OIDC Core §3.1.2.1), passed upstream
    and checked against the ID token's `auth_time` (`complete`)."""

    provider_id: str
    provider_name: str
    purpose: Purpose
    state: str
    nonce: str
    code_verifier: str
    expires_at: datetime
    authz: str | None = None
    user_id: str | None = None
    prompt_login: bool = False
    max_age: int | None = None


def _scope(provider: UpstreamProvider) -> str:
    """`openid` first (OIDC Core §3.1.2.1: required), then the provider's others, once each."""
    return " ".join(dict.fromkeys(("openid", *provider.scopes)))


def begin(
    provider: UpstreamProvider,
    metadata: ProviderMetadata,
    *,
    redirect_uri: str,
    purpose: Purpose,
    now: datetime,
    authz: str | None = None,
    user_id: str | None = None,
    login_hint: str | None = None,
    prompt_login: bool = False,
    max_age: int | None = None,
) -> tuple[str, FederationRequest]:
    """The upstream authorization URL (OIDC Core §3.1.2.1: `response_type=code`, `client_id`,
    `redirect_uri`, `scope`, `state`, `nonce`; RFC 7636 §4.3 `code_challenge` S256;
    `login_hint` when given; `prompt=login` and `max_age` when the downstream request asked
    for a fresh authentication) and the request to seal. `state`, `nonce` and the verifier are
    256-bit random values (43 characters); the request lives ten minutes."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if purpose in ("link", "test") and user_id is None:
        raise ValueError(f"a {purpose} request needs the user id")
    req = FederationRequest(
        provider_id=provider.id,
        provider_name=provider.name,
        purpose=purpose,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(32),  # RFC 7636 §4.1: 43 to 128 characters
        expires_at=(now + REQUEST_LIFETIME).replace(microsecond=0),  # as sealed: whole seconds
        authz=authz,
        user_id=user_id,
        prompt_login=prompt_login,
        max_age=max_age,
    )
    params = [
        ("response_type", "code"),
        ("client_id", provider.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", _scope(provider)),
        ("state", req.state),
        ("nonce", req.nonce),
        ("code_challenge", s256(req.code_verifier)),
        ("code_challenge_method", "S256"),
    ]
    if login_hint and len(login_hint) <= _MAX_LOGIN_HINT and login_hint.isprintable():
        params.append(("login_hint", login_hint))  # OIDC Core §3.1.2.1
    if prompt_login:
        params.append(("prompt", "login"))
    if max_age is not None:
        params.append(("max_age", str(max_age)))
    # RFC 6749 §3.1: the endpoint's own query is kept, ours added.
    return redirect_with(metadata.authorization_endpoint, dict(params)), req


# --- the sealed cookie -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_SEALED:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def seal_request(key: bytes, req: FederationRequest) -> str:
    """The request sealed for the `tessera_federation` cookie (base64url of a `Sealer` box,
    associated data `b"federation request"`; `key` one of the domain's derived keys)."""
    data = {
        "p": req.provider_id,
        "n": req.provider_name,
        "u": req.purpose,
        "s": req.state,
        "o": req.nonce,
        "v": req.code_verifier,
        "e": int(req.expires_at.timestamp()),
        "a": req.authz,
        "i": req.user_id,
        "l": req.prompt_login,
        "m": req.max_age,
    }
    return _b64(Sealer(key).seal(orjson.dumps(data), _REQUEST_AD))


def _opened(key: bytes, sealed: str, associated: bytes) -> dict[str, Any] | None:
    raw = _unb64(sealed)
    if raw is None:
        return None
    try:
        data = orjson.loads(Sealer(key).open(raw, associated))
    except (SealError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def open_request(key: bytes, sealed: str, now: datetime) -> FederationRequest | None:
    """The request of `seal_request`; None when it does not open (altered, another key) or
    has expired."""
    data = _opened(key, sealed, _REQUEST_AD)
    if data is None:
        return None
    purpose, authz, user_id = data.get("u"), data.get("a"), data.get("i")
    if purpose not in ("sign-in", "link", "test") or not _optional_str(authz, user_id):
        return None
    prompt_login, max_age = data.get("l", False), data.get("m")
    if not isinstance(prompt_login, bool) or not (max_age is None or type(max_age) is int):
        return None
    try:
        req = FederationRequest(
            provider_id=str(data["p"]),
            provider_name=str(data["n"]),
            purpose=purpose,
            state=str(data["s"]),
            nonce=str(data["o"]),
            code_verifier=str(data["v"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
            authz=authz,
            user_id=user_id,
            prompt_login=prompt_login,
            max_age=max_age,
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return req if req.expires_at > now else None


def _optional_str(*values: Any) -> bool:
    return all(value is None or isinstance(value, str) for value in values)


# --- the callback ------------------------------------------------------------------------------


def _upstream_error(provider: UpstreamProvider, params: Mapping[str, str]) -> UpstreamError:
    """RFC 6749 §4.1.2.1: the provider answered with an error. Its code is shown only when it
    is a plain one; its description (upstream-controlled text) goes to the detail only."""
    error = params.get("error", "")
    code = error if _ERROR_CODE.fullmatch(error) else "invalid"
    description = clipped(params.get("error_description", ""))
    detail = f"the provider answered {clipped(error, 64)}: {description}"
    if code == "access_denied":
        return UpstreamError(f"You cancelled the sign-in at {provider.display_name}.", detail)
    if code in ("login_required", "interaction_required", "consent_required"):
        return UpstreamError(
            f"{provider.display_name} needs you to sign in there first. {_START_AGAIN}", detail
        )
    return UpstreamError(
        f"{provider.display_name} did not sign you in (error {code}). {_START_AGAIN}", detail
    )


def check_response(
    req: FederationRequest,
    provider: UpstreamProvider,
    metadata: ProviderMetadata,
    params: Mapping[str, str],
    *,
    provider_name_in_path: str,
) -> str:
    """The authorization response's checks before its code is used; returns the code.

    In order: the request was made for the provider of this callback (RFC 9700 §4.4.2: one
    redirect URI per provider), the provider is still enabled (a test may try a disabled
    one), `state` equals the request's (constant time; RFC 6749 §10.12), `iss` equals the
    provider's issuer whenever sent and is required when the metadata says it is sent (RFC
    9207 §2.4; checked before an `error`, which RFC 9207 §2 also covers), then an `error`
    (RFC 6749 §4.1.2.1) and finally a `code` (§4.1.2)."""
    if req.provider_id != provider.id or provider_name_in_path.lower() != provider.name.lower():
        raise UpstreamError(
            f"This sign-in was started with another provider. {_START_AGAIN}",
            f"the request was made for {req.provider_name}, the response came to "
            f"{clipped(provider_name_in_path, 64)}'s callback",
        )
    if not provider.enabled and req.purpose != "test":
        raise UpstreamError(
            f"Signing in with {provider.display_name} is turned off.", "the provider is disabled"
        )
    state = params.get("state")
    if not isinstance(state, str) or not hmac.compare_digest(state.encode(), req.state.encode()):
        raise UpstreamError(
            f"This sign-in response does not belong to this browser. {_START_AGAIN}",
            "the state is missing or is not the request's",
        )
    iss = params.get("iss")
    if iss is not None and iss != provider.issuer:
        raise UpstreamError(
            f"This sign-in response came from another provider. {_START_AGAIN}",
            f"the iss parameter {clipped(iss)} is not {provider.issuer} (RFC 9207 mix-up)",
        )
    if iss is None and metadata.iss_parameter_supported:
        raise UpstreamError(
            f"This sign-in response is incomplete. {_START_AGAIN}",
            "the iss parameter is missing though the provider says it sends it (RFC 9207)",
        )
    if "error" in params:
        raise _upstream_error(provider, params)
    code = params.get("code")
    if not code or len(code) > _MAX_CODE:
        raise UpstreamError(
            f"This sign-in response is incomplete. {_START_AGAIN}", "the response has no code"
        )
    return code


def complete(
    store: Store,
    client: UpstreamClient,
    provider: UpstreamProvider,
    credentials: Credentials,
    req: FederationRequest,
    params: Mapping[str, str],
    *,
    redirect_uri: str,
    now: datetime,
    provider_name_in_path: str | None = None,
) -> UpstreamClaims:
    """The callback's work after the cookie was opened: `check_response` (the provider is
    the one of the callback's path, `provider_name_in_path`, by default `provider.name`),
    `state` used once (a replayed callback is refused), the code redeemed (RFC 6749 §4.1.3),
    the ID token validated (OIDC Core §3.1.3.7; the provider's keys fetched again once for an
    unknown `kid`), the userinfo claims fetched when the provider has the endpoint (§5.3),
    the authentication fresh enough when the request asked (`_check_fresh`), the claims
    mapped. Raises `UpstreamError`; writes nothing but the used `state`."""
    if req.expires_at <= now:
        raise UpstreamError(f"This sign-in took too long. {_START_AGAIN}", "the request expired")
    metadata = client.metadata(provider.issuer)
    code = check_response(
        req,
        provider,
        metadata,
        params,
        provider_name_in_path=provider_name_in_path or provider.name,
    )
    if not store.nonces.use_once("federation:" + req.state, req.expires_at, now):
        raise UpstreamError(
            f"This sign-in response was used already. {_START_AGAIN}",
            "the state was used before (a replayed callback)",
        )
    tokens = client.token(
        metadata,
        provider,
        credentials,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=req.code_verifier,
        now=now,
    )
    claims = validate_id_token(
        tokens["id_token"],
        lambda refresh: client.keys(metadata, refresh=refresh),
        issuer=provider.issuer,
        client_id=provider.client_id,
        nonce=req.nonce,
        now=now,
        allowed_algs=metadata.id_token_signing_alg_values_supported,
        access_token=tokens["access_token"],
    )
    _check_fresh(req, claims.get("auth_time"), now)
    userinfo = None
    if metadata.userinfo_endpoint is not None:
        userinfo = client.userinfo(metadata, tokens["access_token"], claims["sub"])
    mapped = map_claims(provider, claims, userinfo)
    return replace(mapped, auth_time=_as_fresh_as_asked(req, mapped.auth_time, now))


_FRESH_LEEWAY = 60  # seconds, as the ID token's times (`validate_id_token`)


def _check_fresh(req: FederationRequest, auth_time: Any, now: datetime) -> None:
    """OIDC Core §3.1.2.1 and §3.1.3.7 item 13: when the downstream request had `prompt=login`
    or `max_age`, the provider must have authenticated the user since the request started, or
    within `max_age` seconds: its ID token's `auth_time` says when (required then). Else a
    session at the provider would pass for the re-authentication the app, or the account
    page's step-up, asked for. Clocks may differ by `_FRESH_LEEWAY`
    (`_as_fresh_as_asked`)."""
    if not req.prompt_login and req.max_age is None:
        return
    if not is_numeric_date(auth_time):
        raise UpstreamError(
            f"The sign-in provider did not say when you signed in there. {_START_AGAIN}",
            "a fresh sign-in was asked (prompt=login or max_age) and the ID token has no auth_time",
        )
    started = (req.expires_at - REQUEST_LIFETIME).timestamp()
    at, current = float(auth_time), now.timestamp()
    stale = req.prompt_login and at < started - _FRESH_LEEWAY
    stale = stale or (req.max_age is not None and current - at > req.max_age + _FRESH_LEEWAY)
    if stale:
        raise UpstreamError(
            f"The sign-in provider did not ask you to sign in again. {_START_AGAIN}",
            f"a fresh sign-in was asked (prompt=login or max_age) and the ID token's "
            f"auth_time {clipped(auth_time, 20)} is older",
        )


def _as_fresh_as_asked(
    req: FederationRequest, auth_time: float | None, now: datetime
) -> float | None:
    """The provider's `auth_time` for our session: when a fresh sign-in was asked and
    `_check_fresh` accepted one within its leeway, the time the request asked for, so our
    tokens meet the app's own `max_age` check (§3.1.3.7 item 13) — it allows no leeway of ours."""
    if auth_time is None:
        return None
    if req.prompt_login:
        auth_time = max(auth_time, (req.expires_at - REQUEST_LIFETIME).timestamp())
    if req.max_age is not None:
        auth_time = max(auth_time, now.timestamp() - req.max_age)
    return auth_time


# --- the administrator's "try sign-in" ticket -------------------------------------------------

# The web and the admin tools derive the ticket key with `ctx.subkey(TEST_TICKET_PURPOSE)`.
TEST_TICKET_PURPOSE = "federation test ticket"
TEST_TICKET_LIFETIME = timedelta(minutes=10)
_TICKET_AD = b"federation test ticket"


def seal_test_ticket(key: bytes, provider_id: str, admin_id: str, now: datetime) -> str:
    """The `ticket` of a "try sign-in" link (docs/federation.md, "Adding a provider"): it
    binds the provider and the administrator who asked, for ten minutes, sealed (AES-256-GCM)
    so it can be neither read nor forged nor moved to another provider."""
    expires = int((now + TEST_TICKET_LIFETIME).timestamp())
    data = orjson.dumps({"p": provider_id, "a": admin_id, "e": expires})
    return _b64(Sealer(key).seal(data, _TICKET_AD))


def open_test_ticket(key: bytes, sealed: str, now: datetime) -> tuple[str, str] | None:
    """(provider id, administrator id) of a ticket of `seal_test_ticket`; None when it does
    not open or has expired."""
    data = _opened(key, sealed, _TICKET_AD)
    if data is None:
        return None
    provider_id, admin_id, expires = data.get("p"), data.get("a"), data.get("e")
    if not isinstance(provider_id, str) or not isinstance(admin_id, str):
        return None
    if not isinstance(expires, int) or expires <= now.timestamp():
        return None
    return provider_id, admin_id
