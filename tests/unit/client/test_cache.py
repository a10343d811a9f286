"""The token cache: 0600 files in 0700 directories, atomic writes, clear corruption errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tessera.client import cache as cache_module
from tessera.client.cache import CacheEntry, TokenCache, config_dir
from tessera.client.errors import CacheError
from tessera.client.tokens import Endpoints, TokenSet

ISSUER = "https://id.example.test"


def entry(
    profile: str = "default",
    client_id: str = "cli",
    access_token: str = "at-1",
    logged_in_at: float = 1.0,
) -> CacheEntry:
    return CacheEntry(
        profile=profile,
        client_id=client_id,
        endpoints=Endpoints(ISSUER, f"{ISSUER}/oauth2/v1/token", f"{ISSUER}/oauth2/v1/revoke"),
        tokens=TokenSet(
            access_token=access_token,
            expires_at=1000.0,
            refresh_token="rt-1",
            scope="openid",
        ),
        scopes=("openid",),
        client_secret="s3cret" if client_id == "web" else None,
        logged_in_at=logged_in_at,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_dir_prefers_tessera_config_dir_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSERA_CONFIG_DIR", str(tmp_path / "t"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    assert config_dir() == tmp_path / "t"
    monkeypatch.delenv("TESSERA_CONFIG_DIR")
    assert config_dir() == tmp_path / "x" / "tessera"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "tessera"


def test_saved_file_is_0600_in_0700_directories_even_with_a_lax_umask(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "cfg")
    old = os.umask(0o000)
    try:
        path = cache.save(entry())
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(cache.root) == 0o700
    assert path.is_relative_to(tmp_path / "cfg" / "tokens" / "default")


def test_round_trip_keeps_the_secret_in_the_file_only(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    saved = entry(client_id="web")
    path = cache.save(saved)
    loaded = cache.load(ISSUER, "web", "default")
    assert loaded == saved
    assert json.loads(path.read_text())["client_secret"] == "s3cret"
    assert "s3cret" not in repr(loaded)


def test_write_is_atomic_a_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenCache(tmp_path)
    path = cache.save(entry(access_token="old"))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.os, "replace", broken_replace)
    with pytest.raises(CacheError, match=r"cannot write .*\(disk full\)"):
        cache.save(entry(access_token="new"))
    assert cache.read(path).tokens.access_token == "old"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_write_goes_through_a_temporary_file_and_os_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenCache(tmp_path)
    calls: list[tuple[str, str]] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((os.path.basename(src), os.path.basename(dst)))
        assert mode(Path(src)) == 0o600
        real(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", spy)
    path = cache.save(entry())
    assert len(calls) == 1
    assert calls[0][0].startswith(".tmp-") and calls[0][1] == path.name


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"version": 99}', "unknown format version"),
        (b'{"version": 1, "profile": "default"}', "issuer is missing"),
        (b"", "not valid JSON"),
    ],
)
def test_a_corrupted_file_gives_a_clear_message_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    cache = TokenCache(tmp_path)
    path = cache.save(entry())
    path.write_bytes(content)
    with pytest.raises(CacheError) as caught:
        cache.load(ISSUER, "cli", "default")
    assert str(path) in caught.value.message
    assert "corrupted" in caught.value.message
    assert reason in caught.value.message
    assert caught.value.hint and "tessera login" in caught.value.hint


def test_bad_field_types_are_corruption_not_crashes(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    path = cache.save(entry())
    data = json.loads(path.read_text())
    data["tokens"]["expires_at"] = "soon"
    path.write_text(json.dumps(data))
    with pytest.raises(CacheError, match="expires_at is not a number"):
        cache.find("default")


def test_find_returns_the_profiles_latest_login_and_filters(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.save(entry(client_id="cli", logged_in_at=5))
    cache.save(entry(client_id="web", logged_in_at=9))
    cache.save(entry(profile="other", client_id="cli", logged_in_at=20))
    found = cache.find("default")
    assert found is not None and found.client_id == "web"
    by_client = cache.find("default", client_id="cli")
    assert by_client is not None and by_client.client_id == "cli"
    assert cache.find("default", issuer="https://elsewhere.test") is None
    assert cache.find("nobody") is None


def test_profiles_are_separate_files_and_delete_removes_one(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    a = cache.save(entry(profile="a"))
    b = cache.save(entry(profile="b"))
    assert a != b
    assert cache.delete(entry(profile="a")) is True
    assert not a.exists() and b.exists()
    assert cache.delete(entry(profile="a")) is False


@pytest.mark.parametrize("profile", ["", "../up", "a/b", ".hidden", "x" * 65])
def test_unsafe_profile_names_are_refused(tmp_path: Path, profile: str) -> None:
    with pytest.raises(CacheError, match="invalid profile"):
        TokenCache(tmp_path).profile_dir(profile)
