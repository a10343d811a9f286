"""The token cache: one JSON file per issuer, client id and profile.

    $TESSERA_CONFIG_DIR                       (or $XDG_CONFIG_HOME/tessera, ~/.config/tessera)
    └── tokens/                               0700
        └── <profile>/                        0700
            └── <host>-<sha256(issuer, client_id)>.json   0600

Files are written whole to a temporary file in the same directory, then `os.replace`d, so a
reader never sees half a file and a crash never leaves one. A file that cannot be read as a
cache entry raises `CacheError` naming the file, never a traceback. A confidential app's secret
is kept in the entry (the file is 0600), so refresh and logout can authenticate; for an app
using `private_key_jwt`, the key file's path (with the chosen alg and a given key id) is kept,
never the key: refreshes read the key file again. A login using DPoP (RFC 9449) keeps its P-256
key pair here, private part included (`dpop_key`, a JWK): the tokens are bound to it and every
refresh and API call must be signed with it; it is useless without them, and they without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tessera.client.dpop import DPoPKey
from tessera.client.errors import CacheError
from tessera.client.private_key_jwt import KeyFile
from tessera.client.tokens import Endpoints, TokenSet

__all__ = ["CacheEntry", "TokenCache", "check_profile", "config_dir"]

_VERSION = 1
_PROFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_FILE = 1 << 20


def config_dir() -> Path:
    """`$TESSERA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tessera`, else `~/.config/tessera`."""
    explicit = os.environ.get("TESSERA_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():  # XDG Base Directory: relative paths are invalid
        return Path(xdg) / "tessera"
    return Path.home() / ".config" / "tessera"


def check_profile(profile: str) -> str:
    if not _PROFILE.match(profile):
        raise CacheError(
            f"invalid profile name {profile!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )
    return profile


@dataclass(frozen=True, slots=True)
class CacheEntry:
    profile: str
    client_id: str
    endpoints: Endpoints
    tokens: TokenSet
    scopes: tuple[str, ...] = ()
    client_secret: str | None = field(default=None, repr=False)
    logged_in_at: float = field(default_factory=time.time)
    private_key: KeyFile | None = None  # private_key_jwt: where the key is, never the key
    dpop_key: DPoPKey | None = field(default=None, repr=False)  # RFC 9449: None, no DPoP

    @property
    def issuer(self) -> str:
        return self.endpoints.issuer

    def with_tokens(self, tokens: TokenSet) -> CacheEntry:
        return replace(self, tokens=tokens)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "profile": self.profile,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "private_key": None if self.private_key is None else self.private_key.to_json(),
            "dpop_key": None if self.dpop_key is None else self.dpop_key.to_json(),
            "scopes": list(self.scopes),
            "endpoints": self.endpoints.to_json(),
            "tokens": self.tokens.to_json(),
            "logged_in_at": self.logged_in_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> CacheEntry:
        """`ValueError` with the reason when `data` is not a cache entry."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != _VERSION:
            raise ValueError(f"unknown format version {data.get('version')!r}")
        for name in ("profile", "issuer", "client_id"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"{name} is missing")
        secret = data.get("client_secret")
        if secret is not None and not isinstance(secret, str):
            raise ValueError("client_secret is not a string")
        scopes = data.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError("scopes is not a list of strings")
        endpoints, tokens = data.get("endpoints"), data.get("tokens")
        if not isinstance(endpoints, Mapping) or not isinstance(tokens, Mapping):
            raise ValueError("endpoints or tokens is missing")
        logged_in_at = data.get("logged_in_at", 0.0)
        if not isinstance(logged_in_at, int | float) or isinstance(logged_in_at, bool):
            raise ValueError("logged_in_at is not a number")
        key = data.get("private_key")
        private_key = None if key is None else KeyFile.from_json(key)
        if private_key is not None and secret is not None:
            raise ValueError("both a client secret and a private key")
        raw_dpop = data.get("dpop_key")
        dpop_key = None if raw_dpop is None else DPoPKey.from_json(raw_dpop)
        entry = cls(
            profile=data["profile"],
            client_id=data["client_id"],
            endpoints=Endpoints.from_json(endpoints),
            tokens=TokenSet.from_json(tokens),
            scopes=tuple(scopes),
            client_secret=secret,
            logged_in_at=float(logged_in_at),
            private_key=private_key,
            dpop_key=dpop_key,
        )
        if entry.issuer != data["issuer"]:
            raise ValueError("issuer and endpoints disagree")
        if entry.tokens.is_dpop and dpop_key is None:
            raise ValueError("a DPoP-bound token without its DPoP key")
        return entry


def _corrupted(path: Path, reason: str) -> CacheError:
    return CacheError(
        f"the token cache file {path} is corrupted ({reason})",
        hint=f"delete it (rm {path}) and sign in again with tessera login",
    )


class TokenCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root if root is not None else config_dir()) / "tokens"

    # --- where ------------------------------------------------------------------------------------

    def profile_dir(self, profile: str) -> Path:
        return self.root / check_profile(profile)

    def path_for(self, issuer: str, client_id: str, profile: str) -> Path:
        digest = hashlib.sha256(f"{issuer}\n{client_id}".encode()).hexdigest()[:24]
        host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(issuer).netloc) or "issuer"
        return self.profile_dir(profile) / f"{host}-{digest}.json"

    def _ensure_dir(self, directory: Path) -> None:
        for path, parents in ((self.root.parent, True), (self.root, False), (directory, False)):
            try:
                path.mkdir(mode=0o700, parents=parents, exist_ok=True)
            except OSError as exc:
                raise CacheError(f"cannot create {path} ({exc.strerror})") from None
        for path in (self.root, directory):
            os.chmod(path, 0o700)  # the tokens directories are private whatever the umask

    # --- read -------------------------------------------------------------------------------------

    def read(self, path: Path) -> CacheEntry:
        """The entry in `path`; `CacheError` naming the file when it is not one."""
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_FILE + 1)
        except OSError as exc:
            raise CacheError(f"cannot read the token cache file {path} ({exc.strerror})") from None
        if len(raw) > _MAX_FILE:
            raise _corrupted(path, "too large")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _corrupted(path, "not valid JSON") from None
        try:
            return CacheEntry.from_json(data)
        except ValueError as exc:
            raise _corrupted(path, str(exc)) from None

    def load(self, issuer: str, client_id: str, profile: str) -> CacheEntry | None:
        path = self.path_for(issuer, client_id, profile)
        if not path.exists():
            return None
        return self.read(path)

    def entries(self, profile: str) -> list[CacheEntry]:
        directory = self.profile_dir(profile)
        if not directory.is_dir():
            return []
        return [self.read(path) for path in sorted(directory.glob("*.json"))]

    def find(
        self, profile: str, issuer: str | None = None, client_id: str | None = None
    ) -> CacheEntry | None:
        """The profile's most recent login (optionally of one issuer and/or client)."""
        matches = [
            e
            for e in self.entries(profile)
            if (issuer is None or e.issuer == issuer.rstrip("/"))
            and (client_id is None or e.client_id == client_id)
        ]
        return max(matches, key=lambda e: e.logged_in_at, default=None)

    # --- write ------------------------------------------------------------------------------------

    def save(self, entry: CacheEntry) -> Path:
        """Write the entry atomically: temporary file (0600) in the same directory, fsync, and
        `os.replace`."""
        path = self.path_for(entry.issuer, entry.client_id, entry.profile)
        self._ensure_dir(path.parent)
        data = json.dumps(entry.to_json(), indent=2).encode("utf-8")
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        except OSError as exc:
            raise CacheError(f"cannot write to {path.parent} ({exc.strerror})") from None
        try:
            os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; say it
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise CacheError(f"cannot write {path} ({exc.strerror or exc})") from None
            raise
        return path

    def delete(self, entry: CacheEntry) -> bool:
        path = self.path_for(entry.issuer, entry.client_id, entry.profile)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            path.with_suffix(".lock").unlink()
        return True

    @contextlib.contextmanager
    def lock(self, entry: CacheEntry) -> Iterator[None]:
        """An exclusive advisory lock on the entry, so that two processes do not refresh the same
        refresh token at once (POSIX `flock`; elsewhere a no-op)."""
        path = self.path_for(entry.issuer, entry.client_id, entry.profile).with_suffix(".lock")
        self._ensure_dir(path.parent)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
