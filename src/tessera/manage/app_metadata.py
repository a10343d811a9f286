"""An app's client metadata beyond its redirect URIs and grants: how it authenticates, its keys,
PAR, its ID token algorithm, the FAPI 2.0 profile, and informational details.

The names are RFC 7591 §2's (`token_endpoint_auth_method`, `jwks`, `jwks_uri`, ...), RFC 9126
§6's (`require_pushed_authorization_requests`), RFC 9449 §5.2's (`dpop_bound_access_tokens`) and
OpenID Connect Registration §2's (`id_token_signed_response_alg`); `tessera admin apps`, the
admin API and dynamic registration all go through these checks (docs/client-authentication.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from tessera.domain.model import Client
from tessera.domain.redirect_uris import is_loopback_uri
from tessera.manage.errors import InvalidInput
from tessera.oauth.client_assertion import ASYMMETRIC_ALGS, HMAC_ALGS
from tessera.oauth.client_jwks import JwksUnavailable, check_jwks_uri, parse_jwks
from tessera.oauth.fapi2 import (
    FAPI2,
    FAPI2_AUTH_METHOD,
    FAPI2_ID_TOKEN_ALG,
    PROFILES,
    profile_violations,
)

__all__ = [
    "AUTH_METHODS",
    "DETAIL_FIELDS",
    "ID_TOKEN_ALGS",
    "METADATA_FIELDS",
    "SECRET_METHODS",
    "AuthMetadata",
    "checked_details",
    "checked_jwks",
    "checked_jwks_uri",
    "details_of",
    "metadata_for_new_app",
    "metadata_for_update",
]

# RFC 7591 §2 / OIDC Core §9, the methods Tessera authenticates apps with.
AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
ID_TOKEN_ALGS = ("RS256", "ES256")  # the key ring's algorithms; RS256 the OIDC default
DETAIL_URIS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
DETAIL_FIELDS = (*DETAIL_URIS, "contacts", "software_id", "software_version")
MAX_JWKS_BYTES = 64 * 1024  # as much as a fetched jwks_uri may hold
_MAX_URI = 2000
_MAX_TEXT = 200
_MAX_CONTACTS = 20
METADATA_FIELDS = (
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "id_token_signed_response_alg",
    "profile",
)


@dataclass(frozen=True, slots=True)
class AuthMetadata:
    """The checked values, as `Client` stores them (`jwks` as JSON text)."""

    token_endpoint_auth_method: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    jwks: str | None = None
    jwks_uri: str | None = None
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False
    id_token_signed_response_alg: str = "RS256"
    profile: str | None = None

    @classmethod
    def of(cls, client: Client) -> AuthMetadata:
        return cls(**{name: getattr(client, name) for name in METADATA_FIELDS})

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in METADATA_FIELDS}

    def method(self, public: bool) -> str:
        """The method in force (`Client.auth_method`)."""
        if self.token_endpoint_auth_method is not None:
            return self.token_endpoint_auth_method
        return "none" if public else "client_secret_basic"


def _word(value: object, what: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"unsupported {what} {value!r}: use one of {', '.join(allowed)}")
    return value


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false")
    return value


def checked_jwks(value: object) -> str | None:
    """An inline JWK Set (a dict or its JSON text) as normalized JSON text; None: none."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        if len(value) > MAX_JWKS_BYTES:
            raise InvalidInput(f"jwks is larger than {MAX_JWKS_BYTES} bytes: publish a jwks_uri")
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidInput('jwks is not JSON: give the JWK Set {"keys": [...]}') from None
    try:
        parse_jwks(value)
    except JwksUnavailable as exc:
        raise InvalidInput(f"jwks: {exc}; give the public JWK Set") from None
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits in some member
        raise InvalidInput("jwks holds a value that is not plain JSON") from None
    if len(text) > MAX_JWKS_BYTES:
        raise InvalidInput(f"jwks is larger than {MAX_JWKS_BYTES} bytes: publish a jwks_uri")
    return text


def checked_jwks_uri(value: object, allow_insecure: bool) -> str | None:
    """A `jwks_uri` as `tessera.oauth.client_jwks.check_jwks_uri` accepts it; None: none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("jwks_uri must be a URL")
    try:
        check_jwks_uri(value, allow_insecure_loopback=allow_insecure)
    except JwksUnavailable as exc:
        raise InvalidInput(
            f"{exc} (http only to a loopback address, and only for a development issuer on "
            "loopback)"
        ) from None
    return value


def _check_method(meta: AuthMetadata, public: bool) -> str:
    """RFC 7591 §2: `none` for public apps, a secret or key method for confidential ones."""
    method = meta.method(public)
    _word(method, "token_endpoint_auth_method", AUTH_METHODS)
    if public and method != "none":
        raise InvalidInput(
            f"a public app has no secret and no keys: its token_endpoint_auth_method is none, "
            f"not {method} (register a confidential app to use {method})"
        )
    if not public and method == "none":
        raise InvalidInput(
            "token_endpoint_auth_method none is for public apps: register the app as public, "
            "or choose client_secret_basic, client_secret_post, client_secret_jwt or "
            "private_key_jwt"
        )
    return method


def _check_keys(meta: AuthMetadata, method: str) -> None:
    has_keys = (meta.jwks is not None) + (meta.jwks_uri is not None)
    if method == "private_key_jwt" and has_keys != 1:
        raise InvalidInput(
            "a private_key_jwt app needs its public keys: give exactly one of jwks (the JWK "
            "Set) and jwks_uri (where it is published)"
        )
    if method != "private_key_jwt" and has_keys:
        raise InvalidInput(
            f"jwks and jwks_uri are the keys of private_key_jwt apps, and this app uses "
            f"{method}: leave them out, or set token_endpoint_auth_method to private_key_jwt"
        )


def _check_signing_alg(alg: str | None, method: str) -> None:
    """RFC 7591 §2 `token_endpoint_auth_signing_alg`: an algorithm of the app's method."""
    if alg is None:
        return
    algs = {"private_key_jwt": ASYMMETRIC_ALGS, "client_secret_jwt": HMAC_ALGS}.get(method)
    if algs is None:
        raise InvalidInput(
            f"token_endpoint_auth_signing_alg applies to private_key_jwt and client_secret_jwt "
            f"apps only, and this app uses {method}: leave it out"
        )
    if alg not in algs:
        raise InvalidInput(
            f"token_endpoint_auth_signing_alg {alg!r} does not fit {method}: use one of "
            f"{', '.join(sorted(algs))}, or leave it out to allow any of them"
        )


def _checked(
    meta: AuthMetadata, *, public: bool, redirect_uris: tuple[str, ...], allow_insecure: bool
) -> AuthMetadata:
    """Every rule of the metadata, on the values an app would have."""
    method = _check_method(meta, public)
    _check_keys(meta, method)
    if meta.token_endpoint_auth_signing_alg is not None:
        every_alg = tuple(sorted(ASYMMETRIC_ALGS | HMAC_ALGS))
        _word(meta.token_endpoint_auth_signing_alg, "token_endpoint_auth_signing_alg", every_alg)
    _check_signing_alg(meta.token_endpoint_auth_signing_alg, method)
    _word(meta.id_token_signed_response_alg, "id_token_signed_response_alg", ID_TOKEN_ALGS)
    _flag(meta.require_pushed_authorization_requests, "require_pushed_authorization_requests")
    _flag(meta.dpop_bound_access_tokens, "dpop_bound_access_tokens")  # RFC 9449 §5.2
    if meta.profile is not None:
        _word(meta.profile, "profile", PROFILES)
        problems = profile_violations(
            public=public,
            auth_method=method,
            signing_alg=meta.token_endpoint_auth_signing_alg,
            id_token_alg=meta.id_token_signed_response_alg,
            requires_par=meta.require_pushed_authorization_requests,
            redirect_uris=redirect_uris,
            allow_insecure_loopback=allow_insecure,
            dpop_bound=meta.dpop_bound_access_tokens,
        )
        if problems:
            raise InvalidInput("; ".join(problems))
    return meta


def _profile(value: object) -> str | None:
    return None if value is None else _word(value, "profile", PROFILES)


def metadata_for_new_app(
    *,
    public: bool,
    redirect_uris: tuple[str, ...],
    allow_insecure_jwks_uri: bool = False,
    token_endpoint_auth_method: str | None = None,
    token_endpoint_auth_signing_alg: str | None = None,
    jwks: dict[str, Any] | str | None = None,
    jwks_uri: str | None = None,
    require_pushed_authorization_requests: bool | None = None,
    dpop_bound_access_tokens: bool | None = None,
    id_token_signed_response_alg: str | None = None,
    profile: str | None = None,
) -> AuthMetadata:
    """The checked metadata of a new app. Under FAPI 2.0 what the profile fixes is the
    default: `private_key_jwt`, ES256 ID tokens, PAR and DPoP-bound tokens."""
    fapi2 = _profile(profile) == FAPI2
    if fapi2 and token_endpoint_auth_method is None and not public:
        token_endpoint_auth_method = FAPI2_AUTH_METHOD
    if id_token_signed_response_alg is None:
        id_token_signed_response_alg = FAPI2_ID_TOKEN_ALG if fapi2 else "RS256"
    if require_pushed_authorization_requests is None:
        require_pushed_authorization_requests = fapi2
    if dpop_bound_access_tokens is None:  # FAPI 2.0 §5.3.2.1: sender-constrained tokens
        dpop_bound_access_tokens = fapi2
    meta = AuthMetadata(
        token_endpoint_auth_method=token_endpoint_auth_method,
        token_endpoint_auth_signing_alg=token_endpoint_auth_signing_alg,
        jwks=checked_jwks(jwks),
        jwks_uri=checked_jwks_uri(jwks_uri, allow_insecure_jwks_uri),
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        id_token_signed_response_alg=id_token_signed_response_alg,
        profile=profile,
    )
    return _checked(
        meta, public=public, redirect_uris=redirect_uris, allow_insecure=allow_insecure_jwks_uri
    )


def _given_values(given: Mapping[str, object], allow_insecure: bool) -> dict[str, Any]:
    """The given changes, normalized; None means back to the default (or removed)."""
    values = dict(given)
    if "jwks" in values:
        values["jwks"] = checked_jwks(values["jwks"])
    if "jwks_uri" in values:
        values["jwks_uri"] = checked_jwks_uri(values["jwks_uri"], allow_insecure)
    if "profile" in values:
        values["profile"] = _profile(values["profile"])
    for flag in ("require_pushed_authorization_requests", "dpop_bound_access_tokens"):
        if flag in values and values[flag] is None:
            values[flag] = False
    if values.get("id_token_signed_response_alg", "") is None:
        values["id_token_signed_response_alg"] = "RS256"
    return values


def metadata_for_update(
    client: Client,
    given: Mapping[str, object],
    *,
    redirect_uris: tuple[str, ...],
    allow_insecure_jwks_uri: bool = False,
) -> AuthMetadata:
    """The checked metadata of `client` after the changes `given` (names of `AuthMetadata`;
    None: back to the default, or removed). What a change makes obsolete goes unless given:
    the keys when the method is no longer `private_key_jwt`, the inline keys when a
    `jwks_uri` is given (and the other way round), a signing algorithm of another method.
    Turning FAPI 2.0 on makes ID tokens ES256, PAR and DPoP required unless given otherwise."""
    unknown = set(given) - set(METADATA_FIELDS)
    if unknown:
        raise TypeError(f"unknown metadata {sorted(unknown)}")
    values = _given_values(given, allow_insecure_jwks_uri)
    current = AuthMetadata.of(client)
    meta = replace(current, **values)
    public = client.is_public
    changes: dict[str, Any] = {}
    if meta.method(public) != current.method(public):
        if meta.method(public) != "private_key_jwt":
            changes.update({k: None for k in ("jwks", "jwks_uri") if k not in given})
        if "token_endpoint_auth_signing_alg" not in given:
            changes["token_endpoint_auth_signing_alg"] = None
    if given.get("jwks_uri") is not None and "jwks" not in given:
        changes["jwks"] = None
    if given.get("jwks") is not None and "jwks_uri" not in given:
        changes["jwks_uri"] = None
    if meta.profile == FAPI2 and current.profile != FAPI2:
        if "id_token_signed_response_alg" not in given:
            changes["id_token_signed_response_alg"] = FAPI2_ID_TOKEN_ALG
        if "require_pushed_authorization_requests" not in given:
            changes["require_pushed_authorization_requests"] = True
        if "dpop_bound_access_tokens" not in given:
            changes["dpop_bound_access_tokens"] = True
    return _checked(
        replace(meta, **changes),
        public=public,
        redirect_uris=redirect_uris,
        allow_insecure=allow_insecure_jwks_uri,
    )


def _detail_uri(name: str, value: object, allow_insecure: bool) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_URI or not value.isascii():
        raise InvalidInput(f"{name} must be an https URL of at most {_MAX_URI} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{name} is not a URL") from None
    insecure_ok = allow_insecure and is_loopback_uri(value)
    if (parts.scheme != "https" and not insecure_ok) or not parts.hostname or "@" in parts.netloc:
        raise InvalidInput(f"{name} must be an https URL with a host and no user info")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput(f"{name} must not contain spaces or control characters")
    return value


def _detail_text(name: str, value: object, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= limit:
        raise InvalidInput(f"{name} must be text of 1 to {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput(f"{name} must not contain control characters")
    return value.strip()


def checked_details(details: object, *, allow_insecure: bool = False) -> str | None:
    """RFC 7591 §2's informational metadata as JSON text (None: none): `client_uri`,
    `logo_uri`, `tos_uri`, `policy_uri` (https URLs), `contacts` (a list of strings),
    `software_id`, `software_version`. A None value leaves the field out."""
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise InvalidInput("details must be an object")
    unknown = sorted(set(details) - set(DETAIL_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown app details {unknown}: use {', '.join(DETAIL_FIELDS)} (RFC 7591 §2)"
        )
    kept: dict[str, object] = {}
    for name, value in details.items():
        if value is None:
            continue
        if name in DETAIL_URIS:
            kept[name] = _detail_uri(name, value, allow_insecure)
        elif name == "contacts":
            if not isinstance(value, list | tuple) or len(value) > _MAX_CONTACTS:
                raise InvalidInput(f"contacts must be a list of at most {_MAX_CONTACTS} strings")
            contacts = [_detail_text("a contact", c, 320) for c in value]
            if contacts:
                kept[name] = list(dict.fromkeys(contacts))
        else:
            kept[name] = _detail_text(name, value)
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode() if kept else None


def details_of(client: Client) -> dict[str, Any]:
    """The app's informational metadata (`Client.details`) as a dict; {} when none."""
    if not client.details:
        return {}
    value = orjson.loads(client.details)
    return value if isinstance(value, dict) else {}
