"""The migration runner answers "is this database at head?" without Alembic, so its naming rule
must hold for every migrations folder: a revision is its file's prefix, in one linear chain."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from tessera.integration import database as integration_database
from tessera.shared.alembic_runner import AlembicRunner
from tessera.store.sql import migrate, upgrade
from tessera.store.sql.engine import make_engine

RUNNERS = {"identity domain": migrate._MIGRATIONS, "integration": integration_database._MIGRATIONS}


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_revisions_are_their_files_prefixes_in_one_chain(runner: AlembicRunner) -> None:
    scripts = ScriptDirectory.from_config(runner.config())
    assert scripts.get_heads() == [runner.head()]
    chain = list(reversed(list(scripts.walk_revisions())))  # base first
    assert [s.revision for s in chain] == runner.revisions()
    for script in chain:
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert chain[0].down_revision is None
    for older, newer in itertools.pairwise(chain):
        assert newer.down_revision == older.revision


def test_a_database_at_head_is_checked_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'at-head.db'}"
    upgrade(url)
    check = (
        "import sys\n"
        "from tessera.store.sql import head, upgrade\n"
        f"assert upgrade({url!r}) == (head(), head())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_several_recorded_revisions_are_refused_as_alembic_would(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'branched.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
        with pytest.raises(RuntimeError, match="several revisions"):
            migrate._MIGRATIONS.current(engine)
    finally:
        engine.dispose()


def test_an_unknown_revision_is_not_known() -> None:
    runner = migrate._MIGRATIONS
    assert runner.knows(runner.head()) and runner.knows(runner.revisions()[0])
    assert not runner.knows("9999") and not runner.knows("")
