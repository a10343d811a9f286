"""Fixtures of the end-to-end tests (the module's `server` comes from tests/conftest.py or is
overridden by the module with its own environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flow import Browser
from tests.support.integration import Service, running_service
from tests.support.server import Server

# The modules `make test` runs a second time on PostgreSQL (`-m every_database`): those whose
# requests reach the store's use-once writes, races, revocation events, per-domain rows and
# the newest tables. The rest test the protocol and the CLI over HTTP, which do not depend on
# the database; the store contract suite (tests/unit/store) checks every store method on
# PostgreSQL, and tests/pg runs nodes on PostgreSQL and Redis.
EVERY_DATABASE = frozenset(
    {
        "test_account_pages",
        "test_admin_api",
        "test_admin_domains",
        "test_admin_groups_roles",
        "test_admin_revocation",
        "test_client_assertions",
        "test_client_credentials",
        "test_concurrent_redemption",
        "test_device_authorization",
        "test_dpop_nonces",
        "test_dpop_token_endpoint",
        "test_dynamic_registration",
        "test_federation",
        "test_flow_confidential_app",
        "test_flow_public_app_pkce",
        "test_integration_roles",
        "test_jwt_bearer",
        "test_password_reset",
        "test_pushed_authorization",
        "test_scim",
        "test_security_brute_force",
        "test_security_codes_pkce",
        "test_security_introspection_and_cutoffs",
        "test_security_tokens",
        "test_token_exchange",
        "test_two_nodes_example",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in EVERY_DATABASE:
            item.add_marker(pytest.mark.every_database)


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
