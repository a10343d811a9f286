"""Fixtures shared by more than one package of unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.resource.conftest import Idp, served_idp


@pytest.fixture(scope="module")
def issuer() -> Iterator[Idp]:
    """The loopback issuer of tests/unit/resource/conftest.py (discovery and JWKS over HTTP), one
    per module: for the in-process integration service and the CLI tests that validate tokens
    against it."""
    with served_idp() as idp:
        yield idp
