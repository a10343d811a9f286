"""Shared fixtures: a real identity domain on loopback, started once per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A demo identity domain (as `make run` starts it) on a free port."""
    with running_server(tmp_path_factory.mktemp("idp")) as srv:
        yield srv
