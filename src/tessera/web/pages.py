"""Rendering the browser's pages: HTML with the pages' security headers, redirects, cookies.

docs/security.md rule 8 (no framing, no referrer, nothing third-party) and the cookies'
attributes (HttpOnly, SameSite=Lax, Secure on https issuers). Every URL and cookie is the
request's identity domain's (docs/domains.md): paths start with the domain's prefix, cookie names
end with its suffix, so a browser's cookies of two domains on one host never meet.
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
    "cookie_name",
    "csrf_refused",
    "delete_cookie",
    "error_page",
    "origin",
    "page",
    "page_headers",
    "read_cookie",
    "redirect",
    "set_cookie",
    "url",
]


def client_address(request: Request) -> str:
    return client_ip(request.scope) or "unknown"


def origin(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def page_headers(
    form_targets: list[str | None] | None = None, scripts: bool = False
) -> dict[str, str]:
    """docs/security.md rule 8: no framing, no referrer, nothing third-party; `scripts`: our
    own script files only (the passkey pages), never inline."""
    targets = " ".join(["'self'", *[t for t in (form_targets or []) if t]])
    script = "script-src 'self'; " if scripts else ""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'self'; img-src 'self' data:; "
            f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def url(svc: Services, path: str) -> str:
    """The browser's path of a route of the domain (`path` as the routes know it)."""
    return svc.prefix + path


def page(
    svc: Services,
    name: str,
    status: int = 200,
    form_targets: list[str | None] | None = None,
    scripts: bool = False,
    **values: Any,
) -> HTMLResponse:
    """A page of the domain; every page says which identity domain it belongs to (the default
    domain's pages name none, as a single-domain deployment's)."""
    domain = svc.domain
    values.setdefault("domain_name", None if domain.is_default else domain.display_name)
    values.setdefault("prefix", svc.prefix)
    html = svc.templates.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=page_headers(form_targets, scripts))


def error_page(
    svc: Services,
    request: Request,
    title: str,
    message: str,
    status: int = 400,
    hint: str | None = None,
    back: tuple[str, str] | None = None,
) -> HTMLResponse:
    """`back`: a link on from the page, (its URL, its label)."""
    return page(
        svc,
        "error.html",
        status,
        title=title,
        message=message,
        hint=hint,
        back_url=back[0] if back else None,
        back_label=back[1] if back else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def csrf_refused(
    svc: Services,
    request: Request,
    event: str,
    message: str,
    *,
    title: str = "Request refused",
    hint: str | None = None,
    user_id: str | None = None,
) -> HTMLResponse:
    """A form whose CSRF token does not hold (docs/security.md rule 9): audited as `event`,
    answered 403 with a page that says what to do."""
    svc.audit.record(event, user_id=user_id, ip=client_address(request))
    return error_page(svc, request, title, message, status=403, hint=hint)


def redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(
        location,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def cookie_name(svc: Services, name: str) -> str:
    return name + svc.cookie_suffix


def read_cookie(svc: Services, request: Request, name: str) -> str | None:
    """The domain's cookie `name`; another domain's cookie of that name is never read."""
    return request.cookies.get(cookie_name(svc, name))


def set_cookie(
    svc: Services, response: Response, name: str, value: str, max_age: int | None, path: str = "/"
) -> None:
    """The domain's cookie `name`, sent back only under the domain's prefix (`path` as the
    routes know it)."""
    response.set_cookie(
        cookie_name(svc, name),
        value,
        max_age=max_age,
        path=url(svc, path),
        httponly=True,
        samesite="lax",
        secure=svc.secure_cookies,
    )


def delete_cookie(svc: Services, response: Response, name: str, path: str = "/") -> None:
    """Expire what `set_cookie` set: the same name, path and attributes."""
    response.delete_cookie(
        cookie_name(svc, name),
        path=url(svc, path),
        httponly=True,
        samesite="lax",
        secure=svc.secure_cookies,
    )
