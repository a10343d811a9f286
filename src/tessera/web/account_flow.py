"""Signing in to the account pages, the fresh sign-in of their sensitive actions, and what every
account page shares: the session check, the CSRF check of its forms, the navigation and the
messages after a change (docs/mfa.md; the rules are in `tessera.oauth.interaction.account`).

A page without a session redirects (303) to the domain's authorization endpoint for the account
app; `/account/callback` checks `iss` (RFC 9207) and `state`, consumes the code, and goes back
to the page. Each form is bound to the session (`csrf_token(..., "account", csrf_secret)`) and
answers a change with 303 to its page and a message named in the query (`?done=`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.manage.audit import Actor
from tessera.oauth import errors
from tessera.oauth.device import DEVICE_PAGE_PATH
from tessera.oauth.interaction.account import (
    ACCOUNT_SCOPES,
    FLOW_TTL,
    FlowInvalid,
    StepUp,
    account_client_id,
    account_redirect,
    finish_flow,
    redeem_account_code,
    start_flow,
    step_up_needed,
)
from tessera.oauth.interaction.csrf import csrf_token, csrf_valid
from tessera.oauth.interaction.login import SignedInUser, current_session
from tessera.oauth.interaction.requirements import Enough, Need, assess, user_factors
from tessera.web.browser import SESSION_COOKIE
from tessera.web.forms import Params, read_form, read_query
from tessera.web.pages import (
    client_address,
    csrf_refused,
    delete_cookie,
    error_page,
    page,
    read_cookie,
    redirect,
    set_cookie,
    url,
)
from tessera.web.services import Services, services

__all__ = [
    "ACCOUNT_FLOW_ROUTES",
    "AccountGet",
    "AccountPost",
    "account_actor",
    "account_get",
    "account_page",
    "account_post",
    "done",
    "to_sign_in",
]

FLOW_COOKIE = "tessera_account_flow"
_FLOW_PATH = "/account/"
_NAV = (
    ("profile", "/account/", "Profile"),
    ("password", "/account/password", "Password"),
    ("security", "/account/security", "Sign-in methods"),
    ("sessions", "/account/sessions", "Sessions"),
    ("apps", "/account/apps", "Connected apps"),
)
# The message a page shows after a change (`?done=<key>`): fixed words, never the query's.
_DONE = {
    "profile": "Your profile was saved.",
    "profile-unchanged": "Nothing to save: your profile is as it was.",
    "password": "Your password was changed. Your other sessions and apps were signed out.",
    "password-set": "Your password was set. Your other sessions and apps were signed out.",
    "passkey-added": "Your passkey was added.",
    "passkey-renamed": "Your passkey was renamed.",
    "passkey-removed": "Your passkey was removed.",
    "totp-added": "Your authenticator app is set up.",
    "totp-removed": "Your authenticator app was removed.",
    "sessions-ended": "Your other sessions were signed out.",
    "session-ended": "That session was signed out.",
    "app-removed": "The app's access was removed. It is signed out everywhere.",
    "provider-linked": "The sign-in provider was linked: you can sign in with it now.",
    "provider-unlinked": "The sign-in provider was unlinked from your account.",
}

_ERRORS = {
    "unmet_authentication_requirements": (
        "Your account has no sign-in method this needs. Ask your administrator."
    ),
    "access_denied": "The sign-in was refused.",
    "login_required": "You are not signed in.",
}

AccountGet = Callable[[Services, Request, SignedInUser, Params], Response]
AccountPost = Callable[[Services, Request, SignedInUser, Params], Response]


def _flow_key(svc: Services) -> bytes:
    return svc.ctx.subkey("account sign-in state")


def _return_path(path: str) -> str:
    """Only a page of the account pages, or the device page (RFC 8628 §3.3), which signs in
    the same way (a path as the routes know it)."""
    ours = path.startswith(("/account/", f"{DEVICE_PAGE_PATH}?")) or path == DEVICE_PAGE_PATH
    if ours and "//" not in path and ".." not in path:
        return path
    return "/account/"


def to_sign_in(svc: Services, return_to: str, step_up: StepUp | None = None) -> Response:
    """303 to the authorization endpoint for the account app, to come back to `return_to`."""
    flow = start_flow(_flow_key(svc), _return_path(return_to), svc.ctx.clock())
    params = {
        "response_type": "code",
        "client_id": account_client_id(svc.domain.id),
        "redirect_uri": account_redirect(svc.ctx.settings.issuer),
        "scope": " ".join(ACCOUNT_SCOPES),
        "state": flow.state,
        "code_challenge": flow.code_challenge,
        "code_challenge_method": "S256",
        **(step_up.params() if step_up else {}),
    }
    response = redirect(url(svc, "/oauth2/v1/authorize?") + urlencode(params), 303)
    set_cookie(svc, response, FLOW_COOKIE, flow.cookie, FLOW_TTL, path=_FLOW_PATH)
    return response


def _callback(svc: Services, request: Request, query: Params) -> Response:
    title = "Sign-in not completed"
    again = "Open your account page again to sign in."
    if query.duplicated or query.get("iss") != svc.ctx.settings.issuer:
        return error_page(svc, request, title, "The sign-in answer is not valid.", hint=again)
    if "error" in query:
        # Fixed words: the query's own text is anyone's to write.
        message = _ERRORS.get(query.get("error", ""), "The sign-in did not succeed.")
        return error_page(svc, request, title, message, hint=again)
    now = svc.ctx.clock()
    verifier = read_cookie(svc, request, FLOW_COOKIE)
    try:
        return_to = finish_flow(_flow_key(svc), query.get("state", ""), verifier, now)
    except FlowInvalid:
        return error_page(svc, request, title, "This sign-in was not started here.", hint=again)
    current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
    assert verifier is not None  # finish_flow checked it
    if current is None or not redeem_account_code(
        svc.ctx.store.codes,
        query.get("code", ""),
        client_id=account_client_id(svc.domain.id),
        redirect_uri=account_redirect(svc.ctx.settings.issuer),
        verifier=verifier,
        user_id=current.user.id,
        now=now,
    ):
        return error_page(svc, request, title, "The sign-in answer is not valid.", hint=again)
    response = redirect(url(svc, _return_path(return_to)), 303)
    delete_cookie(svc, response, FLOW_COOKIE, path=_FLOW_PATH)
    return response


async def account_callback(request: Request) -> Response:
    svc = services(request)
    try:
        query = read_query(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)
    return await run_in_threadpool(_callback, svc, request, query)


def step_up_of(svc: Services, current: SignedInUser) -> StepUp | None:
    """What a sensitive action of this session still needs (None: it may go ahead)."""
    factors = user_factors(svc.ctx.store.factors, current.user.id)
    return step_up_needed(current.session, factors, svc.ctx.clock())


def sign_in_unmet(svc: Services, current: SignedInUser) -> StepUp | None:
    """What the session lacks for any account page: the sign-in the domain's policy asks of
    this user (a second factor, or enrolling one). A session that stopped after the password
    (the second-factor page is next) shows nothing and changes nothing here."""
    rules = svc.sign_in_rules()
    factors = user_factors(svc.ctx.store.factors, current.user.id)
    outcome = assess(current.session.amr, current.user, factors, rules.mfa_policy, rules, Need())
    if isinstance(outcome, Enough):
        return None
    return StepUp(fresh=False, second_factor=factors.any)


def _session_need(svc: Services, current: SignedInUser, sensitive: bool) -> StepUp | None:
    unmet = sign_in_unmet(svc, current)
    if unmet is not None or not sensitive:
        return unmet
    return step_up_of(svc, current)


async def account_get(
    request: Request, render: AccountGet, here: str, *, sensitive: bool = False
) -> Response:
    """A page: signed in (else to the sign-in), with a fresh sign-in for `sensitive` ones."""
    svc = services(request)
    try:
        query = read_query(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)

    def work() -> Response:
        now = svc.ctx.clock()
        current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
        if current is None:
            return to_sign_in(svc, here)
        need = _session_need(svc, current, sensitive)
        if need is not None:
            return to_sign_in(svc, here, need)
        return render(svc, request, current, query)

    return await run_in_threadpool(work)


async def account_post(
    request: Request, act: AccountPost, here: str, *, sensitive: bool = False
) -> Response:
    """A form: signed in, its CSRF token bound to the session, and for `sensitive` changes a
    fresh sign-in (else the browser signs in again and comes back to the page `here`)."""
    svc = services(request)
    try:
        form = await read_form(request)
    except errors.OAuthError as exc:
        return error_page(svc, request, "Invalid request", exc.description)

    def work() -> Response:
        now = svc.ctx.clock()
        current = current_session(svc.ctx.store, read_cookie(svc, request, SESSION_COOKIE), now)
        if current is None:
            return to_sign_in(svc, here)
        secret = current.session.csrf_secret
        if form.duplicated or not csrf_valid(
            svc.csrf_key, "account", secret, form.get("csrf_token")
        ):
            return csrf_refused(
                svc,
                request,
                "account.csrf_refused",
                "The form was not sent from your account page.",
                hint="Reload the page and try again.",
                user_id=current.user.id,
            )
        need = _session_need(svc, current, sensitive)
        if need is not None:
            return to_sign_in(svc, here, need)
        return act(svc, request, current, form)

    return await run_in_threadpool(work)


def account_actor(svc: Services, request: Request, current: SignedInUser) -> Actor:
    """The user acting on their own account, for the audit log."""
    return Actor(f"user:{current.user.id}", svc.audit.record, client_address(request))


def done(svc: Services, path: str, key: str) -> Response:
    """303 to an account page that will say `_DONE[key]`."""
    return redirect(url(svc, path) + "?" + urlencode({"done": key}), 303)


def account_page(
    svc: Services,
    name: str,
    current: SignedInUser,
    section: str,
    query: Params | None = None,
    status: int = 200,
    **values: Any,
) -> Response:
    """An account page with its navigation, the message of `?done=` and the form token."""
    notice = _DONE.get(query.get("done", "")) if query is not None else None
    return page(
        svc,
        name,
        status,
        nav=[(key, url(svc, path), label) for key, path, label in _NAV],
        section=section,
        user=current.user,
        notice=notice,
        csrf_token=csrf_token(svc.csrf_key, "account", current.session.csrf_secret),
        signout_action=url(svc, "/account/sessions/end"),
        **values,
    )


ACCOUNT_FLOW_ROUTES = [
    Route("/account/callback", account_callback, methods=["GET"]),
]
