"""`make run`'s companion: the integration service beside the demo identity domain.

In demo mode `tessera serve --with-integration` starts `tessera integration serve` as a child
process (configured to follow the identity domain's revocation feed as the demo confidential
app), deploys and activates the sample integration once both are up, and prints a "try it"
block: the seed's eight steps with curl.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tessera.cli.output import console, err_console

__all__ = ["start_integration_beside"]

_SAMPLE = Path(__file__).resolve().parent.parent / "integration" / "samples" / "echo_order.yaml"
_API = "/ic/api/integration/v1"


def start_integration_beside(
    issuer: str, creds: dict[str, Any], data_dir: Path, port: int
) -> subprocess.Popen[bytes]:
    """Start the integration service and, in a thread, deploy the sample when both are up."""
    app = creds["confidential_app"]
    env = {
        **os.environ,
        "TESSERA_INTEGRATION_ISSUER": issuer,
        "TESSERA_INTEGRATION_AUDIENCE": creds["resource"]["audience"],
        "TESSERA_INTEGRATION_CLIENT_ID": app["client_id"],
        "TESSERA_INTEGRATION_CLIENT_SECRET": app["client_secret"],
        "TESSERA_INTEGRATION_DATABASE_URL": f"sqlite:///{(data_dir / 'integration.db').resolve()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", "integration", "serve", "--port", str(port)],
        env=env,
        preexec_fn=_die_with_parent,
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    url = f"http://127.0.0.1:{port}"
    threading.Thread(target=_deploy_when_ready, args=(issuer, creds, url), daemon=True).start()
    return proc


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the identity domain's process ends, however it ends
    (uvicorn re-raises SIGTERM after its shutdown, so atexit alone is not enough)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait(url: str, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def _deploy_when_ready(issuer: str, creds: dict[str, Any], url: str) -> None:
    if not (_wait(f"{issuer}/health/ready") and _wait(f"{url}/health/ready")):
        err_console.print("[red]The integration service did not start; see its log above.[/]")
        return
    app = creds["confidential_app"]
    scope = creds["resource"]["manage_scope"]  # deploying needs the manage scope
    try:
        token = httpx.post(
            f"{issuer}/oauth2/v1/token",
            auth=(app["client_id"], app["client_secret"]),
            data={"grant_type": "client_credentials", "scope": scope},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
        with httpx.Client(base_url=url + _API, headers=headers, timeout=30) as http:
            created = http.post("/integrations", content=_SAMPLE.read_bytes())
            if created.status_code not in (201, 200, 409):
                raise RuntimeError(f"deploying the sample: HTTP {created.status_code}")
            state = http.get("/integrations/ECHO_ORDER|01.00.0000").json().get("state")
            if state != "activated":
                http.post("/integrations/ECHO_ORDER|01.00.0000/activate").raise_for_status()
    except (httpx.HTTPError, KeyError, RuntimeError, ValueError) as exc:
        err_console.print(f"[red]Could not deploy the sample integration: {exc}[/]")
        return
    # Plain text, not a panel: the commands must survive copy and paste unwrapped.
    console.print(_try_it(issuer, creds, url), soft_wrap=True, markup=False, highlight=False)


def _try_it(issuer: str, creds: dict[str, Any], url: str) -> str:
    app = creds["confidential_app"]
    user = creds["user"]
    authorize = f"{issuer}/oauth2/v1/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": app["redirect_uri"],
            "scope": f"openid {creds['resource']['scope']}",
            "state": "try-it",
        }
    )
    flow = f"{url}{_API}/flows/rest/ECHO_ORDER/01.00.0000/orders/42"
    return (
        "\n── Try it ──\n"
        "The integration service is up, with the sample integration ECHO_ORDER activated.\n\n"
        "The seed's eight steps with curl (the client application is you):\n"
        f" 1-2. Open this in a browser; sign in as {user['username']} / {user['password']} "
        "and allow:\n"
        f"      {authorize}\n"
        f" 3.   The browser is sent to {app['redirect_uri']}?code=… (nothing listens there):\n"
        "      copy the code from the address bar:  CODE=…\n"
        " 4-6. Exchange it for an access token (the code works once, for 60 s):\n"
        f"      TOKEN=$(curl -s -u {app['client_id']}:{app['client_secret']} \\\n"
        '        -d grant_type=authorization_code -d "code=$CODE" '
        f"-d redirect_uri={app['redirect_uri']} \\\n"
        f"        {issuer}/oauth2/v1/token | python3 -c "
        "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        " 7-8. Call the integration service with it:\n"
        f'      curl -H "Authorization: Bearer $TOKEN" {url}{_API}/integrations\n'
        f'      curl -X POST -H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' \\\n"
        f'        -d \'{{"lines": [{{"sku": "A-1", "qty": 2}}]}}\' {flow}\n\n'
        f"Or let the CLI do steps 1-6:  tessera login --issuer {issuer} "
        f"--client-id {creds['public_app']['client_id']} --scope '{creds['resource']['scope']}'\n"
        f"                   and then:  tessera call GET {url}{_API}/integrations\n"
    )
