"""What the browser tests share: Chromium as the user's browser, the sign-in steps on Tessera's
login and consent pages, the client CLI as a real subprocess, and a small protected API.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.server import Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CONSUMER_SCOPE = "urn:opc:resource:consumer::all"  # the demo resource's (Oracle's) scope
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# --- the user in the browser -------------------------------------------------------------------


def sign_in(page: Page, username: str, password: str, *, consent: str = "allow") -> None:
    """On Tessera's pages: fill the login form, then answer the consent page (if shown)."""
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    button = page.locator(f"button[value={consent}]")
    try:
        button.wait_for(timeout=5000)
    except Exception:
        return  # consent remembered: already redirected
    button.click()


# --- the client CLI ----------------------------------------------------------------------------


def client_env(config_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no server settings, a private config directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_CONFIG_DIR=str(config_dir), PYTHONUNBUFFERED="1", COLUMNS="200")
    env.update(extra)
    return env


def tessera(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tessera", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class LoginProcess:
    """`tessera login … --no-browser` running; its stdout read line by line in a thread."""

    def __init__(self, env: dict[str, str], *args: str, secret: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tessera", "login", *args, "--no-browser"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        if secret is not None:
            self.proc.stdin.write(secret + "\n")
        self.proc.stdin.close()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def url(self, timeout: float = 30) -> str:
        """The authorization URL the command printed for the user to open."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                raise AssertionError(f"tessera login printed no URL: {self.finish()}")
            self.stdout.append(line)
            if line.startswith("http"):
                return line.strip()

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once the command has ended."""
        assert self.proc.stderr is not None
        code = self.proc.wait(timeout=timeout)
        while (line := self._lines.get(timeout=5)) is not None:
            self.stdout.append(line)
        return code, "".join(self.stdout), self.proc.stderr.read()


# --- a protected API ---------------------------------------------------------------------------


@dataclass
class Api:
    url: str  # GET it with a bearer token: 200 and who called
    base: str


def protected_api_app(server: Server) -> Any:
    """A tiny Starlette resource server built with `tessera.resource` for the demo resource:
    JWT validation and the revocation feed (so a logout reaches it within a second)."""
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tessera.resource import RevocationFeed, TokenValidator
    from tessera.resource.starlette import BearerBackend, TokenUser, bearer_error_response

    demo = server.demo
    app_creds = demo["confidential_app"]
    feed = RevocationFeed(
        server.issuer, app_creds["client_id"], app_creds["client_secret"], wait_seconds=1
    ).start()
    validator = TokenValidator(server.issuer, demo["resource"]["audience"], revocation=feed)

    @requires(CONSUMER_SCOPE)
    async def whoami(request: Request) -> JSONResponse:
        user = request.user
        assert isinstance(user, TokenUser)
        return JSONResponse(
            {
                "message": f"Hello, {user.display_name}",
                "sub": user.token.subject,
                "client_id": user.token.client_id,
                "scopes": sorted(user.token.scopes),
            }
        )

    return Starlette(
        routes=[Route("/api/whoami", whoami)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=BearerBackend(validator),
                on_error=bearer_error_response,
            )
        ],
        lifespan=_stop_on_shutdown(feed),
    )


def _stop_on_shutdown(feed: Any) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        yield
        feed.stop()

    return lifespan


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port in this process."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the protected API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def introspect(server: Server, token: str) -> dict[str, Any]:
    """RFC 7662, asked by the demo's confidential app (introspection needs a confidential one)."""
    app = server.demo["confidential_app"]
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": token},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data
