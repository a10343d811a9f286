"""Fixtures of the end-to-end tests (the module's `server` comes from tests/conftest.py or is
overridden by the module with its own environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flow import Browser
from tests.support.integration import Service, running_service
from tests.support.server import Server


@pytest.fixture
def browser(server: Server) -> Iterator[Browser]:
    """A fresh cookie jar on the module's server, for one test."""
    b = Browser(server.base_url)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def service(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The integration service of the module's server, allowed to call loopback: the module's
    own backend and the identity domain's token endpoint are on 127.0.0.1. (A module that
    tests the default egress policy defines its own, e.g. test_integration_egress.py.)"""
    with running_service(server, tmp_path_factory.mktemp("integration"), "127.0.0.1") as svc:
        yield svc
