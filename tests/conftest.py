"""Shared fixtures: a real identity domain on loopback, started once per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A demo identity domain (as `make run` starts it) on a free port."""
    srv = start_server(Path(tmp_path_factory.mktemp("idp")))
    try:
        yield srv
    finally:
        srv.stop()
