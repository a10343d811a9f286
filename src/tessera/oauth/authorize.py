"""The authorization endpoint: RFC 6749 §4.1.1-§4.1.2, OIDC Core §3.1.2, RFC 9207, RFC 8707,
RFC 9449 §10 (`dpop_jkt`).

`validate_authorization_request` runs the endpoint's pipeline of checks in order. The first two
(client, redirect URI) fail with `UnsafeToRedirect`: the user sees an error page and is never
sent to an unvalidated URI (RFC 6749 §4.1.2.1, docs/security.md rule 2). Every later check
fails with an `AuthorizationError`, which is sent to the validated redirect URI with `state`
and `iss`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from tessera.domain.hashing import new_id, new_token, sha256_b64
from tessera.domain.model import AuthorizationCode, Client, Resource
from tessera.domain.redirect_uris import matches_registered
from tessera.domain.scopes import (
    OIDC_SCOPES,
    UnknownScope,
    normalize_audience,
    parse_scope_param,
    resolve_scope,
)
from tessera.oauth import errors
from tessera.oauth.dpop import check_jkt_param
from tessera.oauth.fapi2 import FAPI2
from tessera.oauth.pkce import check_challenge_params
from tessera.shared.urlencoding import encode_pairs
from tessera.store.protocols import CodeStore

__all__ = [
    "AuthorizationError",
    "AuthorizationRequest",
    "UnsafeToRedirect",
    "issue_code",
    "redirect_with",
    "validate_authorization_request",
]

_PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_MAX_PARAM = 2048


class UnsafeToRedirect(Exception):
    """The client or redirect URI cannot be trusted: show an error page, never redirect."""

    def __init__(self, title: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.hint = hint  # what the user can do


class AuthorizationError(Exception):
    """An error to send to the validated redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: errors.OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]  # canonical: OIDC scopes and <audience><scope>
    audience: str | None
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    acr_values: tuple[str, ...] = ()  # OIDC Core §3.1.2.1, or the `claims` parameter's acr
    acr_essential: bool = False  # §5.5.1.1: an essential acr claim is not met silently
    dpop_jkt: str | None = None  # RFC 9449 §10: the code is redeemed only with this key

    @property
    def resource_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.scopes if s not in OIDC_SCOPES)


# --- the checks, in pipeline order -------------------------------------------------------------


def check_client(params: Mapping[str, str], lookup: Callable[[str], Client | None]) -> Client:
    client_id = params.get("client_id")
    if not client_id:
        raise UnsafeToRedirect("Missing application", "The request does not name an application.")
    client = lookup(client_id) if len(client_id) <= 256 else None
    if client is None:
        raise UnsafeToRedirect(
            "Unknown application", "The application that sent you here is not registered."
        )
    return client


def check_redirect_uri(params: Mapping[str, str], client: Client) -> str:
    """RFC 9700 §4.1.3: exact match; optional when exactly one URI is registered."""
    given = params.get("redirect_uri")
    if given is None:
        if len(client.redirect_uris) == 1:
            return client.redirect_uris[0]
        raise UnsafeToRedirect(
            "Missing redirect URI", "The application did not say where to send you back."
        )
    if len(given) > 2000 or not matches_registered(
        given, client.redirect_uris, native=client.is_public
    ):
        raise UnsafeToRedirect(
            "Invalid redirect URI",
            "The application asked to send you to an address it has not registered.",
        )
    return given


def check_unsupported(params: Mapping[str, str]) -> None:
    # OIDC Core §6: request objects are not supported; never fetch a request_uri (SSRF).
    if "request" in params:
        raise errors.RequestNotSupported("request objects are not supported")
    if "request_uri" in params:
        raise errors.RequestUriNotSupported("request_uri is not supported")


def check_pushed(client: Client, *, pushed: bool, par_required: bool) -> None:
    """RFC 9126 §6: an app (or a domain) that requires pushed authorization requests refuses
    the others; FAPI 2.0 Security Profile §5.3.2.2 item 2 requires them (`Client.requires_par`)."""
    if not pushed and (par_required or client.requires_par):
        raise errors.InvalidRequest("this app must push its authorization requests (PAR) first")


def check_response_type(params: Mapping[str, str], client: Client) -> None:
    response_type = params.get("response_type")
    if not response_type:
        raise errors.InvalidRequest("response_type is required")
    if response_type != "code":
        # RFC 9700 §2.1.2: no implicit or hybrid flows; nothing returns a token here.
        raise errors.UnsupportedResponseType("only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise errors.UnauthorizedClient("this app may not use the authorization code grant")
    mode = params.get("response_mode")
    if mode is not None and mode != "query":
        raise errors.InvalidRequest("only response_mode=query is supported")


def check_scope(
    params: Mapping[str, str], client: Client, resources: Sequence[Resource]
) -> tuple[tuple[str, ...], str | None]:
    """Resolve the requested scopes; all must be allowed for the app; one audience at most."""
    try:
        tokens = parse_scope_param(params.get("scope"))
    except ValueError as exc:
        raise errors.InvalidScope(str(exc)) from None
    if not tokens:
        raise errors.InvalidScope("scope is required")
    resource = params.get("resource")
    if resource is not None:
        # RFC 8707 §2: the token is for the named resource only, so only its scopes resolve
        # (as at the token endpoint); an Oracle-form scope of another audience is unknown here.
        wanted = normalize_audience(resource)
        resources = [r for r in resources if normalize_audience(r.audience) == wanted]
        if not resources:
            raise errors.InvalidTarget("resource is not a registered audience")
    canonical: list[str] = []
    audiences: set[str] = set()
    for token in tokens:
        try:
            resolved = resolve_scope(token, resources, resource)
        except UnknownScope:
            raise errors.InvalidScope(f"unknown scope {token}") from None
        if resolved.canonical not in client.allowed_scopes:
            raise errors.InvalidScope(f"the app may not ask for {token}")
        if resolved.audience is not None:
            audiences.add(resolved.audience)
        canonical.append(resolved.canonical)
    if len(audiences) > 1:
        raise errors.InvalidTarget("ask for the scopes of one resource at a time")
    return tuple(dict.fromkeys(canonical)), next(iter(audiences), None)


def check_prompt(params: Mapping[str, str]) -> tuple[frozenset[str], int | None]:
    prompt = frozenset(params.get("prompt", "").split())
    if not prompt <= _PROMPTS:
        raise errors.InvalidRequest("unsupported prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise errors.InvalidRequest("prompt=none cannot be combined")  # OIDC Core §3.1.2.1
    max_age = params.get("max_age")
    if max_age is None:
        return prompt, None
    # ASCII only: `str.isdigit` accepts '²', which `int` refuses (a 500 instead of the error).
    if not (max_age.isascii() and max_age.isdigit()) or len(max_age) > 9:
        raise errors.InvalidRequest("max_age must be a number of seconds")
    return prompt, int(max_age)


def check_acr(params: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    """The requested authentication context: `acr_values` (OIDC Core §3.1.2.1, voluntary), or
    the `claims` parameter's `id_token.acr` (§5.5.1.1: `essential`, `value` or `values`);
    other requested claims are ignored (§5.5: a provider need not honour them)."""
    values = tuple(params.get("acr_values", "").split())
    raw = params.get("claims")
    if raw is None:
        return values, False
    try:
        claims = json.loads(raw)
    except (ValueError, RecursionError):  # a nesting deep enough exhausts the parser's stack
        raise errors.InvalidRequest("claims is not a JSON object") from None
    if not isinstance(claims, dict):
        raise errors.InvalidRequest("claims is not a JSON object")
    id_token = claims.get("id_token")
    acr = id_token.get("acr") if isinstance(id_token, dict) else None
    if acr is None:
        return values, False
    if not isinstance(acr, dict):
        raise errors.InvalidRequest("claims: id_token.acr must be an object or null")
    wanted = acr.get("values", [acr["value"]] if "value" in acr else [])
    if not isinstance(wanted, list) or not all(isinstance(v, str) for v in wanted):
        raise errors.InvalidRequest("claims: id_token.acr values must be strings")
    return tuple(dict.fromkeys((*wanted, *values))), acr.get("essential") is True


def check_lengths(params: Mapping[str, str]) -> None:
    for name in (
        "state",
        "nonce",
        "login_hint",
        "scope",
        "code_challenge",
        "acr_values",
        "claims",
    ):
        value = params.get(name)
        if value is not None and len(value) > _MAX_PARAM:
            raise errors.InvalidRequest(f"{name} is too long")


def validate_authorization_request(
    params: Mapping[str, str],
    duplicated: set[str],
    lookup_client: Callable[[str], Client | None],
    resources: Sequence[Resource],
    *,
    pushed: bool = False,
    par_required: bool = False,
) -> AuthorizationRequest:
    """The authorization endpoint's pipeline (RFC 6749 §4.1.1, §3.1: no repeated parameters).
    `pushed`: the parameters are a pushed request's (RFC 9126, `tessera.oauth.par`);
    `par_required`: the domain refuses requests that were not pushed."""
    if duplicated & {"client_id", "redirect_uri"}:
        raise UnsafeToRedirect("Invalid request", "The request repeats a parameter.")
    client = check_client(params, lookup_client)
    redirect_uri = check_redirect_uri(params, client)
    state = params.get("state")
    try:
        if "state" in duplicated:
            state = None
        errors.refuse_repeated(duplicated)
        check_pushed(client, pushed=pushed, par_required=par_required)
        check_lengths(params)
        check_unsupported(params)
        check_response_type(params, client)
        scopes, audience = check_scope(params, client, resources)
        check_challenge_params(
            params.get("code_challenge"),
            params.get("code_challenge_method"),
            # RFC 9700 §2.1.1: public clients; FAPI 2.0 §5.3.2.2 item 4: every client.
            required=client.is_public or client.profile == FAPI2,
        )
        prompt, max_age = check_prompt(params)
        acr_values, acr_essential = check_acr(params)
        dpop_jkt = check_jkt_param(params.get("dpop_jkt"))
    except errors.OAuthError as exc:
        raise AuthorizationError(exc, redirect_uri, state) from None
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scopes=scopes,
        audience=audience,
        state=state,
        nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge"),
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        acr_values=acr_values,
        acr_essential=acr_essential,
        dpop_jkt=dpop_jkt,
    )


# --- the response ------------------------------------------------------------------------------


def redirect_with(redirect_uri: str, values: Mapping[str, str | None]) -> str:
    """Add response parameters to the redirect URI's query (RFC 6749 §4.1.2)."""
    query = encode_pairs((k, v) for k, v in values.items() if v is not None)
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{query}"


def issue_code(
    codes: CodeStore,
    request: AuthorizationRequest,
    *,
    user_id: str,
    auth_time: datetime,
    session_id: str | None,
    now: datetime,
    ttl_seconds: int,
    amr: tuple[str, ...] = ("pwd",),
) -> str:
    """Store a single-use code (256 bits, kept as SHA-256) and return it (RFC 6749 §4.1.2)."""
    code = new_token(32)
    codes.add(
        AuthorizationCode(
            code_hash=sha256_b64(code),
            client_id=request.client.client_id,
            user_id=user_id,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            audience=request.audience,
            auth_time=auth_time,
            expires_at=now + timedelta(seconds=ttl_seconds),
            grant_id=new_id("g_"),
            issued_at=now,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            session_id=session_id,
            amr=amr,
            dpop_jkt=request.dpop_jkt,
        )
    )
    return code
