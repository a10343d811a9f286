"""Fixtures of the end-to-end tests (the module's `server` comes from tests/conftest.py or is
overridden by the module with its own environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flow import Browser
from tests.support.server import Server


@pytest.fixture
def browser(server: Server) -> Iterator[Browser]:
    """A fresh cookie jar on the module's server, for one test."""
    b = Browser(server.base_url)
    try:
        yield b
    finally:
        b.close()
