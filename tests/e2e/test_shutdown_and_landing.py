"""Shutdown during revocation-feed long-polls (issue 12): the open poll is answered normally
and the node stops without error logs. The landing page and the favicon."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.support.flow import demo_auth
from tests.support.server import Server, start_server


def test_sigterm_during_a_feed_long_poll_answers_it_and_logs_no_error(tmp_path: Path) -> None:
    server = start_server(tmp_path / "var")
    try:
        feed = f"{server.base_url}/oauth2/v1/revocations"
        auth = demo_auth(server)
        last = httpx.get(feed, params={"since": 0}, auth=auth).json()["last_seq"]
        answers: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: answers.append(
                httpx.get(feed, params={"since": last, "wait": 30}, auth=auth, timeout=60)
            )
        )
        poll.start()
        time.sleep(1.0)  # let the poll reach its wait
        assert poll.is_alive()
        server.proc.send_signal(signal.SIGTERM)
        poll.join(60)
        server.proc.wait(60)
    finally:
        server.stop()
    assert answers and answers[0].status_code == 200
    assert answers[0].json() == {"events": [], "last_seq": last}
    assert server.proc.returncode in (0, -signal.SIGTERM)
    logs = server.logs()
    assert "Traceback" not in logs
    for line in logs.splitlines():
        if line.startswith("{"):
            assert json.loads(line).get("level") not in ("error", "critical"), line
        else:
            assert not line.startswith(("ERROR", "CRITICAL")), line


def test_the_landing_page_names_the_domain_and_links_its_documents(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    host = server.base_url.removeprefix("http://")
    assert f"<h1 class=\"title\">{host}</h1>" in html
    for link in ("/.well-known/openid-configuration", "/console/", "/oauth2/v1/keys"):
        assert f'href="{link}"' in html
        assert httpx.get(f"{server.base_url}{link}").status_code == 200
    assert "sign in" in html.lower()
    # Nothing third-party, and the headers of every other page.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_favicon_is_served_with_caching_headers(server: Server) -> None:
    icon = httpx.get(f"{server.base_url}/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    assert "max-age=" in icon.headers["cache-control"]
    assert '<link rel="icon" href="/favicon.ico"' in httpx.get(f"{server.base_url}/").text
