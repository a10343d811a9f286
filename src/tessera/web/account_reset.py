"""Password reset by e-mail at `<prefix>/account/reset` (OWASP Forgot Password Cheat Sheet;
the rules are in `tessera.manage.password_reset` and `tessera.oauth.interaction.password_reset`).

`/account/reset` asks for the username or e-mail address and always answers the same ("if an
account matches, we sent a link"): the outcome is in the audit log only, and the mails per
account and per address are throttled. The link opens `/account/reset/confirm?token=…`, which
sets a new password once (time-limited, single use) and ends every session and refresh token of
the user. Both forms carry a CSRF token bound to the browser-id cookie (there is no session).
Without SMTP the pages say the feature is off and answer 404: there is nothing to reach until
an operator sets `TESSERA_SMTP_*`.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.manage.account import notify
from tessera.manage.audit import Actor
from tessera.manage.errors import InvalidInput
from tessera.manage.mail import MailError
from tessera.manage.password_reset import request_reset, reset_password
from tessera.oauth import errors
from tessera.oauth.interaction.csrf import browser_id, csrf_token, csrf_valid
from tessera.oauth.interaction.password_reset import ResetTokenInvalid, check_reset_token
from tessera.web.account import min_length
from tessera.web.browser import SESSION_COOKIE
from tessera.web.factor_pages import BROWSER_COOKIE
from tessera.web.forms import Params, read_form, read_query
from tessera.web.pages import (
    client_address,
    csrf_refused,
    delete_cookie,
    error_page,
    page,
    read_cookie,
    set_cookie,
    url,
)
from tessera.web.services import Services, services

__all__ = ["RESET_ROUTES"]

_OFF_STATUS = 404
_MAX_TOKEN = 600


def _actor(svc: Services, request: Request) -> Actor:
    return Actor("password-reset", svc.audit.record, client_address(request))


def _off(svc: Services) -> Response:
    return page(svc, "reset_off.html", _OFF_STATUS, sign_in_url=url(svc, "/account/"))


def _bound(svc: Services, request: Request, form: str) -> tuple[str, str, bool]:
    """The browser id, the form's CSRF token, and whether the cookie must be set."""
    bid, fresh = browser_id(read_cookie(svc, request, BROWSER_COOKIE))
    return bid, csrf_token(svc.csrf_key, "account", f"{form}:{bid}"), fresh


def _csrf_ok(svc: Services, request: Request, form: Params, name: str) -> bool:
    bid = read_cookie(svc, request, BROWSER_COOKIE)
    binding = f"{name}:{bid}" if bid else None
    return not form.duplicated and csrf_valid(
        svc.csrf_key, "account", binding, form.get("csrf_token")
    )


def _refused(svc: Services, request: Request) -> Response:
    return csrf_refused(
        svc,
        request,
        "password_reset.csrf_refused",
        "The form was not sent from this browser's page.",
        hint="Reload the page and try again.",
    )


def _ask_page(svc: Services, request: Request, sent: bool = False, status: int = 200) -> Response:
    bid, token, fresh = _bound(svc, request, "reset")
    response = page(
        svc,
        "reset_request.html",
        status,
        form_action=url(svc, "/account/reset"),
        csrf_token=token,
        sent=sent,
        sign_in_url=url(svc, "/account/"),
    )
    if fresh:
        set_cookie(svc, response, BROWSER_COOKIE, bid, None)
    return response


def _ask(svc: Services, request: Request, form: Params | None) -> Response:
    if not svc.reset.mailer.enabled:
        return _off(svc)
    if form is None:
        return _ask_page(svc, request)
    if not _csrf_ok(svc, request, form, "reset"):
        return _refused(svc, request)
    issuer = svc.ctx.settings.issuer
    try:
        request_reset(
            svc.ctx.store,
            svc.reset,
            form.get("username", ""),
            ip=client_address(request),
            now=svc.ctx.clock(),
            link_for=lambda token: f"{issuer}/account/reset/confirm?token={token}",
            actor=_actor(svc, request),
        )
    except MailError:  # e-mail went off between the check and now
        return _off(svc)
    return _ask_page(svc, request, sent=True)


def _confirm_page(
    svc: Services,
    request: Request,
    token: str,
    error: str | None = None,
    invalid: str | None = None,
    status: int = 200,
) -> Response:
    bid, csrf, fresh = _bound(svc, request, "reset-confirm")
    response = page(
        svc,
        "reset_confirm.html",
        status,
        form_action=url(svc, "/account/reset/confirm"),
        csrf_token=csrf,
        token=token if invalid is None else "",
        error=error,
        invalid=invalid,
        min_length=min_length(svc),
        ask_url=url(svc, "/account/reset"),
    )
    if fresh:
        set_cookie(svc, response, BROWSER_COOKIE, bid, None)
    return response


def _invalid(svc: Services, request: Request, exc: ResetTokenInvalid) -> Response:
    message = str(exc)
    return _confirm_page(
        svc, request, "", invalid=message[0].upper() + message[1:] + ".", status=400
    )


def _confirm(svc: Services, request: Request, params: Params, post: bool) -> Response:
    if not svc.reset.mailer.enabled:
        return _off(svc)
    token = params.get("token", "")[:_MAX_TOKEN]
    now = svc.ctx.clock()
    if not post:
        try:
            check_reset_token(svc.reset.key, token, svc.ctx.store.users.get, now)
        except ResetTokenInvalid as exc:
            return _invalid(svc, request, exc)
        return _confirm_page(svc, request, token)
    if not _csrf_ok(svc, request, params, "reset-confirm"):
        return _refused(svc, request)
    new = params.get("new_password", "")
    if new != params.get("new_password_again", ""):
        return _confirm_page(svc, request, token, "The two passwords are not the same.", status=400)
    try:
        user = reset_password(
            svc.ctx.store,
            svc.reset.key,
            token,
            new,
            now,
            min_length=min_length(svc),
            timed=svc.metrics.hashing,
            actor=_actor(svc, request),
        )
    except ResetTokenInvalid as exc:
        return _invalid(svc, request, exc)
    except InvalidInput as exc:
        text = str(exc)
        return _confirm_page(svc, request, token, text[0].upper() + text[1:] + ".", status=400)
    notify(
        svc.reset.mailer,
        user,
        "your password was reset with an e-mailed link",
        now,
        svc.reset.domain_display_name,
    )
    response = page(svc, "reset_done.html", sign_in_url=url(svc, "/account/"))
    delete_cookie(svc, response, SESSION_COOKIE)
    return response


async def reset_request(request: Request) -> Response:
    svc = services(request)
    try:
        form = await read_form(request) if request.method == "POST" else None
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)
    return await run_in_threadpool(_ask, svc, request, form)


async def reset_confirm(request: Request) -> Response:
    svc = services(request)
    post = request.method == "POST"
    try:
        params = await read_form(request) if post else read_query(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)
    return await run_in_threadpool(_confirm, svc, request, params, post)


RESET_ROUTES = [
    Route("/account/reset", reset_request, methods=["GET", "POST"]),
    Route("/account/reset/confirm", reset_confirm, methods=["GET", "POST"]),
]
