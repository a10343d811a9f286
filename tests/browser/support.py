"""What the browser tests share: Chromium as the user's browser, the sign-in steps on Tessera's
login and consent pages, the client CLI as a real subprocess, the integration service as the
protected API and the sample web client as the seed's client application.
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
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.server import Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
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


@contextmanager
def new_page(chromium: Browser) -> Iterator[Page]:
    """A page in a browser context of its own: no cookie or storage shared with another."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Page, username: str, password: str, *, consent: str = "allow") -> None:
    """On Tessera's pages: fill the login form, then answer the consent page (if shown)."""
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    button = page.locator(f"button[value={consent}]")
    try:
        button.wait_for(timeout=5000)
    except Exception:
        return  # consent remembered: already redirected
    button.click()


def drawn(page: Page) -> None:
    """Until the console has drawn its page: after a navigation or a save (which draws the page
    again), what the old page shows is still there a moment, and a click on it is lost."""
    from playwright.sync_api import expect

    expect(page.locator("#main")).not_to_have_attribute("aria-busy", "true")


def console_as_admin(page: Page, server: Server) -> list[str]:
    """Sign in to the demo domain's console as its administrator and wait for the first page;
    returns the list that collects the browser console's errors from then on."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server.base_url}/console/")
    sign_in(page, "admin", "Tessera-Demo-Root-2026")  # first party: no consent page
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    return errors


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


# --- the protected API: the integration service ----------------------------------------------

API = "/ic/api/integration/v1"
VERSION = "01.00.0000"
# An integration that answers a GET with who called, from the caller's access token.
WHOAMI = {
    "code": "WHOAMI",
    "version": VERSION,
    "name": "Who am I",
    "trigger": {"method": "GET", "path": "/whoami"},
    "steps": [
        {
            "type": "map",
            "name": "who",
            "output": {
                "message": "join('', ['Hello, ', caller.user_displayname || caller.sub])",
                "sub": "caller.sub",
                "sub_type": "caller.sub_type",
                "client_id": "caller.client_id",
            },
        },
        {"type": "respond", "status": 200},
    ],
}


@dataclass
class Api:
    """The integration service (`tessera integration serve`) with WHOAMI activated."""

    base: str

    @property
    def url(self) -> str:
        """GET it with a user's bearer token: 200 and who called."""
        return f"{self.base}{API}/flows/rest/WHOAMI/{VERSION}/whoami"

    @property
    def integrations(self) -> str:
        return f"{self.base}{API}/integrations"

    def echo_order(self, order: str) -> str:
        """POST an order to the packaged sample integration ECHO_ORDER."""
        return f"{self.base}{API}/flows/rest/ECHO_ORDER/{VERSION}/orders/{order}"


@contextmanager
def integration_service(
    server: Server,
    workdir: Path,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    app: dict[str, str] | None = None,
    manage_scope: str | None = None,
    enforce_roles: bool = True,
) -> Iterator[Api]:
    """Start the integration service as its own process, following the identity domain's
    revocation feed as a confidential app that serves its resource, and activate WHOAMI. By
    default: the demo's issuer, resource and confidential app; pass them for another domain
    (and `enforce_roles=False` when its resource declares no roles: scopes only)."""
    issuer = issuer or server.issuer
    audience = audience or server.demo["resource"]["audience"]
    app = app or server.demo["confidential_app"]
    # Deploying needs the manage scope, which the consumer scope does not grant.
    manage_scope = manage_scope or server.demo["resource"]["manage_scope"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_INTEGRATION_ISSUER=issuer,
        TESSERA_INTEGRATION_AUDIENCE=audience,
        TESSERA_INTEGRATION_CLIENT_ID=app["client_id"],
        TESSERA_INTEGRATION_CLIENT_SECRET=app["client_secret"],
        TESSERA_INTEGRATION_DATABASE_URL=f"sqlite:///{workdir / 'integration.db'}",
        TESSERA_INTEGRATION_REVOCATION_WAIT="1",  # short long-polls: quick shutdown
        TESSERA_INTEGRATION_ENFORCE_ROLES=str(enforce_roles).lower(),
        PYTHONUNBUFFERED="1",
    )
    log_path = workdir / "integration.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tessera", "integration", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        _await_ready(proc, f"{api.base}/health/ready", 60, "the integration service", log_path)
        response = httpx.post(
            f"{issuer}/oauth2/v1/token",
            data={"grant_type": "client_credentials", "scope": manage_scope},
            auth=(app["client_id"], app["client_secret"]),
        )
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        sample = resources.files("tessera.integration").joinpath("samples/echo_order.yaml")
        for code, body in (
            ("WHOAMI", {"json": WHOAMI}),
            ("ECHO_ORDER", {"content": sample.read_bytes()}),
        ):
            media = "application/json" if "json" in body else "application/yaml"
            created = httpx.post(
                api.integrations, headers={**headers, "Content-Type": media}, **body
            )
            assert created.status_code == 201, created.text
            activated = httpx.post(f"{api.integrations}/{code}|{VERSION}/activate", headers=headers)
            assert activated.status_code == 200, activated.text
        yield api
    finally:
        _stop(proc, 15)


# --- the seed's client application: the sample web client --------------------------------------


@dataclass
class WebClient:
    url: str
    client_id: str
    redirect_uri: str
    log: Path


@contextmanager
def web_client(
    *,
    port: int,
    issuer: str,
    app: dict[str, str],
    scope: str,
    api: Api,
    workdir: Path,
) -> Iterator[WebClient]:
    """Start `examples.web_client` (uvicorn, a subprocess) on `port` as the confidential `app`
    (client_id, client_secret) of `issuer`, calling `api` with the user's token. Its redirect
    URI is `http://127.0.0.1:<port>/callback`: register the app with it."""
    base = f"http://127.0.0.1:{port}"
    redirect_uri = f"{base}/callback"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        ISSUER=issuer,
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET=app["client_secret"],
        REDIRECT_URI=redirect_uri,
        SCOPE=scope,
        API_URL=api.url,
        PYTHONUNBUFFERED="1",
    )
    log = workdir / "web_client.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.web_client"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _await_ready(proc, base + "/", 30, "the web client", log)
        yield WebClient(base, app["client_id"], redirect_uri, log)
    finally:
        _stop(proc, 10)


def _await_ready(
    proc: subprocess.Popen[bytes], url: str, seconds: float, what: str, log: Path
) -> None:
    """Until `url` answers 200; fail with the process's log if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while not _ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes], seconds: float) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


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
