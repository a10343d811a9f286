"""Fixtures shared by more than one package of unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tessera.context import Context, domain_signing_key
from tessera.manage.audit import store_actor
from tessera.manage.domains import CreatedDomain, create_domain
from tests.unit.resource.conftest import Idp, served_idp


@pytest.fixture(scope="module")
def issuer() -> Iterator[Idp]:
    """The loopback issuer of tests/unit/resource/conftest.py (discovery and JWKS over HTTP), one
    per module: for the in-process integration service and the CLI tests that validate tokens
    against it."""
    with served_idp() as idp:
        yield idp


def add_domain(ctx: Context, name: str, **options: Any) -> CreatedDomain:
    """A new identity domain `name` on the node of `ctx`, created as `tessera domains create`
    does (its signing key derived from the node's secret); `options`: `create_domain`'s."""
    return create_domain(
        ctx.store,
        name=name,
        base_issuer=ctx.settings.issuer,
        signing_key_for=lambda domain_id: domain_signing_key(ctx.settings, domain_id),
        now=ctx.clock(),
        actor=store_actor("cli:test", ctx.store, ctx.clock),
        **options,
    )
