"""Dynamic client registration (RFC 7591) and its management (RFC 7592): the protocol's side.

Pure functions over the request's JSON and the registered app:

- `parse_metadata` reads the client metadata (RFC 7591 §2) into what the app rules take
  (`tessera.manage.apps.create_app` / `update_app`, with RFC 7591 names where they share them).
  It checks what the protocol itself fixes: the JSON types, `response_types` against
  `grant_types` (§2.1), the redirect URIs (RFC 6749 §3.1.2, docs/security.md rule 5), the
  scopes (known, never the administrators' own, and within a ceiling: the initial access
  token's `allowed_scopes`, or the app's current scopes for an RFC 7592 update), the grant
  rules. The app rules check the
  rest (keys, algorithms, FAPI 2.0) and their messages are named by `metadata_error`.
- Defaults are RFC 7591 §2's: `grant_types` ["authorization_code"], `response_types` ["code"]
  (none for an app without the code grant, the only consistent value),
  `token_endpoint_auth_method` `client_secret_basic` (`private_key_jwt` under FAPI 2.0),
  `id_token_signed_response_alg` RS256 (OIDC Registration §2; ES256 under FAPI 2.0). Our choice:
  an omitted or empty `scope` registers `openid` only, or, when the ceiling leaves `openid` out,
  every scope of the ceiling (`default_scopes`).
- The FAPI 2.0 switch is the extension member `tessera_profile: "fapi2"`.
- Unknown members are ignored (§2), and so are the server-issued ones an RFC 7592 §2.2 update
  may send back (`registration_access_token`, `registration_client_uri`,
  `client_secret_expires_at`, `client_id_issued_at`).
- `client_information` is the §3.2.1 / RFC 7592 §3 response: every registered value, under its
  standard name.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from tessera.domain.admin import admin_audience, admin_only_scopes
from tessera.domain.hashing import new_id
from tessera.domain.model import Client, Resource
from tessera.domain.redirect_uris import InvalidRedirectUri as BadRedirectUri
from tessera.domain.redirect_uris import validate_for_registration
from tessera.domain.scopes import UnknownScope, parse_scope_param, resolve_scope
from tessera.oauth.errors import OAuthError
from tessera.oauth.fapi2 import FAPI2, FAPI2_AUTH_METHOD, FAPI2_ID_TOKEN_ALG
from tessera.oauth.grants.jwt_bearer import JWT_BEARER

__all__ = [
    "DEFAULT_SCOPE",
    "INFORMATIONAL_FIELDS",
    "MAX_METADATA_BYTES",
    "PROFILE_FIELD",
    "ClientMetadata",
    "InvalidClientMetadata",
    "InvalidRedirectUri",
    "client_information",
    "default_client_name",
    "default_scopes",
    "metadata_error",
    "parse_metadata",
    "registrable_scopes",
]

MAX_METADATA_BYTES = 64 * 1024  # the node's default request body limit
PROFILE_FIELD = "tessera_profile"  # our extension member (RFC 7591 §2: extensions allowed)
DEFAULT_SCOPE = ("openid",)
# RFC 7591 §2's informational members, kept as the app's `details`.
INFORMATIONAL_FIELDS = (
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
)
_STRINGS = (
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "jwks_uri",
    "id_token_signed_response_alg",
    PROFILE_FIELD,
)
_FLAGS = ("require_pushed_authorization_requests", "dpop_bound_access_tokens")
# The app rules' messages about a redirect URI (`tessera.manage.apps`, `tessera.oauth.fapi2`).
_REDIRECT_MESSAGE = re.compile(r"^(the )?redirect URI ")


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a metadata value is invalid (or the metadata are not a JSON object)."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2: one or more redirect URIs are invalid."""

    error = "invalid_redirect_uri"


def metadata_error(message: str) -> OAuthError:
    """The RFC 7591 §3.2.2 error for a refusal of the app rules (`InvalidInput`'s message)."""
    if _REDIRECT_MESSAGE.match(message):
        return InvalidRedirectUri(message)
    return InvalidClientMetadata(message)


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """A checked registration (or RFC 7592 §2.2 replacement) request.

    `name` is `client_name` (None: the server names the app); `public` is
    `token_endpoint_auth_method` `none`; `fields` are the keyword arguments of
    `create_app` / `update_app`, every one of them set (a replacement leaves nothing as it was);
    `client_id` and `client_secret` as an RFC 7592 §2.2 update sends them (else None)."""

    name: str | None
    public: bool
    fields: Mapping[str, Any]
    client_id: str | None = None
    client_secret: str | None = None


def default_client_name() -> str:
    """A name for an app registered without `client_name`: random, so unique in practice."""
    return f"registered app {new_id(nbytes=6)}"


def _load(body: bytes | None) -> dict[str, Any]:
    if body is None:
        raise InvalidClientMetadata("send the client metadata as application/json (RFC 7591 §3.1)")
    if len(body) > MAX_METADATA_BYTES:
        raise InvalidClientMetadata(f"the client metadata are larger than {MAX_METADATA_BYTES}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidClientMetadata("the request body is not JSON (RFC 7591 §3.1)") from None
    if not isinstance(data, dict):
        raise InvalidClientMetadata("the client metadata must be a JSON object (RFC 7591 §3.1)")
    return data


def _strings(data: Mapping[str, Any], name: str) -> list[str] | None:
    """An array of strings, without repeats; None when absent (or null)."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    if any("\x00" in v for v in value):
        raise InvalidClientMetadata(f"{name} must not contain NUL characters")
    return list(dict.fromkeys(value))


def _typed(data: Mapping[str, Any]) -> None:
    """The JSON types of the single-valued members (RFC 7591 §2)."""
    for name in _STRINGS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            raise InvalidClientMetadata(f"{name} must be a string")
    for name in _FLAGS:
        if data.get(name) is not None and not isinstance(data[name], bool):
            raise InvalidClientMetadata(f"{name} must be true or false")
    if data.get("jwks") is not None and not isinstance(data["jwks"], dict):
        raise InvalidClientMetadata('jwks must be a JWK Set object: {"keys": [...]}')
    client_name = data.get("client_name")
    if client_name is not None and (not isinstance(client_name, str) or not client_name.strip()):
        raise InvalidClientMetadata("client_name must be a non-empty string")
    if data.get("scope") is not None and not isinstance(data["scope"], str):
        raise InvalidClientMetadata("scope must be a string of space-separated scopes")


def _redirect_uris(data: Mapping[str, Any], name: str) -> list[str]:
    """RFC 6749 §3.1.2 and docs/security.md rule 5: the same rules as `tessera admin apps`."""
    uris = _strings(data, name) or []
    for uri in uris:
        try:
            validate_for_registration(uri)
        except BadRedirectUri as exc:
            raise InvalidRedirectUri(f"{name}: {uri!r}: {exc}") from None
    return uris


def _grants(
    data: Mapping[str, Any], supported: Iterable[str], public: bool, has_uris: bool
) -> tuple[list[str], list[str]]:
    """`grant_types` and `response_types`, consistent as RFC 7591 §2.1 requires."""
    grants = _strings(data, "grant_types")
    if not grants:
        grants = ["authorization_code"]  # §2: the default
    supported = tuple(supported)
    for grant in grants:
        if grant not in supported:
            raise InvalidClientMetadata(
                f"unsupported grant type {grant!r}: use {', '.join(supported)} (the implicit "
                "and password grants are not offered, RFC 9700 §2.1.2, §2.4)"
            )
    code = "authorization_code" in grants
    responses = _strings(data, "response_types")
    if responses is None:
        responses = ["code"] if code else []
    for response in responses:
        if response != "code":
            raise InvalidClientMetadata(
                f"unsupported response type {response!r}: only code is offered (RFC 9700 §2.1.2)"
            )
    if code != ("code" in responses):
        raise InvalidClientMetadata(
            "response_types and grant_types disagree (RFC 7591 §2.1): the code response type "
            "goes with the authorization_code grant type, and only with it"
        )
    if public and ("client_credentials" in grants or JWT_BEARER in grants):
        raise InvalidClientMetadata(
            "a client with token_endpoint_auth_method none cannot use client_credentials "
            "or the JWT bearer grant"
        )
    if code and not has_uris:
        raise InvalidRedirectUri("the authorization_code grant needs redirect_uris")
    return grants, responses


def registrable_scopes(
    words: Iterable[str], resources: Iterable[Resource], issuer: str, domain_id: str
) -> list[str]:
    """The canonical forms of `words`, without repeats; `InvalidClientMetadata` for an unknown
    scope or one of the admin API's (those are for the administrators' own apps, never
    registered ones)."""
    resources = list(resources)
    admin, only_admins = admin_audience(issuer), admin_only_scopes(issuer, domain_id)
    canonical: list[str] = []
    for word in words:
        try:
            resolved = resolve_scope(word, resources)
        except UnknownScope:
            raise InvalidClientMetadata(f"unknown scope {word!r}") from None
        if resolved.audience == admin or resolved.canonical in only_admins:
            raise InvalidClientMetadata(f"the scope {word!r} cannot be registered")
        canonical.append(resolved.canonical)
    return list(dict.fromkeys(canonical))


def default_scopes(ceiling: Collection[str] | None) -> list[str]:
    """An omitted `scope`: `openid` when the ceiling allows it, else the whole ceiling."""
    if ceiling is None or set(DEFAULT_SCOPE) <= set(ceiling):
        return list(DEFAULT_SCOPE)
    return list(ceiling)


def _scopes(
    value: str | None,
    resources: Iterable[Resource],
    issuer: str,
    domain_id: str,
    ceiling: Collection[str] | None,
) -> list[str]:
    """The scopes the app may ask for, canonical, within `ceiling` (None: no ceiling)."""
    try:
        words = parse_scope_param(value) or default_scopes(ceiling)
    except ValueError as exc:
        raise InvalidClientMetadata(f"scope: {exc}") from None
    resources = list(resources)
    canonical: list[str] = []
    for word in words:
        (scope,) = registrable_scopes((word,), resources, issuer, domain_id)
        if ceiling is not None and scope not in ceiling:
            raise InvalidClientMetadata(
                f"the scope {word!r} is beyond the scopes this client may have: the initial "
                "access token's (its current ones for an update, RFC 7592 §2.2)"
            )
        canonical.append(scope)
    return list(dict.fromkeys(canonical))


def _flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    return default if value is None else bool(value)


def _details(data: Mapping[str, Any]) -> dict[str, Any] | None:
    found = {name: data[name] for name in INFORMATIONAL_FIELDS if data.get(name) is not None}
    return found or None


def parse_metadata(
    body: bytes | None,
    *,
    resources: Iterable[Resource],
    issuer: str,
    domain_id: str,
    grant_types: Iterable[str],
    scope_ceiling: Collection[str] | None = None,
) -> ClientMetadata:
    """RFC 7591 §2 / §3.1: the checked request (`body` None: it was not sent as JSON);
    `grant_types` are the ones the server offers; `scope_ceiling` the canonical scopes the app
    may have at most (None: any it may register; an omitted `scope` is `default_scopes`).
    Raises `InvalidClientMetadata` or `InvalidRedirectUri`."""
    data = _load(body)
    _typed(data)
    fapi2 = data.get(PROFILE_FIELD) == FAPI2
    method = data.get("token_endpoint_auth_method") or (
        FAPI2_AUTH_METHOD if fapi2 else "client_secret_basic"  # §2: the default
    )
    public = method == "none"
    redirect_uris = _redirect_uris(data, "redirect_uris")
    grants, _ = _grants(data, grant_types, public, bool(redirect_uris))
    id_token_alg = data.get("id_token_signed_response_alg") or (
        FAPI2_ID_TOKEN_ALG if fapi2 else "RS256"
    )
    fields: dict[str, Any] = {
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": _redirect_uris(data, "post_logout_redirect_uris"),
        "grant_types": grants,
        "allowed_scopes": _scopes(data.get("scope"), resources, issuer, domain_id, scope_ceiling),
        "token_endpoint_auth_method": method,
        "token_endpoint_auth_signing_alg": data.get("token_endpoint_auth_signing_alg"),
        "jwks": data.get("jwks"),
        "jwks_uri": data.get("jwks_uri"),
        "require_pushed_authorization_requests": _flag(
            data, "require_pushed_authorization_requests", fapi2
        ),
        # RFC 9449 §5.2; FAPI 2.0 §5.3.2.1: on by default for a FAPI 2.0 app.
        "dpop_bound_access_tokens": _flag(data, "dpop_bound_access_tokens", fapi2),
        "id_token_signed_response_alg": id_token_alg,
        "profile": data.get(PROFILE_FIELD),
        "details": _details(data),
    }
    name = data.get("client_name")
    client_id, secret = data.get("client_id"), data.get("client_secret")
    return ClientMetadata(
        name.strip() if name else None,
        public,
        fields,
        client_id if isinstance(client_id, str) else None,
        secret if isinstance(secret, str) else None,
    )


def client_information(
    client: Client,
    *,
    registration_access_token: str,
    registration_client_uri: str,
    details: Mapping[str, Any],
    client_secret: str | None = None,
) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client information response. `client_secret` only
    when one was issued by this request (it is stored hashed, never shown again); `details`:
    the app's informational metadata."""
    body: dict[str, Any] = {"client_id": client.client_id}
    if client_secret is not None:
        body["client_secret"] = client_secret
        body["client_secret_expires_at"] = 0  # §3.2.1: 0, it does not expire
    body["client_id_issued_at"] = _seconds(client.created_at)
    body["registration_access_token"] = registration_access_token
    body["registration_client_uri"] = registration_client_uri
    body["client_name"] = client.name
    body["redirect_uris"] = list(client.redirect_uris)
    body["grant_types"] = list(client.grant_types)
    body["response_types"] = ["code"] if "authorization_code" in client.grant_types else []
    body["token_endpoint_auth_method"] = client.auth_method
    if client.token_endpoint_auth_signing_alg is not None:
        body["token_endpoint_auth_signing_alg"] = client.token_endpoint_auth_signing_alg
    if client.jwks is not None:
        body["jwks"] = orjson.loads(client.jwks)
    if client.jwks_uri is not None:
        body["jwks_uri"] = client.jwks_uri
    body["scope"] = " ".join(client.allowed_scopes)
    if client.post_logout_redirect_uris:
        body["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    body["require_pushed_authorization_requests"] = client.requires_par
    body["dpop_bound_access_tokens"] = client.dpop_bound_access_tokens
    body["id_token_signed_response_alg"] = client.id_token_signed_response_alg
    if client.profile is not None:
        body[PROFILE_FIELD] = client.profile
    body.update({k: v for k, v in details.items() if k in INFORMATIONAL_FIELDS})
    return body


def _seconds(when: datetime) -> int:
    return int(when.timestamp())
