"""The admin console at `<prefix>/console/`: a first-party public app (static page + script)
that signs the administrator in through the domain's own code flow with PKCE and calls the
domain's admin API. Each identity domain has its own console app, so a domain's console signs in
only that domain's administrators; the default domain's console also serves the operators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.domain.admin import console_client_id
from tessera.web.services import services

__all__ = ["CONSOLE_ROUTES"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


async def _console(request: Request) -> Response:
    """The console page of the requested domain: the script reads the domain's path prefix,
    console app and name from the page's data attributes (docs/domains.md)."""
    svc = services(request)
    html = svc.templates.get_template("console.html").render(
        prefix=svc.prefix,
        client_id=console_client_id(svc.domain.id),
        domain_name=svc.domain.display_name,
        domain_slug=svc.domain.name,
        is_default=svc.domain.is_default,
    )
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


async def _to_console(request: Request) -> Response:
    return RedirectResponse(services(request).prefix + "/console/", status_code=308)


CONSOLE_ROUTES = [
    Route("/console/", _console, methods=["GET"]),
    Route("/console", _to_console, methods=["GET"]),
]
