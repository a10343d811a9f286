"""The integration service's database: URLs, migrations in their own version table, and
datetimes stored as naive UTC that come back aware."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError

from tessera.integration.database import (
    VERSION_TABLE,
    SchemaTooNew,
    head,
    make_engine,
    normalize_url,
    upgrade,
)
from tessera.integration.store import Caller, IntegrationStore, RunRecord
from tessera.shared.sealing import Sealer


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'integration.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    url = normalize_url("postgresql://svc:pw@db.example.test/integration")
    assert url == "postgresql+psycopg://svc:pw@db.example.test/integration"


def test_the_folder_of_a_sqlite_file_is_created(tmp_path: Path) -> None:
    normalize_url(f"sqlite:///{tmp_path / 'a' / 'b' / 'integration.db'}")
    assert (tmp_path / "a" / "b").is_dir()


def test_upgrade_migrates_an_empty_database_once(engine: Engine) -> None:
    assert upgrade(engine) == (None, head())
    assert upgrade(engine) == (head(), head())
    tables = set(inspect(engine).get_table_names())
    assert {"integrations", "runs", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # the identity domain's table stays free


def test_a_database_of_a_newer_version_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'i9999'"))
    with pytest.raises(SchemaTooNew, match="revision i9999.*refusing to downgrade"):
        upgrade(engine)


def test_run_times_come_back_aware_and_in_utc(engine: Engine) -> None:
    upgrade(engine)
    store = IntegrationStore(engine, Sealer(bytes(32)))
    started = datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    caller = Caller("alice", "user", "app", "Alice")
    run_id = store.record_run(
        RunRecord("ECHO", "01.00.0000", started, 1.5, "succeeded", 200, caller)
    )
    found = store.get_run(run_id)
    assert found is not None
    assert found.started_at == started
    assert found.started_at.tzinfo is UTC
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT started_at FROM runs")).scalar_one()
    assert str(stored).startswith("2026-03-01 12:30:05")  # naive UTC in the column


def test_a_naive_datetime_is_refused(engine: Engine) -> None:
    upgrade(engine)
    store = IntegrationStore(engine, Sealer(bytes(32)))
    caller = Caller("alice", "user", "app", None)
    naive = datetime(2026, 3, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        store.record_run(RunRecord("ECHO", "01.00.0000", naive, 1.0, "failed", 500, caller))
