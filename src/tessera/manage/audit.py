"""Who makes an administrative change, and where its audit events go.

Every change of the manage layer is audited here, once, whichever front end made it: the admin
API's actor is the administrator's token subject (events go through the node's audit sink), the
CLI's is `cli:<OS user>` (events are written straight to the store, as the command is short-lived).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tessera.audit import audit_event
from tessera.store.protocols import Store

__all__ = ["Actor", "Recorder", "cli_actor", "store_actor"]


class Recorder(Protocol):
    """`DomainAudit.record`'s shape."""

    def __call__(
        self,
        type: str,
        *,
        actor: str | None = ...,
        user_id: str | None = ...,
        client_id: str | None = ...,
        ip: str | None = ...,
        **details: Any,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    record: Recorder
    ip: str | None = None

    def audit(
        self,
        type: str,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        **details: Any,
    ) -> None:
        self.record(
            type, actor=self.name, ip=self.ip, user_id=user_id, client_id=client_id, **details
        )


def store_actor(name: str, store: Store, clock: Callable[[], datetime]) -> Actor:
    """An actor whose events are written to the store at once (no background sink)."""

    def record(
        type: str,
        *,
        actor: str | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        ip: str | None = None,
        **details: Any,
    ) -> None:
        store.audit.append([audit_event(clock, type, actor, user_id, client_id, ip, details)])

    return Actor(name, record)


def cli_actor(store: Store, clock: Callable[[], datetime]) -> Actor:
    """The operator at a terminal: `cli:<login name>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        user = "unknown"
    return store_actor(f"cli:{user}", store, clock)
