"""Rendering the browser's pages: HTML with the pages' security headers, redirects, cookies.

docs/security.md rule 8 (no framing, no referrer, nothing third-party) and the cookies'
attributes (HttpOnly, SameSite=Lax, Secure on https issuers).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tessera.web.proxy import client_ip
from tessera.web.services import Services

__all__ = [
    "client_address",
    "error_page",
    "origin",
    "page",
    "page_headers",
    "redirect",
    "set_cookie",
]


def client_address(request: Request) -> str:
    return client_ip(request.scope) or "unknown"


def origin(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def page_headers(form_targets: list[str | None] | None = None) -> dict[str, str]:
    """docs/security.md rule 8: no framing, no referrer, nothing third-party."""
    targets = " ".join(["'self'", *[t for t in (form_targets or []) if t]])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def page(
    svc: Services,
    name: str,
    status: int = 200,
    form_targets: list[str | None] | None = None,
    **values: Any,
) -> HTMLResponse:
    html = svc.templates.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=page_headers(form_targets))


def error_page(
    svc: Services,
    request: Request,
    title: str,
    message: str,
    status: int = 400,
    hint: str | None = None,
) -> HTMLResponse:
    return page(
        svc,
        "error.html",
        status,
        title=title,
        message=message,
        hint=hint,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(
        location,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def set_cookie(
    svc: Services, response: Response, name: str, value: str, max_age: int | None, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=svc.secure_cookies,
    )
