"""`tessera login --acr/--max-age` and `tessera call` on an RFC 9470 challenge, run as the real
command against a real protected API: a small Starlette app using `tessera.resource` (a route
requiring the multi-factor level) served by uvicorn on 127.0.0.1, trusting the loopback issuer
of tests/unit/resource/conftest.py. The step-up itself (a browser sign-in) is the end-to-end
tests' business; here `--no-step-up` must fail clearly, naming what the API asked for."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.tokens import Endpoints, TokenSet
from tessera.resource import TokenValidator
from tessera.resource.starlette import requires
from tessera.shared.acr import ACR_MFA, ACR_PASSWORD
from tests.unit.resource.conftest import AUDIENCE, Idp, starlette_api

READ = "orders:read"


@requires(READ, acr=ACR_MFA, max_age=600)
async def pay(request: Request) -> JSONResponse:
    return JSONResponse({"paid": True})


@requires(READ)
async def orders(request: Request) -> JSONResponse:
    return JSONResponse({"orders": []})


@pytest.fixture(scope="module")
def api(issuer: Idp) -> Iterator[str]:
    """The protected API's base URL."""
    validator = TokenValidator(issuer.issuer, AUDIENCE)
    app = starlette_api(validator, [Route("/pay", pay), Route("/orders", orders)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def logged_in(config: Path, issuer: Idp, acr: str) -> None:
    """A cached login whose access token has the `acr` level, signed in a minute ago."""
    token = issuer.token(scope=READ, acr=acr, auth_time=int(time.time()) - 60)
    endpoints = Endpoints(issuer.issuer, f"{issuer.issuer}/token")
    entry = CacheEntry("default", "cli", endpoints, TokenSet(token, expires_at=time.time() + 300))
    TokenCache(config).save(entry)


def tessera(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_CONFIG_DIR=str(config), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run(
        [sys.executable, "-m", "tessera", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_help_shows_the_step_up_options(tmp_path: Path) -> None:
    login_help = tessera(tmp_path, "login", "--help").stdout
    assert "--acr" in login_help and "--max-age" in login_help
    call_help = tessera(tmp_path, "call", "--help").stdout
    assert "--no-step-up" in call_help and "--no-browser" in call_help
    assert "--login-timeout" in call_help


def test_call_without_step_up_fails_naming_what_the_api_asked_for(
    tmp_path: Path, issuer: Idp, api: str
) -> None:
    logged_in(tmp_path, issuer, ACR_PASSWORD)
    assert tessera(tmp_path, "call", "GET", f"{api}/orders", "--no-step-up").returncode == 0
    done = tessera(tmp_path, "call", "GET", f"{api}/pay", "--no-step-up")
    assert done.returncode == 2, done.stderr
    assert "stronger or more recent sign-in" in done.stderr
    assert f"tessera login --issuer {issuer.issuer} --client-id cli --acr {ACR_MFA}" in done.stderr
    assert "--max-age 600" in done.stderr
    assert "Traceback" not in done.stderr


def test_call_json_without_step_up_gives_a_json_error(
    tmp_path: Path, issuer: Idp, api: str
) -> None:
    logged_in(tmp_path, issuer, ACR_PASSWORD)
    done = tessera(tmp_path, "call", "GET", f"{api}/pay", "--no-step-up", "--json")
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["reason"] == "insufficient_user_authentication"
    assert error["acr_values"] == [ACR_MFA]
    assert error["max_age"] == 600
    assert "--acr" in error["hint"]
    assert done.stdout == ""


def test_a_strong_enough_login_calls_straight_through(
    tmp_path: Path, issuer: Idp, api: str
) -> None:
    logged_in(tmp_path, issuer, ACR_MFA)
    done = tessera(tmp_path, "call", "GET", f"{api}/pay", "--no-step-up", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["body"] == {"paid": True}
