"""`tessera admin apps create --help` names every grant type the token endpoint offers (the
one list, `tessera.oauth.grant_types.GRANT_TYPES`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tessera.oauth.grant_types import GRANT_TYPES


def test_the_grant_type_help_lists_every_grant_type(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_CONFIG_DIR=str(tmp_path), COLUMNS="600", NO_COLOR="1", TERM="dumb")
    shown = subprocess.run(
        [sys.executable, "-m", "tessera", "admin", "apps", "create", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    line = next(x for x in shown.splitlines() if "--grant-type" in x)
    assert all(grant in line for grant in GRANT_TYPES), line
