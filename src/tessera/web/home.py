"""The landing page at `/` and the favicon: what a person who opens the issuer's address sees."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tessera.web.pages import page_headers
from tessera.web.services import services

__all__ = ["HOME_ROUTES"]

_FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


async def _home(request: Request) -> Response:
    """The landing page of the requested domain."""
    svc = services(request)
    issuer = svc.ctx.settings.issuer
    html = svc.templates.get_template("home.html").render(
        domain=urlsplit(issuer).netloc,
        issuer=issuer,
        prefix=svc.prefix,
        domain_name=svc.domain.display_name,
    )
    return HTMLResponse(html, headers=page_headers())


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
