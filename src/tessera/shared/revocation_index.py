"""The in-memory index of revocation events that every token validation consults, on the
identity domain and at resource servers (docs/architecture.md, "Revocation that reaches resource
servers"): revoked `jti`s, revoked grants (`sid`), and subject cut-offs ("every token of U
issued before T"). Pure: events in, answers out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RevocationIndex"]

_JTI, _GRANT, _SUBJECT = "jti", "grant", "subject"


class RevocationIndex:
    """Apply events; answer whether a token's claims are revoked."""

    def __init__(self) -> None:
        self.seq = 0
        self._jti: dict[str, float] = {}
        self._grants: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}  # sub -> (not_before, expires)

    def apply(self, kind: str, key: str, not_before: float, expires_at: float, seq: int) -> None:
        if kind == _JTI:
            self._jti[key] = expires_at
        elif kind == _GRANT:
            self._grants[key] = expires_at
        elif kind == _SUBJECT:
            previous = self._subjects.get(key)
            if previous is None or previous[0] < not_before:
                self._subjects[key] = (not_before, expires_at)
        self.seq = max(self.seq, seq)

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        jti, sid, sub = claims.get("jti"), claims.get("sid"), claims.get("sub")
        if isinstance(jti, str) and jti in self._jti:
            return True
        if isinstance(sid, str) and sid in self._grants:
            return True
        if isinstance(sub, str) and sub in self._subjects:
            issued = claims.get("iat")
            # A token issued in the same second as the cut-off is revoked too (iat has 1 s
            # resolution): a re-login after a revocation gets a token from the next second on.
            if not isinstance(issued, int | float) or issued <= self._subjects[sub][0]:
                return True
        return False

    def prune(self, now: float) -> None:
        for table in (self._jti, self._grants):
            for key in [k for k, exp in table.items() if exp <= now]:
                del table[key]
        for key in [k for k, (_, exp) in self._subjects.items() if exp <= now]:
            del self._subjects[key]
