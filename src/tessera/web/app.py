"""The identity domain's ASGI application."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tessera.config import load_settings
from tessera.context import Context, open_context
from tessera.domain.identity_domains import IdentityDomain
from tessera.manage.housekeeping import purge_all_domains
from tessera.shared.body_limit import Answer, BodyLimitMiddleware, Render
from tessera.store.protocols import StoreError, StoreUnavailable
from tessera.web.account_routes import ACCOUNT_PAGE_ROUTES, ACCOUNT_POSTS
from tessera.web.admin import AuthenticateFirst, build_admin_api
from tessera.web.browser import BROWSER_ROUTES
from tessera.web.console import CONSOLE_ROUTES
from tessera.web.device import DEVICE_ROUTES
from tessera.web.discovery import DISCOVERY_ROUTES
from tessera.web.domains import (
    DomainDirectory,
    DomainRouter,
    DomainServicesCache,
    Refusal,
    RefusalPage,
)
from tessera.web.federation import FEDERATION_ROUTES, FEDERATION_THREADS
from tessera.web.health import health_routes
from tessera.web.home import HOME_ROUTES
from tessera.web.logs import RequestLogMiddleware, configure_logging, get_logger
from tessera.web.metrics import metrics_routes
from tessera.web.pages import error_page, page_headers
from tessera.web.par import PAR_ROUTES
from tessera.web.problems import problem_body
from tessera.web.proxy import ClientAddressMiddleware
from tessera.web.registration import REGISTRATION_ROUTES
from tessera.web.responses import NO_STORE, json_response
from tessera.web.revocation_feed import REVOCATION_FEED_ROUTES
from tessera.web.scim import SCIM_ROUTES, is_scim_path, scim_error_body
from tessera.web.second_factor import FACTOR_ROUTES
from tessera.web.services import SCOPE_KEY, Node, Services, build_node, build_services
from tessera.web.token_endpoints import TOKEN_ROUTES
from tessera.web.userinfo import USERINFO_ROUTES

__all__ = ["build_app", "create_app"]

_STATIC = Path(__file__).parent / "static"


def _lifespan(
    node: Node, domains: DomainServicesCache
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = node.ctx.settings.worker_threads or _default_worker_threads()
        app.state.federation_limiter = anyio.CapacityLimiter(FEDERATION_THREADS)
        await node.wakeup.start()
        restore = _on_exit_signal(node.wakeup.close)
        housekeeping = asyncio.create_task(_housekeeping(node, domains))
        yield
        restore()
        housekeeping.cancel()
        await node.wakeup.stop()
        node.audit.close()
        close_mail = getattr(node.mailer, "close", None)
        if close_mail is not None:
            await run_in_threadpool(close_mail, 5.0)  # flush what is queued, briefly
        node.jwks_fetcher.close()
        node.upstream.close()
        node.ctx.close()

    return lifespan


def _on_exit_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on SIGTERM or SIGINT, then the server's own handler (which starts the
    graceful shutdown: no new connections, then a wait for the open requests). Returns the
    function that puts the server's handlers back."""
    previous: dict[int, Any] = {}

    def handler(sig: int, frame: FrameType | None) -> None:
        callback()
        chained = previous.get(sig)
        if callable(chained):
            chained(sig, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (an application served by a test client)
            break

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _default_worker_threads() -> int:
    """Two per CPU this process may use: the blocking work is mostly CPU (hashing, SQLite) or
    short database round trips, and more threads than that only contend for the GIL and, with
    argon2id's 19 MiB per hash, for the caches (measured: 4 threads on 2 CPUs cost 15-30 %
    less CPU per refresh and per sign-in at concurrency 32 than anyio's default 40)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere all CPUs
    cpus = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return max(4, 2 * cpus)


async def _housekeeping(node: Node, domains: DomainServicesCache, every: float = 600.0) -> None:
    """Delete expired rows of every domain now and then (bounded statements, flat in the
    number of domains); harmless when several nodes do it at once."""
    log = get_logger("tessera.housekeeping")
    while True:
        await asyncio.sleep(every)
        try:
            now = node.ctx.clock()
            report = await run_in_threadpool(
                purge_all_domains, node.ctx.store, now, node.ctx.settings.login_failure_window
            )
            for svc in domains.loaded():  # only the domains this node holds in memory
                svc.revocations.prune(now)
            log.info("purged", **asdict(report))
        except StoreError as exc:
            log.warning("purge_failed", error=str(exc))


def _exception_handlers(svc: Services) -> dict[Any, Any]:
    """A database outage is a 503 that retries, an HTTP error the protocol's JSON, anything
    else a logged 500 without details."""
    log = get_logger("tessera.web")

    async def store_unavailable(_: Request, exc: Exception) -> Response:
        svc.health.mark_down()
        log.error("store_unavailable", error=str(exc))
        return json_response(
            {
                "error": "temporarily_unavailable",
                "error_description": "the identity domain's database is unavailable; retry later",
            },
            503,
            headers={**NO_STORE, "Retry-After": "1"},
        )

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response(
            {
                "error": "not_found" if exc.status_code == 404 else "invalid_request",
                "error_description": exc.detail,
            },
            exc.status_code,
        )

    async def server_error(_: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return json_response({"error": "server_error"}, 500, headers=NO_STORE)

    return {
        StoreUnavailable: store_unavailable,
        HTTPException: http_error,
        Exception: server_error,
    }


def build_app(ctx: Context) -> Starlette:
    """The application over an open context."""
    node = build_node(ctx)
    default = ctx.store.domains.get(ctx.domain_id) or IdentityDomain(
        ctx.domain_id, ctx.domain_id, "Default", ctx.clock()
    )
    svc = build_services(node, default, ctx)
    domains = DomainServicesCache(node, svc, ctx.settings.domain_cache_size)
    directory = DomainDirectory(ctx.store.domains)
    routes = [
        *DISCOVERY_ROUTES,
        *TOKEN_ROUTES,
        *PAR_ROUTES,
        *DEVICE_ROUTES,
        *REGISTRATION_ROUTES,
        *BROWSER_ROUTES,
        *FEDERATION_ROUTES,
        *FACTOR_ROUTES,
        *ACCOUNT_PAGE_ROUTES,
        *USERINFO_ROUTES,
        *REVOCATION_FEED_ROUTES,
        *health_routes(ctx),
        *CONSOLE_ROUTES,
        *HOME_ROUTES,
        *metrics_routes(svc.metrics, ctx.settings.metrics_allow),
        # SCIM 2.0 (/scim/v2, and /admin/v1/Users… before the admin API's mount).
        *SCIM_ROUTES,
        # Every domain's admin API (the domain router gives each request its domain).
        Mount(
            "/admin/v1",
            AuthenticateFirst(build_admin_api(svc, on_domain_changed=_forget(directory, domains))),
        ),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]

    app = Starlette(
        routes=routes,
        exception_handlers=_exception_handlers(svc),
        lifespan=_lifespan(node, domains),
    )
    app.state.ctx = ctx
    app.state.services = svc  # the default domain's, for the module-level handlers
    app.state.domains = domains
    # Innermost of ours, so that refused bodies are logged and counted like any answer.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=ctx.settings.max_body_bytes,
        limits={"/admin/": ctx.settings.admin_max_body_bytes},
        render=_too_large_answer(svc),
    )
    app.add_middleware(
        DomainRouter,
        directory=directory,
        cache=domains,
        base_issuer=ctx.settings.issuer,
        render=_refusal_page(svc),
    )
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=ctx.settings.trusted_proxies)
    app.add_middleware(RequestLogMiddleware, metrics=svc.metrics)
    return app


# Pages a browser posts forms to: their errors are pages, not JSON.
_BROWSER_POSTS = frozenset(
    (
        "/oauth2/v1/authorize",
        "/oauth2/v1/login",
        "/oauth2/v1/login/factor",
        "/oauth2/v1/login/passkey",
        "/oauth2/v1/login/enroll",
        "/oauth2/v1/consent",
        "/oauth2/v1/userlogout",
        *ACCOUNT_POSTS,
        "/device",  # RFC 8628 §3.3 (tessera.oauth.device.DEVICE_PAGE_PATH)
    )
)


def _forget(directory: DomainDirectory, domains: DomainServicesCache) -> Callable[[str], None]:
    """What this node forgets after it changed a domain: its row and its services."""

    def forget(domain_id: str) -> None:
        directory.forget()
        domains.forget(domain_id)

    return forget


def _too_large_answer(default: Services) -> Render:
    def render(scope: Scope, path: str, limit: int) -> Answer:
        if path in _BROWSER_POSTS:
            response = error_page(
                scope.get(SCOPE_KEY) or default,  # the request's domain, which the page names
                Request(scope),
                "Request too large",
                f"The form sent more than {limit} bytes.",
                413,
                hint="Go back to the application and start again.",
            )
            return "text/html; charset=utf-8", bytes(response.body), page_headers()
        detail = f"the request body is larger than {limit} bytes"
        if is_scim_path(path):
            return "application/scim+json", scim_error_body(413, detail), NO_STORE
        if path.startswith("/admin/"):
            return "application/problem+json", orjson.dumps(problem_body(413, detail)), NO_STORE
        # The OAuth error shape (RFC 6749 §5.2).
        body = {
            "error": "invalid_request",
            "error_description": detail,
        }
        return "application/json", orjson.dumps(body), NO_STORE

    return render


def _refusal_page(svc: Services) -> RefusalPage:
    """A browser asking for an unknown or disabled domain gets a page, not JSON."""
    template = svc.templates.get_template("error.html")

    def render(_: Scope, refusal: Refusal) -> tuple[str, bytes]:
        title = "Identity domain disabled" if refusal.status == 403 else "No such identity domain"
        html = template.render(
            title=title,
            message=refusal.description[:1].upper() + refusal.description[1:] + ".",
            hint="",
        )
        return "text/html; charset=utf-8", html.encode()

    return render


def create_app() -> Starlette:
    """The uvicorn factory: configuration from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx = open_context(settings, migrate=settings.is_sqlite)
    ctx.keys.reload()
    return build_app(ctx)
