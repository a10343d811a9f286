"""Discovery (RFC 8414, OIDC Discovery) and the JWKS (RFC 7517) at Oracle's paths."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.caching import NotCached
from tessera.domain.model import Resource
from tessera.domain.scopes import OIDC_SCOPES
from tessera.oauth.metadata import build_metadata
from tessera.web.responses import CORS_ANY, json_response
from tessera.web.services import Services

__all__ = ["discovery_routes"]


def discovery_routes(svc: Services, endpoints: set[str], grant_types: list[str]) -> list[Route]:
    ctx = svc.ctx

    def metadata(resources: list[Resource]) -> dict[str, object]:
        scopes = sorted(OIDC_SCOPES)
        for resource in resources:
            scopes += [f"{resource.audience}{s}" for s in resource.scopes]
        return build_metadata(ctx.settings.issuer, endpoints | {"jwks_uri"}, scopes, grant_types)

    async def openid_configuration(_: Request) -> Response:
        try:
            resources = svc.cached_resource_list()
        except NotCached:  # the database only off the event loop
            resources = await run_in_threadpool(svc.resource_list)
        return json_response(
            metadata(resources), headers={**CORS_ANY, "Cache-Control": "max-age=300"}
        )

    async def jwks(_: Request) -> Response:
        # Short caching: the next key is published before it signs, so clients keep up.
        return json_response(
            ctx.keys.jwks(),
            headers={**CORS_ANY, "Cache-Control": "max-age=300"},
        )

    return [
        Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", openid_configuration, methods=["GET"]),
        Route("/oauth2/v1/keys", jwks, methods=["GET"]),
    ]
