"""Operator safety (issue 12): the demo domain, whose passwords are published, only when asked
and only on loopback; private data files; bad settings and a missing database are one clear
line and exit 2, never a traceback or a silently created empty domain."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.server import TEST_DB, base_env, free_port, run_cli, running_server


def sqlite_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The default SQLite database under `data_dir`, whatever TESSERA_TEST_DB says."""
    env = base_env(data_dir, **extra) if TEST_DB == "sqlite" else _without_postgres(data_dir)
    env.update(extra)
    return env


def _without_postgres(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
    )
    return env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_without_demo_creates_no_published_admin_and_says_how_to_add_one(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "var", demo=False) as server:
        assert not (server.data_dir / "demo-credentials.json").exists()
        assert server.cli_json("admin", "users", "list") == []
        assert "tessera admin users create <username> --admin" in " ".join(server.logs().split())


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("--demo", "--host", "0.0.0.0"), {}),  # noqa: S104
        (("--host", "0.0.0.0"), {"TESSERA_DEMO": "1"}),  # noqa: S104
        (("--demo",), {"TESSERA_ISSUER": "https://id.example.com"}),
    ],
    ids=["host-flag", "host-env", "issuer"],
)
def test_the_demo_is_refused_off_loopback(
    tmp_path: Path, args: tuple[str, ...], extra: dict[str, str]
) -> None:
    env = base_env(tmp_path / "var", **extra)
    result = run_cli(env, "serve", "--port", str(free_port()), *args, check=False)
    assert result.returncode == 2, result.stderr
    assert "refusing" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "var" / "demo-credentials.json").exists()


def test_data_dir_and_database_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with running_server(data_dir, env=sqlite_env(data_dir)) as server:
        server.cli("admin", "users", "list")
        assert mode(data_dir) == 0o700
        files = [p for p in data_dir.iterdir() if p.suffix != ".log"]
        names = {p.name for p in files}
        assert {"tessera.db", "tessera.db-wal", "demo-credentials.json"} <= names
        for path in files:
            assert mode(path) == 0o600, path


def test_an_existing_readable_data_dir_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = sqlite_env(data_dir)
    del env["TESSERA_SECRET_KEY"]  # a development key is generated into the data dir
    run_cli(env, "migrate")
    data_dir.chmod(0o755)
    for name in ("tessera.db", "secret.key"):
        (data_dir / name).chmod(0o644)
    run_cli(env, "admin", "users", "list")
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "tessera.db") == 0o600
    assert mode(data_dir / "secret.key") == 0o600


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TESSERA_DATABASE_URL", "sqlite://relative.db", "absolute path"),
        ("TESSERA_DATABASE_URL", "sqlite:///relative.db", "absolute path"),
        ("TESSERA_DATABASE_URL", "mysql://user@db.example/tessera", "mysql is not supported"),
        ("TESSERA_DATA_DIR", "{file}/var", "TESSERA_DATA_DIR"),
    ],
    ids=["sqlite-host", "sqlite-relative", "mysql", "data-dir-unusable"],
)
@pytest.mark.parametrize("command", [("serve", "--demo"), ("migrate",), ("admin", "users", "list")])
def test_bad_settings_are_one_line_and_exit_2_without_a_traceback(
    tmp_path: Path, variable: str, value: str, says: str, command: tuple[str, ...]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = sqlite_env(tmp_path / "var", **{variable: value.format(file=blocker)})
    args = (*command, "--port", str(free_port())) if command[0] == "serve" else command
    result = run_cli(env, *args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ")
    assert says in " ".join(result.stderr.split())


def test_admin_commands_elsewhere_refuse_instead_of_creating_an_empty_database(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "elsewhere" / "var"
    env = sqlite_env(data_dir)
    result = run_cli(env, "admin", "users", "list", "--json", check=False)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert str(data_dir.resolve() / "tessera.db") in message
    assert "TESSERA_DATA_DIR" in message and "TESSERA_DATABASE_URL" in message
    assert not (data_dir / "tessera.db").exists()
    # The configuration names the database in use.
    shown = run_cli(env, "config", "show", "--json").stdout
    assert str(data_dir.resolve() / "tessera.db") in shown


def test_the_integration_beside_is_refused_without_the_demo(tmp_path: Path) -> None:
    env = base_env(tmp_path / "var")
    port = str(free_port())
    result = run_cli(env, "serve", "--port", port, "--with-integration", port, check=False)
    assert result.returncode == 2
    assert "add --demo" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
