"""The admin console at `/console/`: a first-party public app (static page + script) that signs
the administrator in through our own code flow with PKCE and calls the admin API."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.web.services import Services

__all__ = ["console_routes"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def console_routes(svc: Services) -> list[Route]:
    """The console's routes; the page is rendered once."""
    html = svc.templates.get_template("console.html").render()
    return [
        Route("/console/", partial(_console, html), methods=["GET"]),
        Route("/console", _to_console, methods=["GET"]),
    ]


async def _console(html: str, _: Request) -> Response:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _CSP,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def _to_console(_: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)
