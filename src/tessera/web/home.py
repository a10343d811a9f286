"""The landing page at `/` and the favicon: what a person who opens the issuer's address sees."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.web.pages import page
from tessera.web.services import services

__all__ = ["HOME_ROUTES"]

_FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


async def _home(request: Request) -> Response:
    """The landing page of the requested domain, titled with its issuer's host and path (the
    domain's own host, or the base's with `/domains/<name>`); links under its prefix."""
    svc = services(request)
    issuer = svc.ctx.settings.issuer
    parts = urlsplit(issuer)
    return page(svc, "home.html", domain=parts.netloc + parts.path, issuer=issuer)


async def _favicon(_: Request) -> Response:
    # An SVG: every current browser takes one for an icon, whatever the name.
    return Response(
        _FAVICON,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


HOME_ROUTES = [
    Route("/", _home, methods=["GET"]),
    Route("/favicon.ico", _favicon, methods=["GET"]),
]
