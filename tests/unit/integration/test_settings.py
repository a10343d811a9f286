"""The integration service's configuration: `TESSERA_INTEGRATION_…`, `…_FILE` for secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.integration.settings import IntegrationConfigError, load_settings
from tests.unit import test_config
from tests.unit.test_config import write

ISSUER = "https://id.example.test"

# No TESSERA_ variable from the caller's shell; the working directory is empty.
clean_env = test_config.clean_env


@pytest.fixture(autouse=True)
def environment(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the issuer is set, with a trailing slash."""
    monkeypatch.setenv("TESSERA_INTEGRATION_ISSUER", ISSUER + "/")


def test_the_issuer_loses_its_trailing_slash() -> None:
    assert load_settings().issuer == ISSUER


@pytest.mark.parametrize("issuer", ["https://id.example.test/?a=b", "ftp://id.example.test"])
def test_a_bad_issuer_is_a_config_error(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("TESSERA_INTEGRATION_ISSUER", issuer)
    with pytest.raises(IntegrationConfigError, match="^TESSERA_INTEGRATION_ISSUER: .*fragment"):
        load_settings()


def test_the_default_database_is_a_sqlite_file_under_var(tmp_path: Path) -> None:
    expected = f"sqlite:///{tmp_path.resolve() / 'var' / 'integration.db'}"
    assert load_settings().db_url == expected


def test_secrets_are_read_from_their_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = "postgresql://svc:pw@db.example.test/integration"
    monkeypatch.setenv("TESSERA_INTEGRATION_CLIENT_ID_FILE", str(write(tmp_path / "id", "app\n")))
    monkeypatch.setenv(
        "TESSERA_INTEGRATION_CLIENT_SECRET_FILE", str(write(tmp_path / "secret", "s3cret\n"))
    )
    monkeypatch.setenv("TESSERA_INTEGRATION_DATABASE_URL_FILE", str(write(tmp_path / "db", url)))
    settings = load_settings()
    assert settings.client_credentials == ("app", "s3cret")  # trailing newlines dropped
    assert settings.db_url == url


def test_a_variable_set_directly_wins_over_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSERA_INTEGRATION_CLIENT_ID", "direct")
    monkeypatch.setenv("TESSERA_INTEGRATION_CLIENT_ID_FILE", str(write(tmp_path / "id", "file")))
    assert load_settings().client_id == "direct"


def test_a_missing_secret_file_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "secret"
    monkeypatch.setenv("TESSERA_INTEGRATION_CLIENT_SECRET_FILE", str(missing))
    with pytest.raises(IntegrationConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("TESSERA_INTEGRATION_CLIENT_SECRET_FILE: ")
    assert str(missing) in message
