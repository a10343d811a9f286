"""The admin console at `/console/`: a first-party public app (static page + script) that signs
the administrator in through our own code flow with PKCE and calls the admin API."""

from __future__ import annotations

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
    html = svc.templates.get_template("console.html").render()

    async def console(_: Request) -> Response:
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

    async def to_console(_: Request) -> Response:
        return RedirectResponse("/console/", status_code=308)

    return [
        Route("/console/", console, methods=["GET"]),
        Route("/console", to_console, methods=["GET"]),
    ]
