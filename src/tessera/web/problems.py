"""RFC 9457 problem details for the admin API: one shape for every error.

`type` is `about:blank` (RFC 9457 §4.2.1), so `title` is the HTTP status phrase; `detail` says
what went wrong for a person, `error` is a stable code for programs, and invalid input adds
`errors`, one entry per field (`loc`, `msg`). Token errors keep their `WWW-Authenticate`
challenge (RFC 6750 §3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from tessera.manage.errors import Conflicting, InvalidInput, NotFoundError
from tessera.shared.problems import PROBLEM_JSON, problem_document
from tessera.store.protocols import StoreUnavailable

__all__ = ["install_problem_handlers", "problem", "problem_body", "problem_from_http"]

_CODES = {
    400: "invalid_request",
    401: "invalid_token",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    503: "temporarily_unavailable",
}

_TOKEN_DETAIL = {
    "invalid_token": "a valid bearer token for the admin API is needed",
    "insufficient_scope": "the token does not carry the admin scope",
}


def problem_body(
    status: int,
    detail: str,
    *,
    error: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {"error": error or _CODES.get(status, "invalid_request")}
    if errors is not None:
        extra["errors"] = errors
    return problem_document(status, detail, extra=extra)


def problem_from_http(exc: HTTPException) -> JSONResponse:
    """An `HTTPException` (ours, FastAPI's, a token error with RFC 6750's code) as a problem."""
    if isinstance(exc.detail, dict):  # a token error: RFC 6750's code and description
        code = str(exc.detail.get("error", "")) or None
        detail = str(exc.detail.get("error_description") or _TOKEN_DETAIL.get(code or "", ""))
    else:
        code, detail = None, str(exc.detail)
    return problem(exc.status_code, detail, error=code, headers=dict(exc.headers or {}))


def problem(
    status: int,
    detail: str,
    *,
    error: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, error=error, errors=errors),
        status,
        headers={**(headers or {}), "Cache-Control": "no-store"},
        media_type=PROBLEM_JSON,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic's `input` may echo a password: only where and what.
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]


def install_problem_handlers(api: FastAPI, on_store_down: Callable[[], None]) -> None:
    """Every error of `api` (ours, FastAPI's and Starlette's) as a problem."""

    @api.exception_handler(Conflicting)
    async def _conflict(_: Request, exc: Conflicting) -> Response:
        return problem(409, str(exc))

    @api.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> Response:
        return problem(400, str(exc))

    @api.exception_handler(NotFoundError)
    async def _missing(_: Request, exc: NotFoundError) -> Response:
        return problem(404, str(exc))

    @api.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(p for p in first["loc"] if p != "body") or "the request"
        return problem(400, f"{where}: {first['msg']}", errors=errors)

    @api.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        return problem_from_http(exc)

    @api.exception_handler(StoreUnavailable)
    async def _down(_: Request, exc: StoreUnavailable) -> Response:
        on_store_down()
        return problem(
            503,
            "the identity domain's database is unavailable; retry later",
            headers={"Retry-After": "1"},
        )
