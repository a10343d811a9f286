"""Discovery (RFC 8414, OIDC Discovery) and the JWKS (RFC 7517) at Oracle's paths."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.scopes import OIDC_SCOPES
from tessera.oauth.grant_types import GRANT_TYPES
from tessera.oauth.metadata import build_metadata
from tessera.web.responses import CORS_ANY, json_response
from tessera.web.services import services

__all__ = ["DISCOVERY_ROUTES"]


# What every domain's metadata advertises.
_ENDPOINTS = frozenset(
    {
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "registration_endpoint",
        "device_authorization_endpoint",
    }
)


async def _openid_configuration(request: Request) -> Response:
    """The requested domain's metadata (its issuer, its resources' scopes)."""
    svc = services(request)
    try:
        resources = svc.cached_resource_list()
    except NotCached:  # the database only off the event loop
        resources = await run_in_threadpool(svc.resource_list)
    try:
        rules = svc.rules.cached("rules")
    except NotCached:
        rules = await run_in_threadpool(svc.sign_in_rules)
    scopes = sorted(OIDC_SCOPES)
    for resource in resources:
        scopes += [f"{resource.audience}{s}" for s in resource.scopes]
    metadata = build_metadata(
        svc.ctx.settings.issuer,
        set(_ENDPOINTS),
        scopes,
        list(GRANT_TYPES),
        require_par=rules.require_pushed_authorization_requests,  # RFC 9126 §5
    )
    return json_response(metadata, headers={**CORS_ANY, "Cache-Control": "max-age=300"})


async def _jwks(request: Request) -> Response:
    # Short caching: the next key is published before it signs, so clients keep up.
    keys = services(request).ctx.keys
    return json_response(keys.jwks(), headers={**CORS_ANY, "Cache-Control": "max-age=300"})


DISCOVERY_ROUTES = [
    Route("/.well-known/openid-configuration", _openid_configuration, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", _openid_configuration, methods=["GET"]),
    Route("/oauth2/v1/keys", _jwks, methods=["GET"]),
]
