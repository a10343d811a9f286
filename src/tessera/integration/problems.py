"""Error answers: RFC 9457 problem details (`application/problem+json`) for the service's own
errors, and RFC 6750 bodies and challenges for token errors from `tessera.resource`.

No answer ever carries a stack trace: unexpected errors become a bare 500 problem and are
logged on the server.
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict, Unpack

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from tessera.shared.problems import PROBLEM_JSON, problem_document

__all__ = ["PROBLEM_JSON", "Problem", "install_error_handlers", "problem_response"]

_TYPE = "urn:tessera:integration:problem:"
_log = logging.getLogger("tessera.integration")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise to answer a problem: `kind` becomes the `type` URI (`urn:…:problem:<kind>`)."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> Response:
        body = problem_document(
            self.status, self.detail, type_uri=_TYPE + self.kind, title=self.title, extra=self.extra
        )
        return JSONResponse(
            body,
            status_code=self.status,
            headers={"Cache-Control": "no-store", **self.headers},
            media_type=PROBLEM_JSON,
        )


class _ProblemOptions(TypedDict, total=False):
    title: str | None
    headers: dict[str, str] | None
    extra: dict[str, Any] | None


def problem_response(
    status: int, kind: str, detail: str, **options: Unpack[_ProblemOptions]
) -> Response:
    """The answer of `Problem(status, kind, detail, …)`, for handlers that return it."""
    return Problem(status, kind, detail, **options).response()


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.detail, dict) and "error" in exc.detail:
            # A token error from tessera.resource: RFC 6750 §3 body and challenge as they are.
            return JSONResponse(
                exc.detail,
                status_code=exc.status_code,
                headers={"Cache-Control": "no-store", **(exc.headers or {})},
            )
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 404:
            detail = "there is nothing at this URL"
        return problem_response(exc.status_code, kind, detail, headers=dict(exc.headers or {}))

    async def on_invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": str(err.get("msg"))}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        return problem_response(400, "invalid-request", summary, extra={"errors": errors})

    async def on_database(_: Request, exc: Exception) -> Response:
        _log.error("database error: %s", type(exc).__name__)
        return problem_response(503, "database-unavailable", "the database is unavailable")

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        _log.error("unexpected error", exc_info=exc)
        return problem_response(500, "internal-error", "an unexpected error occurred")

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(SQLAlchemyError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
