"""What the integration service's unit tests share: the service's real app in process."""

from __future__ import annotations

import warnings
from pathlib import Path

from starlette.exceptions import StarletteDeprecationWarning

from tessera.integration.app import create_app
from tessera.integration.settings import load_settings
from tests.unit.resource.conftest import AUDIENCE, Idp

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def service(issuer: Idp, tmp_path: Path, **settings: object) -> TestClient:
    """The integration service's app (its migrations on a new SQLite file, its validator for
    the loopback `issuer`, no revocation feed) under a TestClient; `settings`: more of
    `load_settings`'."""
    config = load_settings(
        issuer=issuer.issuer,
        audience=AUDIENCE,
        revocation="none",
        database_url=f"sqlite:///{tmp_path / 'integration.db'}",
        secret_key="k" * 32,
        **settings,
    )
    return TestClient(create_app(config), raise_server_exceptions=False)
