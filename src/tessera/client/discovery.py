"""Authorization server metadata: OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.

The `issuer` in the document must be the issuer we asked for (RFC 8414 §3.3, OIDC Discovery
§4.3): a document that names another issuer is refused, so a look-alike server cannot hand us
its endpoints. Issuers are `https`, except on a loopback host (development).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from tessera.client.errors import DiscoveryError

__all__ = ["ServerMetadata", "check_issuer_url", "discover"]

_WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(issuer: str) -> str:
    """The issuer without a trailing slash; `DiscoveryError` unless https (or http loopback)."""
    value = issuer.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DiscoveryError(
            f"the issuer {issuer!r} is not a URL", hint="e.g. --issuer https://id.example.com"
        )
    if parts.query or parts.fragment:
        raise DiscoveryError(f"the issuer {issuer!r} has a query or fragment")  # RFC 8414 §2
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise DiscoveryError(
            f"the issuer {issuer!r} does not use https",
            hint="only a loopback issuer (127.0.0.1, localhost) may use plain http",
        )
    return value


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    # RFC 9207 §3: when true, authorization responses without `iss` must be refused.
    iss_parameter_supported: bool = False
    # RFC 9126 §5: where to push authorization requests, and whether every app must.
    pushed_authorization_request_endpoint: str | None = None
    require_pushed_authorization_requests: bool = False
    # RFC 8414 §2 `token_endpoint_auth_signing_alg_values_supported` (None: not published).
    auth_signing_algs: tuple[str, ...] | None = None
    # RFC 9449 §5.1 `dpop_signing_alg_values_supported` (None: the server does not do DPoP).
    dpop_signing_algs: tuple[str, ...] | None = None
    # RFC 8628 §4: where an app asks for a device code (None: no device login).
    device_authorization_endpoint: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, expected_issuer: str, doc: Mapping[str, Any]) -> ServerMetadata:
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != expected_issuer:
            # RFC 8414 §3.3: identical to the issuer the metadata was fetched for.
            raise DiscoveryError(f"the metadata of {expected_issuer} names another issuer")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise DiscoveryError(f"{issuer} does not support PKCE with S256")

        def endpoint(name: str, required: bool) -> str | None:
            value = doc.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
                raise DiscoveryError(f"the metadata of {issuer} has no valid {name}")
            return value

        algs = doc.get("token_endpoint_auth_signing_alg_values_supported")
        dpop_algs = doc.get("dpop_signing_alg_values_supported")
        return cls(
            issuer=issuer,
            authorization_endpoint=endpoint("authorization_endpoint", True) or "",
            token_endpoint=endpoint("token_endpoint", True) or "",
            revocation_endpoint=endpoint("revocation_endpoint", False),
            userinfo_endpoint=endpoint("userinfo_endpoint", False),
            end_session_endpoint=endpoint("end_session_endpoint", False),
            iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported")
            is True,
            pushed_authorization_request_endpoint=endpoint(
                "pushed_authorization_request_endpoint", False
            ),
            require_pushed_authorization_requests=doc.get("require_pushed_authorization_requests")
            is True,
            auth_signing_algs=tuple(a for a in algs if isinstance(a, str))
            if isinstance(algs, list)
            else None,
            dpop_signing_algs=tuple(a for a in dpop_algs if isinstance(a, str))
            if isinstance(dpop_algs, list)
            else None,
            device_authorization_endpoint=endpoint("device_authorization_endpoint", False),
            raw=dict(doc),
        )


def discover(issuer: str, http: httpx.Client | None = None) -> ServerMetadata:
    """Fetch and check the metadata of `issuer` (OIDC location first, then RFC 8414's)."""
    expected = check_issuer_url(issuer)
    client = http or httpx.Client(timeout=10.0)
    failures: list[str] = []
    try:
        for suffix in _WELL_KNOWN:
            url = expected + suffix
            try:
                response = client.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise DiscoveryError(
                    f"cannot reach {expected} ({exc.__class__.__name__}: {exc})",
                    hint="check the --issuer URL and your network",
                ) from None
            if response.status_code != 200:
                failures.append(f"{url}: HTTP {response.status_code}")
                continue
            try:
                doc = response.json()
            except ValueError:
                failures.append(f"{url}: not JSON")
                continue
            if not isinstance(doc, dict):
                failures.append(f"{url}: not a JSON object")
                continue
            return ServerMetadata.from_document(expected, doc)
    finally:
        if http is None:
            client.close()
    raise DiscoveryError(
        f"{expected} publishes no OAuth metadata ({'; '.join(failures)})",
        hint="is --issuer the identity domain's issuer URL?",
    )
