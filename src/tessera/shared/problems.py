"""RFC 9457 problem details, the error shape of the admin API (`tessera.web.problems`) and the
integration service (`tessera.integration.problems`); OAuth endpoints use RFC 6749 §5.2
(`tessera.shared.oauth_errors`) instead."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = ["PROBLEM_JSON", "problem_document"]

PROBLEM_JSON = "application/problem+json"


def problem_document(
    status: int,
    detail: str,
    *,
    type_uri: str = "about:blank",
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The members of RFC 9457 §3.1 (`type`, `title`, `status`, `detail`), then the extension
    members (§3.2). With `about:blank`, `title` is the status phrase (§4.2.1)."""
    return {
        "type": type_uri,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
