"""Real headless Chromium plays the user's browser (one per test module, a fresh context per
test). Where Chromium is missing these tests fail, never skip: `make test` installs it.

Module scope, not session scope: Playwright's sync API keeps an asyncio loop running in the
main thread while it is open, which would break later tests that call `asyncio.run()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, Api, integration_service, new_page
from tests.support.server import Server


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed: run `make test`, which installs it")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: sync_api.Browser) -> Iterator[sync_api.Page]:
    with new_page(chromium) as page:
        yield page


@pytest.fixture(scope="module")
def api(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The integration service, the seed's resource server, with WHOAMI activated."""
    with integration_service(server, tmp_path_factory.mktemp("integration")) as service:
        yield service


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The client CLI's configuration directory (its token cache) of one test."""
    return tmp_path / "config"
