"""The landing page at `/` and the favicon: what a person who opens the issuer's address sees."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tessera.web.pages import page_headers
from tessera.web.services import Services

__all__ = ["home_routes"]

_FAVICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


def home_routes(svc: Services) -> list[Route]:
    """The landing page, rendered once for the issuer, and the favicon."""
    issuer = svc.ctx.settings.issuer
    html = svc.templates.get_template("home.html").render(
        domain=urlsplit(issuer).netloc, issuer=issuer
    )
    return [
        Route("/", partial(_home, html), methods=["GET"]),
        Route("/favicon.ico", _favicon, methods=["GET"]),
    ]


async def _home(html: str, _: Request) -> Response:
    return HTMLResponse(html, headers=page_headers())


async def _favicon(_: Request) -> Response:
    # An SVG: every current browser takes one for an icon, whatever the name.
    return Response(
        _FAVICON,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
