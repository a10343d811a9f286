"""What every grant receives: the parsed form, the authenticated client and the time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tessera.domain.model import Client

__all__ = ["TokenRequest"]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request past the dispatcher's checks (RFC 6749 §3.2, §3.2.1): parameters not
    repeated, `grant_type` supported and allowed for `client`, which is authenticated."""

    grant_type: str
    form: Mapping[str, str]
    client: Client
    now: datetime
    # RFC 9449 §5: the thumbprint of the key of the request's verified DPoP proof (its `jti`
    # recorded), None for a request without one.
    dpop_jkt: str | None = None
