"""Discovery (RFC 8414, OIDC Discovery) and the JWKS (RFC 7517) at Oracle's paths."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.scopes import OIDC_SCOPES
from tessera.oauth.metadata import build_metadata
from tessera.web.responses import CORS_ANY, json_response
from tessera.web.services import Services

__all__ = ["discovery_routes"]


def discovery_routes(svc: Services, endpoints: set[str], grant_types: list[str]) -> list[Route]:
    configuration = partial(_openid_configuration, svc, endpoints | {"jwks_uri"}, grant_types)
    jwks = partial(_jwks, svc)
    return [
        Route("/.well-known/openid-configuration", configuration, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", configuration, methods=["GET"]),
        Route("/oauth2/v1/keys", jwks, methods=["GET"]),
    ]


async def _openid_configuration(
    svc: Services, endpoints: set[str], grant_types: list[str], _: Request
) -> Response:
    try:
        resources = svc.cached_resource_list()
    except NotCached:  # the database only off the event loop
        resources = await run_in_threadpool(svc.resource_list)
    scopes = sorted(OIDC_SCOPES)
    for resource in resources:
        scopes += [f"{resource.audience}{s}" for s in resource.scopes]
    metadata = build_metadata(svc.ctx.settings.issuer, endpoints, scopes, grant_types)
    return json_response(metadata, headers={**CORS_ANY, "Cache-Control": "max-age=300"})


async def _jwks(svc: Services, _: Request) -> Response:
    # Short caching: the next key is published before it signs, so clients keep up.
    return json_response(svc.ctx.keys.jwks(), headers={**CORS_ANY, "Cache-Control": "max-age=300"})
