"""Talking to an upstream OpenID provider: discovery, its keys, the token and userinfo requests.

OIDC Discovery 1.0 §4 (the document at `<issuer>/.well-known/openid-configuration`; §4.3:
its `issuer` must equal the configured issuer exactly) and §3 (the members; required:
`authorization_endpoint`, `token_endpoint`, `jwks_uri`, `id_token_signing_alg_values_supported`);
RFC 9207 §3 (`authorization_response_iss_parameter_supported`). Every endpoint must be https
(RFC 6749 §3.1, §3.2; RFC 9700 §2.6), or http on a loopback host when the node itself is a
development node (`tessera.oauth.client_jwks.allows_insecure_jwks_uri`).

`UpstreamClient` is one per node and thread-safe, like `JwksFetcher`: one httpx client with a
timeout, no redirects (a redirect could point anywhere, http included), no proxy settings from
the environment, a size limit counted as the body arrives. Discovery documents are cached ten
minutes; a failed fetch is tried again at most every ten seconds, so a broken provider is not
hammered by every sign-in attempt. Keys come through the node's `JwksFetcher` (one fetcher of
JWK Sets for the whole node).

The token request is RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5), authenticated per
the provider's `auth_method`: `client_secret_basic` (RFC 6749 §2.3.1: id and secret each
form-urlencoded, then HTTP Basic), `client_secret_post` (the same two in the body) or
`private_key_jwt` (RFC 7523 §2.2, OIDC Core §9; `aud` is the upstream issuer identifier as a
single string, which RFC 7523bis and FAPI 2.0 §5.3.2.1 recommend and both Tessera,
`tessera.oauth.metadata.assertion_audiences`, and oidc-provider 9 accept; the token
endpoint's URL would be refused by FAPI 2.0 servers). The userinfo request is OIDC Core §5.3.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from tessera.domain.model import UpstreamProvider
from tessera.oauth.client_assertion import ASYMMETRIC_ALGS
from tessera.oauth.client_jwks import JwksFetcher, JwksUnavailable
from tessera.oauth.federation.errors import UpstreamError, clipped
from tessera.oauth.federation.secrets import CLIENT_KEY_ALG, Credentials
from tessera.shared.client_assertion import basic_authorization, client_assertion_form
from tessera.shared.outbound import (
    AnswerRefused,
    FetchCache,
    FetchFailed,
    fetch,
    http_client,
    url_problem,
)

__all__ = [
    "DISCOVERY_PATH",
    "ID_TOKEN_ALGS",
    "ProviderMetadata",
    "UpstreamClient",
    "UpstreamError",
    "check_endpoint",
    "discovery_url",
    "parse_metadata",
]

DISCOVERY_PATH = "/.well-known/openid-configuration"
# The ID token algorithms we accept (OIDC Core §3.1.3.7 item 7, RFC 8725 §3.1-§3.2): public-key
# signatures only. Never `none` (an unsigned token proves nothing), never HS256/384/512 (the
# key would be our client secret, which an upstream administrator, or anyone who learns the
# secret, can use to mint tokens for any user: with public keys only the provider can sign).
ID_TOKEN_ALGS = ASYMMETRIC_ALGS
_MAX_URL = 2048
_UNREACHABLE = "The sign-in provider cannot be reached right now. Try again later."
_BAD_SETUP = "The sign-in provider is not set up correctly. Tell an administrator."
_BAD_ANSWER = "The sign-in provider sent an answer we cannot accept."


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What we use of an OpenID provider's discovery document (OIDC Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    iss_parameter_supported: bool = False  # RFC 9207 §3
    id_token_signing_alg_values_supported: tuple[str, ...] = ("RS256",)
    # OIDC Discovery §3: client_secret_basic when the provider lists none.
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    code_challenge_methods_supported: tuple[str, ...] = ()  # RFC 8414 §2


def discovery_url(issuer: str) -> str:
    """OIDC Discovery 1.0 §4.1: the issuer without a trailing slash, then the well-known path."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def check_endpoint(url: Any, what: str, *, allow_insecure_loopback: bool = False) -> str:
    """An issuer or endpoint URL we may talk to (`tessera.shared.outbound.url_problem`: https,
    http only on a loopback host when allowed). `UpstreamError` if not."""
    problem = url_problem(url, max_length=_MAX_URL, allow_insecure_loopback=allow_insecure_loopback)
    if problem is not None:
        raise UpstreamError(_BAD_SETUP, f"the {what} {problem}: {clipped(url)}")
    return str(url)


def _strings(document: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UpstreamError(_BAD_SETUP, f"the discovery document's {name} is not a string array")
    return tuple(value)


def parse_metadata(
    issuer: str, document: Any, *, allow_insecure_loopback: bool = False
) -> ProviderMetadata:
    """Check a discovery document fetched for `issuer` (OIDC Discovery 1.0 §3, §4.3) and keep
    what we use. Refused (`UpstreamError`): not a JSON object, `issuer` not exactly `issuer`,
    a required member missing, an endpoint not https, no ID token algorithm we accept, or
    `response_types_supported` without `code`."""
    if not isinstance(document, dict):
        raise UpstreamError(_BAD_SETUP, "the discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        # §4.3: prevents a provider from posing as another (and an attacker-supplied document
        # from naming an issuer we did not configure).
        found = clipped(document.get("issuer"))
        raise UpstreamError(
            _BAD_SETUP, f"the discovery document names issuer {found}, not {issuer}"
        )

    def endpoint(name: str) -> str:
        if document.get(name) is None:
            raise UpstreamError(_BAD_SETUP, f"the discovery document has no {name}")
        return check_endpoint(document[name], name, allow_insecure_loopback=allow_insecure_loopback)

    def optional(name: str) -> str | None:
        return None if document.get(name) is None else endpoint(name)

    if "id_token_signing_alg_values_supported" not in document:
        raise UpstreamError(
            _BAD_SETUP, "the discovery document has no id_token_signing_alg_values_supported"
        )
    algs = _strings(document, "id_token_signing_alg_values_supported", ())
    if not ID_TOKEN_ALGS & set(algs):
        raise UpstreamError(
            _BAD_SETUP,
            f"the provider signs ID tokens with none of the algorithms we accept ({clipped(algs)})",
        )
    response_types = _strings(document, "response_types_supported", ("code",))
    if "code" not in response_types:
        raise UpstreamError(_BAD_SETUP, "the provider does not support the code flow")
    iss_supported = document.get("authorization_response_iss_parameter_supported", False)
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoint("authorization_endpoint"),
        token_endpoint=endpoint("token_endpoint"),
        jwks_uri=endpoint("jwks_uri"),
        userinfo_endpoint=optional("userinfo_endpoint"),
        end_session_endpoint=optional("end_session_endpoint"),
        iss_parameter_supported=iss_supported is True,
        id_token_signing_alg_values_supported=algs,
        token_endpoint_auth_methods_supported=_strings(
            document, "token_endpoint_auth_methods_supported", ("client_secret_basic",)
        ),
        code_challenge_methods_supported=_strings(document, "code_challenge_methods_supported", ()),
    )


class UpstreamClient:
    """The node's HTTP client for upstream OpenID providers (see the module docstring)."""

    def __init__(
        self,
        jwks_fetcher: JwksFetcher,
        *,
        http_timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        ttl: float = 600.0,
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_fetcher = jwks_fetcher
        # The node's rule for http (loopback, development nodes only), as for apps' jwks_uri.
        self.allow_insecure_loopback = jwks_fetcher.allow_insecure_loopback
        self.http_timeout = http_timeout
        self.max_bytes = max_bytes
        self._http = http_client(http_timeout)
        self._documents: FetchCache[str, ProviderMetadata] = FetchCache(
            ttl=ttl, retry_interval=retry_interval, wait=http_timeout, clock=clock, max_entries=1024
        )

    def close(self) -> None:
        self._http.close()

    # --- discovery and keys ----------------------------------------------------------------

    def metadata(self, issuer: str, *, refresh: bool = False) -> ProviderMetadata:
        """The provider's checked discovery document (OIDC Discovery 1.0 §4), cached `ttl`
        seconds; `refresh` fetches again unless tried less than `retry_interval` ago; a failed
        discovery is not tried again for `retry_interval` (`tessera.shared.outbound.FetchCache`)."""
        check_endpoint(issuer, "issuer", allow_insecure_loopback=self.allow_insecure_loopback)

        def discover() -> ProviderMetadata:
            document = self._get_json(discovery_url(issuer), "the discovery document")
            return parse_metadata(
                issuer, document, allow_insecure_loopback=self.allow_insecure_loopback
            )

        return self._documents.get(
            issuer,
            discover,
            refresh=refresh,
            failures=UpstreamError,
            busy=lambda: UpstreamError(_UNREACHABLE, f"{issuer} is being discovered; try again"),
        )

    def cached(self, issuer: str) -> ProviderMetadata | None:
        """The document in memory, if any (never fetches: for pages rendered on the event
        loop)."""
        return self._documents.cached(issuer)

    def keys(self, metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys from its `jwks_uri`, through the node's `JwksFetcher`
        (cached; `refresh` for an unknown `kid`, rate-limited there)."""
        try:
            return self.jwks_fetcher.keys(metadata.jwks_uri, refresh=refresh)
        except JwksUnavailable as exc:
            raise UpstreamError(_UNREACHABLE, f"the provider's keys: {exc}") from None

    # --- HTTP ------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None = None,
    ) -> tuple[int, str, bytes]:
        """Status, media type and body of one request; `UpstreamError` when it fails."""
        try:
            answer = fetch(
                self._http,
                method,
                url,
                what=what,
                max_bytes=self.max_bytes,
                deadline=time.monotonic() + self.http_timeout,
                headers=headers,
                data=data,
            )
        except AnswerRefused as exc:
            raise UpstreamError(_BAD_ANSWER if exc.too_large else _UNREACHABLE, str(exc)) from None
        except FetchFailed as exc:
            raise UpstreamError(_UNREACHABLE, str(exc)) from None
        return answer.status, answer.media_type, answer.body

    def _get_json(self, url: str, what: str) -> Any:
        status, _, body = self._send("GET", url, what, {"Accept": "application/json"})
        if status != 200:
            raise UpstreamError(_UNREACHABLE, f"{what} at {url} answered {status}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(_BAD_SETUP, f"{what} at {url} is not JSON") from None

    # --- the token request -----------------------------------------------------------------

    def _client_auth(
        self,
        metadata: ProviderMetadata,
        provider: UpstreamProvider,
        credentials: Credentials,
        now: datetime,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The form fields and headers that authenticate us (see the module docstring)."""
        method = provider.auth_method
        if method in ("client_secret_basic", "client_secret_post"):
            if credentials.client_secret is None:
                raise UpstreamError(_BAD_SETUP, "no client secret was given")
            if method == "client_secret_post":
                return {
                    "client_id": provider.client_id,
                    "client_secret": credentials.client_secret,
                }, {}
            basic = basic_authorization(provider.client_id, credentials.client_secret)
            return {}, {"Authorization": basic}
        if method == "private_key_jwt" and credentials.private_key_pem is not None:
            try:
                key = RSAKey.import_key(credentials.private_key_pem)
            except (JoseError, ValueError, TypeError):
                raise UpstreamError(_BAD_SETUP, "our private key cannot be read") from None
            form = client_assertion_form(
                key,
                alg=CLIENT_KEY_ALG,
                kid=credentials.key_id or key.thumbprint(),
                client_id=provider.client_id,
                audience=metadata.issuer,
                now=now.timestamp(),
            )
            return form, {}
        raise UpstreamError(_BAD_SETUP, f"no credentials for {method!r}")

    def token(
        self,
        metadata: ProviderMetadata,
        provider: UpstreamProvider,
        credentials: Credentials,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        now: datetime,
    ) -> dict[str, Any]:
        """Exchange the code (RFC 6749 §4.1.3, RFC 7636 §4.5) and return the checked token
        response (RFC 6749 §5.1; OIDC Core §3.1.3.3: an `id_token` is required). An error
        response (RFC 6749 §5.2) or anything else → `UpstreamError`."""
        auth_form, headers = self._client_auth(metadata, provider, credentials, now)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            **auth_form,
        }
        status, _, body = self._send(
            "POST",
            metadata.token_endpoint,
            "the token response",
            {"Accept": "application/json", **headers},
            form,
        )
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamError(_BAD_ANSWER, f"the token endpoint answered {status} without JSON")
        if status != 200 or "error" in answer:
            error = clipped(answer.get("error"), 64)
            description = clipped(answer.get("error_description", ""))
            raise UpstreamError(
                "The sign-in provider refused to complete the sign-in. Try again.",
                f"the token endpoint answered {status} {error}: {description}",
            )
        return _checked_token_response(answer)

    # --- userinfo --------------------------------------------------------------------------

    def userinfo(
        self, metadata: ProviderMetadata, access_token: str, expected_sub: str
    ) -> dict[str, Any]:
        """The userinfo claims (OIDC Core §5.3.1-§5.3.2), JSON only: a signed or encrypted
        response (`application/jwt`) is refused. Its `sub` must be the ID token's exactly
        (§5.3.2), else the answer may be about somebody else (a substituted token)."""
        if metadata.userinfo_endpoint is None:
            raise UpstreamError(_BAD_SETUP, "the provider has no userinfo endpoint")
        status, media, body = self._send(
            "GET",
            metadata.userinfo_endpoint,
            "the userinfo response",
            {"Accept": "application/json", "Authorization": f"Bearer {access_token}"},
        )
        if status != 200:
            raise UpstreamError(_BAD_ANSWER, f"the userinfo endpoint answered {status}")
        if media == "application/jwt":
            raise UpstreamError(
                _BAD_SETUP,
                "the userinfo response is signed or encrypted (application/jwt); configure the "
                "provider to answer plain JSON",
            )
        try:
            claims = orjson.loads(body)
        except orjson.JSONDecodeError:
            claims = None
        if not isinstance(claims, dict):
            raise UpstreamError(_BAD_ANSWER, "the userinfo response is not a JSON object")
        if claims.get("sub") != expected_sub:
            raise UpstreamError(_BAD_ANSWER, "the userinfo sub is not the ID token's sub")
        return claims


def _checked_token_response(answer: dict[str, Any]) -> dict[str, Any]:
    """RFC 6749 §5.1 and OIDC Core §3.1.3.3: `access_token` (1*VSCHAR, RFC 6749 Appendix A.12:
    it goes into the userinfo request's Authorization header, which holds ASCII only),
    `token_type` Bearer (case insensitive, RFC 6749 §7.1), `id_token`."""
    access_token = answer.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamError(_BAD_ANSWER, "the token response has no access_token")
    if not all(" " <= c <= "~" for c in access_token):
        raise UpstreamError(_BAD_ANSWER, "the access_token has characters outside %x20-7E")
    token_type = answer.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        # We asked for no DPoP binding; an access token we cannot present is no use.
        raise UpstreamError(_BAD_ANSWER, f"the token_type is {clipped(token_type, 20)}, not Bearer")
    if not isinstance(answer.get("id_token"), str) or not answer["id_token"]:
        raise UpstreamError(_BAD_ANSWER, "the token response has no id_token")
    return answer
