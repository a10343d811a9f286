"""`make run` (`tessera serve --demo --with-integration 8001`): the identity domain and the integration
service with the sample integration activated, and a "try it" block whose steps work."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.flow import Browser, code_from
from tests.support.server import base_env, free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = Path(tmp_path_factory.mktemp("make-run"))
    port, integration_port = free_port(), free_port()
    env = base_env(data)
    env.pop("TESSERA_ISSUER", None)  # as in `make run`: the issuer is where we listen
    log = data / "out.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tessera", "serve", "--demo", "--port", str(port),
             "--with-integration", str(integration_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "── Try it ──" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(0.2)
        yield log.read_text(), data
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_make_run_prints_a_try_it_block_whose_steps_work(demo: tuple[str, Path]) -> None:
    output, _ = demo
    authorize = re.search(r"(http://127\.0\.0\.1:\d+/oauth2/v1/authorize\?\S+)", output)
    assert authorize, output
    issuer = authorize.group(1).split("/oauth2/")[0]
    credentials = re.search(r"-u (\w+):(\S+) \\", output)
    assert credentials, output
    flow_url = re.search(r"(http://127\.0\.0\.1:\d+/ic/api/integration/v1/flows/rest/\S+)", output)
    assert flow_url, output
    # Steps 1-3: the browser signs alice in and is sent back with a code.
    browser = Browser(issuer)
    page = browser.http.get(authorize.group(1))
    page = browser.follow(browser.login(page, "alice", "Wonderland-Demo-2026"))
    code = code_from(browser.consent(page))
    # Steps 4-6: the token exchange, as the curl line does it.
    token = httpx.post(f"{issuer}/oauth2/v1/token", auth=(credentials.group(1),
                       credentials.group(2)), data={"grant_type": "authorization_code",
                       "code": code, "redirect_uri": "http://127.0.0.1:8080/callback"})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    # Steps 7-8: the management API and the sample integration answer the user.
    base = flow_url.group(1).split("/flows/")[0]
    listed = httpx.get(f"{base}/integrations", headers=headers)
    assert listed.status_code == 200, listed.text
    ran = httpx.post(flow_url.group(1), headers=headers,
                     json={"lines": [{"sku": "A-1", "qty": 2}]})
    assert ran.status_code == 200, ran.text
    assert ran.json()["requestedBy"]["name"] == "Alice Example"
    assert ran.json()["orderId"] == "42"
    assert httpx.post(flow_url.group(1), json={}).status_code == 401
