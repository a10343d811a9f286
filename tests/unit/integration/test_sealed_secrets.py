"""Connection secrets are sealed at rest, on SQLite and PostgreSQL, and the i0002 migration
seals those stored before it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text, update

from tessera.integration.database import VERSION_TABLE, make_engine, upgrade
from tessera.integration.document import BasicAuth, ClientCredentialsAuth, InvokeStep, load_document
from tessera.integration.schema import integrations
from tessera.integration.store import IntegrationStore, SealError
from tessera.shared.sealing import Sealer, derive_key
from tests.support.pg import fresh_database

NOW = datetime(2026, 12, 5, tzinfo=UTC)
PASSWORD = "basic-Pa55word-never-in-clear"
CLIENT_SECRET = "oauth-client-Secret-never-in-clear"
SEALER = Sealer(derive_key(b"k" * 32, b"test"))


def _document(code: str = "SEALED") -> dict[str, object]:
    return {
        "code": code,
        "version": "01.00.0000",
        "name": "Sealed secrets",
        "trigger": {"method": "POST", "path": "/x"},
        "steps": [
            {
                "type": "invoke",
                "url": "https://backend.example.test/a",
                "auth": {"type": "basic", "username": "svc", "password": PASSWORD},
            },
            {
                "type": "invoke",
                "url": "https://backend.example.test/b",
                "auth": {
                    "type": "oauth_client_credentials",
                    "token_url": "https://issuer.example.test/token",
                    "client_id": "svc",
                    "client_secret": CLIENT_SECRET,
                },
            },
        ],
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Path | None]]:
    if request.param == "sqlite":
        path = tmp_path / "integration.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine, path
        finally:
            engine.dispose()
        return
    with fresh_database() as url:
        engine = make_engine(url)
        try:
            yield engine, None
        finally:
            engine.dispose()


def _stored_text(engine: Engine, path: Path | None) -> str:
    with engine.connect() as conn:
        rows = conn.execute(select(integrations.c.document)).scalars().all()
    text_ = json.dumps(rows)
    if path is not None:  # the SQLite file and its write-ahead log, byte for byte
        for part in path.parent.glob(path.name + "*"):
            text_ += part.read_bytes().decode("latin-1")
    return text_


def _secrets(store: IntegrationStore, code: str) -> tuple[str, str]:
    found = store.get(code, "01.00.0000")
    assert found is not None
    basic, oauth = (s for s in found.document.steps if isinstance(s, InvokeStep))
    assert isinstance(basic.auth, BasicAuth) and isinstance(oauth.auth, ClientCredentialsAuth)
    return basic.auth.password.get_secret_value(), oauth.auth.client_secret.get_secret_value()


def test_connection_secrets_are_never_stored_in_plain_text(
    db: tuple[Engine, Path | None],
) -> None:
    engine, path = db
    upgrade(engine, SEALER)
    store = IntegrationStore(engine, SEALER)
    store.create(load_document(_document()), NOW)
    store.replace(load_document(_document()), NOW)
    stored = _stored_text(engine, path)
    assert PASSWORD not in stored and CLIENT_SECRET not in stored
    assert "sealed:v1:" in stored
    assert _secrets(store, "SEALED") == (PASSWORD, CLIENT_SECRET)  # the runner sees them open


def test_the_migration_seals_secrets_stored_in_plain_text_before_it(
    db: tuple[Engine, Path | None],
) -> None:
    engine, path = db
    upgrade(engine, SEALER)
    plain = load_document(_document("OLD")).stored()  # as i0001 kept it
    with engine.begin() as conn:
        conn.execute(
            insert(integrations).values(
                code="OLD",
                version="01.00.0000",
                document=plain,
                state="configured",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'i0001'"))
    assert PASSWORD in _stored_text(engine, None)
    upgrade(engine, SEALER)
    engine.dispose()  # SQLite: what is on disk, not only what a query answers
    stored = _stored_text(engine, path)
    assert PASSWORD not in stored and CLIENT_SECRET not in stored
    assert _secrets(IntegrationStore(engine, SEALER), "OLD") == (PASSWORD, CLIENT_SECRET)


def test_a_sealed_secret_does_not_open_with_another_key_or_in_another_integration(
    db: tuple[Engine, Path | None],
) -> None:
    engine, _ = db
    upgrade(engine, SEALER)
    store = IntegrationStore(engine, SEALER)
    store.create(load_document(_document("ONE")), NOW)
    store.create(load_document(_document("TWO")), NOW)
    with pytest.raises(SealError):
        IntegrationStore(engine, Sealer(bytes(32))).get("ONE", "01.00.0000")
    with engine.begin() as conn:  # a sealed secret copied into another integration
        one = conn.execute(
            select(integrations.c.document).where(integrations.c.code == "ONE")
        ).scalar_one()
        conn.execute(
            update(integrations).where(integrations.c.code == "TWO").values(document={**one, "code": "TWO"})
        )
    with pytest.raises(SealError):
        store.get("TWO", "01.00.0000")
