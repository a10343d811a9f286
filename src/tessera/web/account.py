"""The user's own account pages at `<prefix>/account/` (docs/mfa.md): the profile, the password,
the sessions and the connected apps. The sign-in methods are in `account_security`, password
reset by e-mail in `account_reset`, the sign-in and the shared checks in `account_flow`.

Each handler parses the form, calls `tessera.manage.account`, which decides and writes, audits
and mails a notice, and renders or redirects (303 after a change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tessera.domain.passwords import MIN_PASSWORD_LENGTH
from tessera.manage.account import (
    AccountRefused,
    PasswordChange,
    change_password,
    connected_apps,
    end_one_session,
    end_other_sessions,
    notify,
    remove_access,
    update_profile,
)
from tessera.manage.users import domain_min_length
from tessera.oauth.interaction.account import is_account_app
from tessera.oauth.interaction.login import SignedInUser, end_session
from tessera.web.account_flow import (
    account_actor,
    account_get,
    account_page,
    account_post,
    done,
    step_up_of,
    to_sign_in,
)
from tessera.web.browser import SCOPE_WORDS, SESSION_COOKIE, signed_in_response
from tessera.web.forms import Params
from tessera.web.pages import client_address, delete_cookie, page, read_cookie, url
from tessera.web.services import Services, services

__all__ = [
    "ACCOUNT_ROUTES",
    "SECURITY_PAGE",
    "describe_methods",
    "min_length",
    "notify_change",
    "security_changed",
    "when",
]

# The account's sign-in section: passkeys, authenticator app, recovery codes, linked providers.
SECURITY_PAGE = "/account/security"

_METHODS = {
    "pwd": "password",
    "otp": "one-time code",
    "hwk": "passkey on a security key or device",
    "swk": "synced passkey",
    "fed": "a sign-in provider",  # docs/federation.md: not RFC 8176's, ours
}


def when(moment: datetime | None) -> str:
    """A time for people, in UTC (the pages run no script to localise it)."""
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def describe_methods(amr: tuple[str, ...], provider: str | None = None) -> str:
    """RFC 8176 methods in words: "password and one-time code"; `provider`: the name of the
    upstream provider a federated sign-in ("fed") went through, when known."""
    words = [
        f"sign-in through {provider}" if m == "fed" and provider else _METHODS[m]
        for m in amr
        if m in _METHODS
    ]
    if not words:
        return "unknown"
    text = " and ".join(words)
    return text[0].upper() + text[1:]


def notify_change(svc: Services, current: SignedInUser, what: str) -> None:
    notify(svc.reset.mailer, current.user, what, svc.ctx.clock(), svc.reset.domain_display_name)


def security_changed(
    svc: Services,
    request: Request,
    current: SignedInUser,
    event: str,
    what: str,
    key: str,
    **details: Any,
) -> Response:
    """A change the user made to how they sign in: audited as `event`, mailed to them (`what`
    was done), then back to the security page saying `key`."""
    account_actor(svc, request, current).audit(event, user_id=current.user.id, **details)
    notify_change(svc, current, what)
    return done(svc, SECURITY_PAGE, key)


# --- profile ------------------------------------------------------------------------------------


def _profile(
    svc: Services,
    request: Request,
    current: SignedInUser,
    query: Params,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return account_page(
        svc,
        "account_profile.html",
        current,
        "profile",
        query,
        status,
        form_action=url(svc, "/account/profile"),
        error=error,
        fresh=step_up_of(svc, current) is None,
        reauth_url=url(svc, "/account/reauth?to=profile"),
    )


def _save_profile(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    email = form.get("email", "").strip()
    if email != (current.user.email or "") and step_up_of(svc, current) is not None:
        # The address receives password-reset links: changing it takes a fresh sign-in.
        return to_sign_in(svc, "/account/", step_up_of(svc, current))
    try:
        updated, changed = update_profile(
            svc.ctx.store,
            current.user,
            display_name=form.get("display_name", ""),
            email=email,
            actor=account_actor(svc, request, current),
        )
    except AccountRefused as exc:
        return _profile(svc, request, current, Params([]), exc.message, 400)
    if not changed:
        return done(svc, "/account/", "profile-unchanged")
    if "email" in changed and current.user.email:
        # The old address hears of it too: it may be the owner's last way back in.
        notify_change(svc, current, f"your e-mail address was changed to {updated.email or 'none'}")
    notify_change(svc, SignedInUser(current.session, updated), "your profile was changed")
    return done(svc, "/account/", "profile")


async def profile_page(request: Request) -> Response:
    return await account_get(request, _profile, "/account/")


async def profile_save(request: Request) -> Response:
    return await account_post(request, _save_profile, "/account/")


# --- password -----------------------------------------------------------------------------------


def min_length(svc: Services) -> int:
    """The domain's password length now (its `password_min_length`, else the policy's)."""
    return domain_min_length(svc.ctx.store) or MIN_PASSWORD_LENGTH


def _password(
    svc: Services,
    request: Request,
    current: SignedInUser,
    query: Params,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return account_page(
        svc,
        "account_password.html",
        current,
        "password",
        query,
        status,
        form_action=url(svc, "/account/password"),
        min_length=min_length(svc),
        has_password=bool(current.user.password_hash),
        error=error,
    )


def _change_password(
    svc: Services, request: Request, current: SignedInUser, form: Params
) -> Response:
    change = PasswordChange(
        current=form.get("current_password", ""),
        new=form.get("new_password", ""),
        repeated=form.get("new_password_again", ""),
        ip=client_address(request),
        session_cookie=read_cookie(svc, request, SESSION_COOKIE),
        device_cookie=None,  # not sent to this path (signed_in_response, `device`)
    )
    try:
        outcome = change_password(
            svc.ctx.store,
            svc.login_policy,
            current.session,
            current.user,
            change,
            min_length=min_length(svc),
            now=svc.ctx.clock(),
            timed=svc.metrics.hashing,
            actor=account_actor(svc, request, current),
        )
    except AccountRefused as exc:
        status = 429 if exc.retry_after else 400
        response = _password(svc, request, current, Params([]), exc.message, status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    had = bool(current.user.password_hash)
    notify_change(svc, current, "your password was changed" if had else "a password was set")
    # This browser keeps a session: the new one, started after the cut-off.
    response = done(svc, "/account/password", "password" if had else "password-set")
    fresh = signed_in_response(svc, Params([]), outcome, device=False)
    for key, value in fresh.raw_headers:
        if key == b"set-cookie":
            response.raw_headers.append((key, value))
    return response


async def password_page(request: Request) -> Response:
    return await account_get(request, _password, "/account/password", sensitive=True)


async def password_save(request: Request) -> Response:
    return await account_post(request, _change_password, "/account/password", sensitive=True)


# --- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SessionView:
    id_hash: str
    started: str
    authenticated: str
    methods: str
    expires: str
    this: bool


def _sessions(svc: Services, request: Request, current: SignedInUser, query: Params) -> Response:
    now = svc.ctx.clock()
    ttl = timedelta(seconds=svc.login_policy.session_ttl_seconds)
    store = svc.ctx.store
    sessions = store.sessions.list_for_user(current.user.id, now)
    names: dict[str, str] = {}
    if any(s.upstream_provider for s in sessions):
        names = {p.id: p.display_name for p in store.upstream_providers.list()}
    views = [
        _SessionView(
            id_hash=s.id_hash,
            started=when(s.expires_at - ttl),
            authenticated=when(s.auth_time),
            methods=describe_methods(s.amr, names.get(s.upstream_provider or "")),
            expires=when(s.expires_at),
            this=s.id_hash == current.session.id_hash,
        )
        for s in sessions
    ]
    views.sort(key=lambda v: not v.this)
    return account_page(
        svc,
        "account_sessions.html",
        current,
        "sessions",
        query,
        sessions=views,
        others=sum(1 for v in views if not v.this),
        form_action=url(svc, "/account/sessions/end"),
    )


def _end_sessions(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    store, now, actor = svc.ctx.store, svc.ctx.clock(), account_actor(svc, request, current)
    which = form.get("session", "")
    if which == "others":
        if end_other_sessions(store, current.user, current.session.id_hash, now, actor):
            notify_change(svc, current, "your other sessions were signed out")
        return done(svc, "/account/sessions", "sessions-ended")
    if which in ("this", current.session.id_hash):
        raw = read_cookie(svc, request, SESSION_COOKIE)
        end_session(store, raw, now)
        actor.audit("account.signed_out", user_id=current.user.id)
        response = page(svc, "logged_out.html", message="You have been signed out.")
        delete_cookie(svc, response, SESSION_COOKIE)
        return response
    if end_one_session(store, current.user, which, now, actor):
        notify_change(svc, current, "one of your sessions was signed out")
    return done(svc, "/account/sessions", "session-ended")


async def sessions_page(request: Request) -> Response:
    return await account_get(request, _sessions, "/account/sessions")


async def sessions_end(request: Request) -> Response:
    return await account_post(request, _end_sessions, "/account/sessions")


# --- connected apps -----------------------------------------------------------------------------


def _scope_words(svc: Services, scopes: tuple[str, ...]) -> list[str]:
    out = []
    for scope in scopes:
        if scope in SCOPE_WORDS:  # the consent page's words
            out.append(SCOPE_WORDS[scope][0])
            continue
        resource = next((r for r in svc.resource_list() if scope.startswith(r.audience)), None)
        out.append(f"Use {resource.name}" if resource else f"Use {scope}")
    return list(dict.fromkeys(out))


def _apps(svc: Services, request: Request, current: SignedInUser, query: Params) -> Response:
    apps = connected_apps(
        svc.ctx.store, current.user.id, svc.ctx.clock(), svc.client, is_account_app
    )
    return account_page(
        svc,
        "account_apps.html",
        current,
        "apps",
        query,
        apps=[(a, _scope_words(svc, a.scopes), when(a.since)) for a in apps],
        form_action=url(svc, "/account/apps/remove"),
    )


def _remove_app(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    client_id = form.get("client_id", "")
    client = svc.client(client_id) if client_id and not is_account_app(client_id) else None
    try:
        if client is None:
            raise AccountRefused("This app has no access to your account.")
        remove_access(
            svc.ctx.store,
            current.user,
            client_id,
            svc.ctx.clock(),
            account_actor(svc, request, current),
        )
    except AccountRefused as exc:
        return account_page(
            svc,
            "account_apps.html",
            current,
            "apps",
            status=404,
            apps=[],
            error=exc.message,
            form_action=url(svc, "/account/apps/remove"),
        )
    notify_change(svc, current, f"the access of the app {client.name} was removed")
    return done(svc, "/account/apps", "app-removed")


async def apps_page(request: Request) -> Response:
    return await account_get(request, _apps, "/account/apps")


async def apps_remove(request: Request) -> Response:
    return await account_post(request, _remove_app, "/account/apps")


# --- a fresh sign-in on request ------------------------------------------------------------------

_REAUTH_TARGETS = {"profile": "/account/", "security": "/account/security"}


def _reauth(svc: Services, request: Request, current: SignedInUser, query: Params) -> Response:
    """ "Confirm it is you": sign in again (and with a second factor) to come back to a page."""
    target = _REAUTH_TARGETS.get(query.get("to", ""), "/account/")
    need = step_up_of(svc, current)
    if need is None:
        return RedirectResponse(url(svc, target), 303)
    return to_sign_in(svc, target, need)


async def reauth(request: Request) -> Response:
    return await account_get(request, _reauth, "/account/")


async def _to_account(request: Request) -> Response:
    return RedirectResponse(services(request).prefix + "/account/", status_code=308)


ACCOUNT_ROUTES = [
    Route("/account", _to_account, methods=["GET"]),
    Route("/account/", profile_page, methods=["GET"]),
    Route("/account/profile", profile_save, methods=["POST"]),
    Route("/account/password", password_page, methods=["GET"]),
    Route("/account/password", password_save, methods=["POST"]),
    Route("/account/sessions", sessions_page, methods=["GET"]),
    Route("/account/sessions/end", sessions_end, methods=["POST"]),
    Route("/account/apps", apps_page, methods=["GET"]),
    Route("/account/apps/remove", apps_remove, methods=["POST"]),
    Route("/account/reauth", reauth, methods=["GET"]),
]
