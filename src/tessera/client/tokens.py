"""The token endpoint (RFC 6749 §4.1.3, §6), the revocation endpoint (RFC 7009) and the pushed
authorization request endpoint (RFC 9126) for one app.

A public app identifies itself with `client_id` (RFC 6749 §3.2.1); a confidential app
authenticates with `client_secret_basic`, id and secret form-urlencoded first (§2.3.1), or with
`private_key_jwt` (RFC 7523 §2.2): a new signed assertion on every request. All send the PKCE
verifier with the code (RFC 7636 §4.5).

With a DPoP signer (RFC 9449 §5), every token request carries a new proof and the server binds
the tokens to its key (`token_type: DPoP`); a `use_dpop_nonce` answer (§8) is retried once with
the server's nonce.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from tessera.client.dpop import DPoPSigner, is_nonce_error
from tessera.client.errors import ClientError, OAuthResponseError
from tessera.client.par import PushedRequest, read_pushed_response
from tessera.client.private_key_jwt import ClientKey
from tessera.shared.client_assertion import basic_authorization

__all__ = ["DEVICE_CODE_GRANT", "Endpoints", "OAuthClient", "TokenSet", "unverified_jwt"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None

    @property
    def is_dpop(self) -> bool:
        """Bound to the login's DPoP key: sent as `Authorization: DPoP` with a proof."""
        return self.token_type == "DPoP"

    @classmethod
    def from_response(
        cls,
        data: Mapping[str, Any],
        now: float,
        previous: TokenSet | None = None,
        *,
        dpop: bool = False,
    ) -> TokenSet:
        """Read a successful token response (RFC 6749 §5.1); keep a refresh token we had if the
        server did not send a new one (§6). `dpop`: the request carried a proof, so the token
        may be `DPoP`-bound (RFC 9449 §5.1); a server may still answer `Bearer`."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise ClientError("the token response has no access_token")
        token_type = _token_type(data.get("token_type"), dpop)
        expires_in = data.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = now + float(expires_in)
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous.refresh_token if previous else None
        id_token = data.get("id_token")
        if not isinstance(id_token, str):
            id_token = previous.id_token if previous else None
        scope = data.get("scope")
        if not isinstance(scope, str):
            scope = previous.scope if previous else None
        return cls(access, token_type, expires_at, refresh, id_token, scope)

    def expires_in(self, now: float | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "scope": self.scope,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        """Inverse of `to_json`; `ValueError` when a field has the wrong type."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("access_token is missing")
        expires_at = data.get("expires_at")
        if expires_at is not None and (
            not isinstance(expires_at, int | float) or isinstance(expires_at, bool)
        ):
            raise ValueError("expires_at is not a number")
        token_type = data.get("token_type", "Bearer")
        if token_type not in ("Bearer", "DPoP"):
            raise ValueError(f"unknown token_type {token_type!r}")
        optional: dict[str, str | None] = {}
        for name in ("refresh_token", "id_token", "scope"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is not a string")
            optional[name] = value
        return cls(
            access_token=access,
            token_type=token_type,
            expires_at=None if expires_at is None else float(expires_at),
            refresh_token=optional["refresh_token"],
            id_token=optional["id_token"],
            scope=optional["scope"],
        )

    def without_refresh_token(self) -> TokenSet:
        return replace(self, refresh_token=None)


def _token_type(value: Any, dpop: bool) -> str:
    """RFC 6749 §7.1 (case-insensitive); `DPoP` only when we sent a proof (RFC 9449 §5.1: a
    client without the key could not use such a token)."""
    kind = value.lower() if isinstance(value, str) else None
    if kind == "bearer":
        return "Bearer"
    if kind == "dpop" and dpop:
        return "DPoP"
    if kind == "dpop":
        raise ClientError("the identity domain sent a DPoP-bound token without a DPoP proof")
    raise ClientError(f"unsupported token_type {value!r} (expected Bearer or DPoP)")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What a cached login needs to refresh and revoke without discovery."""

    issuer: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoints:
        values: dict[str, str | None] = {}
        for name in ("issuer", "token_endpoint", "revocation_endpoint", "userinfo_endpoint"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is not a string")
            values[name] = value
        if not values["issuer"] or not values["token_endpoint"]:
            raise ValueError("issuer or token_endpoint is missing")
        return cls(
            issuer=values["issuer"],
            token_endpoint=values["token_endpoint"],
            revocation_endpoint=values["revocation_endpoint"],
            userinfo_endpoint=values["userinfo_endpoint"],
        )


def unverified_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWS compact token, WITHOUT checking its signature.

    Only for display, or for checks on a token received straight from the token endpoint over
    TLS (OIDC Core §3.1.3.7 lets such an ID token skip the signature check).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    decoded: list[dict[str, Any]] = []
    for segment in parts[:2]:
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
            value = json.loads(raw)
        except ValueError:
            raise ValueError("not a JWT (a part is not base64url JSON)") from None
        if not isinstance(value, dict):
            raise ValueError("not a JWT (a part is not a JSON object)")
        decoded.append(value)
    return decoded[0], decoded[1]


class OAuthClient:
    """Calls of one app (public or confidential) to the token, revocation and PAR endpoints."""

    def __init__(
        self,
        endpoints: Endpoints,
        client_id: str,
        client_secret: str | None = None,
        *,
        client_key: ClientKey | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        dpop: DPoPSigner | None = None,
    ) -> None:
        if client_secret is not None and client_key is not None:
            raise ValueError("an app authenticates with a secret or a private key, not both")
        self.endpoints = endpoints
        self.client_id = client_id
        self._secret = client_secret
        self._key = client_key
        self._http = http
        self._clock = clock
        self.dpop = dpop

    @property
    def is_confidential(self) -> bool:
        return self._secret is not None or self._key is not None

    @property
    def auth_method(self) -> str:
        """The `token_endpoint_auth_method` used (RFC 7591 §2)."""
        if self._key is not None:
            return "private_key_jwt"
        return "client_secret_basic" if self._secret is not None else "none"

    def _auth(self, form: dict[str, str]) -> dict[str, str]:
        if self._key is not None:
            # RFC 7523 §2.2: a fresh assertion for each request; `aud` the issuer (RFC 7523bis).
            form.update(
                self._key.client_assertion(self.client_id, self.endpoints.issuer, self._clock())
            )
            return {}
        if self._secret is not None:
            return {"Authorization": basic_authorization(self.client_id, self._secret)}
        form["client_id"] = self.client_id  # RFC 6749 §3.2.1
        return {}

    def _post(self, url: str, form: dict[str, str], *, proof: bool = False) -> httpx.Response:
        headers = {"Accept": "application/json", **self._auth(form)}
        if proof and self.dpop is not None:
            headers["DPoP"] = self.dpop.proof("POST", url)  # RFC 9449 §5: a new one each time
        client = self._http or httpx.Client(timeout=30.0)
        try:
            return client.post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise ClientError(
                f"cannot reach {url} ({exc.__class__.__name__}: {exc})",
                hint="check your network and that the identity domain is up",
            ) from None
        finally:
            if self._http is None:
                client.close()

    def _token_request(self, form: dict[str, str], previous: TokenSet | None) -> TokenSet:
        now = self._clock()
        url = self.endpoints.token_endpoint
        response = self._post(url, form, proof=True)
        if self.dpop is not None and self.dpop.remember(response) and is_nonce_error(response):
            # RFC 9449 §8: the server wants its nonce in the proof; once, never a loop.
            response = self._post(url, form, proof=True)
            self.dpop.remember(response)
        data = _json_object(response)
        if response.status_code != 200:
            raise _oauth_error(response, data)
        if data is None:
            raise ClientError(
                f"the token endpoint answered HTTP 200 without JSON ({_ctype(response)})"
            )
        return TokenSet.from_response(data, now, previous, dpop=self.dpop is not None)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5)."""
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            None,
        )

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """RFC 6749 §6; the server rotates the refresh token (RFC 9700 §4.14)."""
        if tokens.refresh_token is None:
            raise ClientError("there is no refresh token to use")
        return self._token_request(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}, tokens
        )

    def revoke(self, token: str, hint: str) -> None:
        """RFC 7009 §2.1; 200 also for a token that was already invalid (§2.2)."""
        url = self.endpoints.revocation_endpoint
        if url is None:
            raise ClientError(f"{self.endpoints.issuer} has no revocation endpoint")
        response = self._post(url, {"token": token, "token_type_hint": hint})
        if response.status_code != 200:
            raise _oauth_error(response, _json_object(response))

    def request_device_code(self, url: str, scope: str) -> dict[str, Any]:
        """RFC 8628 §3.1: the device authorization request, with client authentication; the
        §3.2 answer (checked by the caller), or `OAuthResponseError`."""
        response = self._post(url, {"scope": scope})
        data = _json_object(response)
        if response.status_code != 200 or data is None:
            raise _oauth_error(response, data)
        return data

    def poll_device_code(self, device_code: str) -> TokenSet:
        """RFC 8628 §3.4 (with a DPoP proof when the client has a key, RFC 9449 §5); the
        §3.5 errors (`authorization_pending`, `slow_down`, ...) as `OAuthResponseError`."""
        return self._token_request(
            {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}, None
        )

    def push_authorization_request(self, url: str, params: Mapping[str, str]) -> PushedRequest:
        """RFC 9126 §2.1: the authorization request's parameters, with client authentication;
        `PushedRequestError` (the OAuth error and what to do) when refused."""
        return read_pushed_response(self._post(url, dict(params)))


def _ctype(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "no content type"))


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _oauth_error(response: httpx.Response, data: Mapping[str, Any] | None) -> OAuthResponseError:
    if data is not None and isinstance(data.get("error"), str):
        description = data.get("error_description")
        return OAuthResponseError(
            data["error"],
            description if isinstance(description, str) else None,
            status=response.status_code,
        )
    return OAuthResponseError(
        "server_error", f"HTTP {response.status_code}", status=response.status_code
    )
