"""Configuration from the environment: `TESSERA_…`, `…_FILE` for secrets, the development key.

Issue 2, item 2; docs/architecture.md ("Decisions").
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest

from tessera.config import ConfigError, load_settings

SECRET = "s3cret-key-for-tests-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TESSERA_ variable from the caller's shell; the working directory is empty."""
    for name in list(os.environ):
        if name.startswith("TESSERA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("TESSERA_DATA_DIR", str(path))
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------------


def test_default_issuer_is_loopback_port_8000() -> None:
    assert load_settings().issuer == "http://127.0.0.1:8000"


def test_default_environment_is_development() -> None:
    settings = load_settings()
    assert settings.env == "development"
    assert not settings.production


def test_default_database_is_a_sqlite_file_under_var(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'tessera.db'}"
    assert settings.is_sqlite


def test_default_database_is_a_sqlite_file_under_the_data_dir(data_dir: Path) -> None:
    assert load_settings().db_url == f"sqlite:///{data_dir.resolve() / 'tessera.db'}"


def test_default_lifetimes_follow_the_architecture() -> None:
    settings = load_settings()
    assert (settings.access_token_ttl, settings.code_ttl) == (3600, 60)


# --- the environment ---------------------------------------------------------------------------


def test_issuer_comes_from_the_environment_without_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_ISSUER", "https://id.example.test/tenant/")
    assert load_settings().issuer == "https://id.example.test/tenant"


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", "postgresql://u:pw@db.example.test/tessera")
    settings = load_settings()
    assert settings.db_url == "postgresql://u:pw@db.example.test/tessera"
    assert not settings.is_sqlite


def test_secret_key_is_read_from_its_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSERA_SECRET_KEY_FILE", str(write(tmp_path / "key", SECRET + "\n")))
    settings = load_settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == SECRET  # the trailing newline is dropped


def test_database_url_is_read_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql://tessera:pw@db.example.test:5432/tessera"
    monkeypatch.setenv("TESSERA_DATABASE_URL_FILE", str(write(tmp_path / "db", url + "\n")))
    assert load_settings().db_url == url


@pytest.mark.parametrize("variable", ["TESSERA_SECRET_KEY_FILE", "TESSERA_DATABASE_URL_FILE"])
def test_a_missing_secret_file_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    missing = tmp_path / "nowhere" / "secret"
    monkeypatch.setenv(variable, str(missing))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert str(missing) in message


def test_secret_key_from_a_file_keys_the_same_as_from_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSERA_SECRET_KEY", SECRET)
    direct = load_settings().master_key
    monkeypatch.delenv("TESSERA_SECRET_KEY")
    monkeypatch.setenv("TESSERA_SECRET_KEY_FILE", str(write(tmp_path / "key", SECRET)))
    assert load_settings().master_key == direct


# --- the key-encryption key --------------------------------------------------------------------


def test_production_without_a_secret_key_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    monkeypatch.setenv("TESSERA_ISSUER", "https://idp.example.test")
    settings = load_settings()
    with pytest.raises(ConfigError, match="TESSERA_SECRET_KEY .* is required with TESSERA_ENV"):
        settings.master_key  # noqa: B018
    assert not (data_dir / "secret.key").exists()  # nothing generated in production


def test_production_with_a_secret_key_file_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    monkeypatch.setenv("TESSERA_ISSUER", "https://idp.example.test")
    monkeypatch.setenv("TESSERA_SECRET_KEY_FILE", str(write(tmp_path / "key", SECRET)))
    assert len(load_settings().master_key) == 32


def test_development_generates_a_0600_secret_key_and_warns(data_dir: Path) -> None:
    settings = load_settings()
    with pytest.warns(UserWarning, match="generated a development key"):
        key = settings.master_key
    path = data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text(encoding="utf-8").strip()) >= 32
    assert len(key) == 32


def test_the_development_key_is_stable_on_the_second_load(data_dir: Path) -> None:
    with pytest.warns(UserWarning):
        first = load_settings().master_key
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second load neither warns nor regenerates
        second = load_settings().master_key
    assert first == second


def test_a_short_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings().master_key  # noqa: B018


def test_subkeys_differ_by_purpose_and_from_the_master_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_SECRET_KEY", SECRET)
    settings = load_settings()
    keys = {settings.master_key, settings.subkey("signing-keys"), settings.subkey("client-secret")}
    assert len(keys) == 3
    assert SECRET.encode() not in keys


# --- redaction ---------------------------------------------------------------------------------


def test_redacted_hides_the_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_SECRET_KEY", SECRET)
    shown = load_settings().redacted()
    assert shown["secret_key"] == "********"
    assert SECRET not in repr(shown)


def test_redacted_hides_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", "postgresql://u:pw@h/db")
    shown = load_settings().redacted()
    assert shown["database_url"] == "postgresql://u:***@h/db"
    assert "pw" not in repr(shown)


def test_redacted_hides_the_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_REDIS_URL", "redis://:hunter2hunter2@cache:6379/0")
    assert "hunter2" not in repr(load_settings().redacted())


def test_redacted_shows_every_setting_in_plain_values(data_dir: Path) -> None:
    shown = load_settings().redacted()
    assert shown["issuer"] == "http://127.0.0.1:8000"
    assert shown["data_dir"] == str(data_dir)
    assert shown["database_url"] == f"sqlite:///{data_dir.resolve() / 'tessera.db'}"
    assert shown["secret_key"] is None


# --- bad values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://id.example.test/?tenant=a",
        "https://id.example.test/#top",
        "ftp://id.example.test",
        "id.example.test",
    ],
)
def test_a_bad_issuer_is_a_config_error(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("TESSERA_ISSUER", issuer)
    with pytest.raises(ConfigError, match="^TESSERA_ISSUER: .*without query or fragment"):
        load_settings()


def test_a_bad_trusted_proxy_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TRUSTED_PROXIES", '["10.0.0.1", "not-an-address"]')
    with pytest.raises(ConfigError, match="^TESSERA_TRUSTED_PROXIES: .*not-an-address"):
        load_settings()


def test_a_trusted_proxy_list_not_in_json_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_TRUSTED_PROXIES", "10.0.0.1")
    with pytest.raises(ConfigError, match="^TESSERA_TRUSTED_PROXIES: .*JSON"):
        load_settings()


def test_trusted_proxies_accept_addresses_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TRUSTED_PROXIES", '["10.0.0.0/8", "192.0.2.7", "::1"]')
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.7", "::1"]


def test_an_unknown_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ENV", "staging")
    with pytest.raises(ConfigError, match="^TESSERA_ENV: "):
        load_settings()


def test_an_out_of_range_lifetime_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_CODE_TTL", "3600")
    with pytest.raises(ConfigError, match="^TESSERA_CODE_TTL: "):
        load_settings()


def test_production_refuses_a_plain_http_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    monkeypatch.setenv("TESSERA_ISSUER", "http://idp.example.test")
    with pytest.raises(ConfigError, match="must be https"):
        load_settings()


def test_worker_threads_default_to_the_cpus_and_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().worker_threads is None  # two per CPU, at least 4 (the web app)
    monkeypatch.setenv("TESSERA_WORKER_THREADS", "12")
    assert load_settings().worker_threads == 12
    monkeypatch.setenv("TESSERA_WORKER_THREADS", "0")
    with pytest.raises(ConfigError, match="TESSERA_WORKER_THREADS"):
        load_settings()


def test_metrics_allow_takes_networks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().metrics_allow == ["127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("TESSERA_METRICS_ALLOW", '["10.0.0.0/8", "fd00::/8"]')
    assert load_settings().metrics_allow == ["10.0.0.0/8", "fd00::/8"]
    monkeypatch.setenv("TESSERA_METRICS_ALLOW", '["not-a-network"]')
    with pytest.raises(ConfigError, match="TESSERA_METRICS_ALLOW"):
        load_settings()


@pytest.mark.parametrize(("cpus", "threads"), [({0}, 4), ({0, 1}, 4), (set(range(8)), 16)])
def test_the_default_worker_threads_are_two_per_usable_cpu_at_least_four(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], threads: int
) -> None:
    from tessera.web import app

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cpus, raising=False)
    assert app._default_worker_threads() == threads


# --- issue 12: database URLs, the demo, body limits -------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://relative.db",
        "sqlite:///relative.db",
        "sqlite://",
        "mysql://user@db.example/tessera",
        "not a url",
    ],
)
def test_a_database_url_that_cannot_work_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", url)
    with pytest.raises(ConfigError, match="^TESSERA_DATABASE_URL: ") as caught:
        load_settings()
    assert "user@db" not in str(caught.value)  # the value, which may hold a password, is not echoed


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////srv/tessera/tessera.db",
        "postgresql://tessera:pw@127.0.0.1:5432/tessera",
        "postgresql+psycopg://127.0.0.1/tessera",
        "postgres://127.0.0.1/tessera",
    ],
)
def test_working_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", url)
    assert load_settings().db_url == url


def test_the_demo_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().demo is False
    monkeypatch.setenv("TESSERA_DEMO", "1")
    assert load_settings().demo is True


def test_body_limits_default_to_64_kib_and_1_mib_for_the_admin_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert (settings.max_body_bytes, settings.admin_max_body_bytes) == (65536, 1048576)
    monkeypatch.setenv("TESSERA_MAX_BODY_BYTES", "100")
    with pytest.raises(ConfigError, match="TESSERA_MAX_BODY_BYTES"):
        load_settings()
