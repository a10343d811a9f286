"""The body-size middleware on an ASGI application (RFC 9110 §15.5.14), with scripted
receive/send: a declared length over the limit is refused before the application runs, a
streamed body is refused as soon as it passes the limit, and bodies under it pass untouched."""

from __future__ import annotations

import asyncio
from typing import Any

from tessera.shared.body_limit import BodyLimitMiddleware


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, answers 200 with its length (or 400 when the client left)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"gone"})
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def run(
    chunks: list[bytes], *, length: int | None = None, path: str = "/oauth2/v1/token"
) -> tuple[int, bytes, int]:
    """(status, body, chunks the application was given)."""
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    given = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal given
        given += 1
        body = chunks[given - 1] if given <= len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": given < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = BodyLimitMiddleware(echo, limit=100, limits={"/admin/": 1000})
    asyncio.run(app(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], sent[1]["body"], given


def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read() -> None:
    assert run([b"x" * 50] * 100, length=5000) == (413, b"request body over 100 bytes\n", 0)


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    status, _, given = run([b"x" * 50] * 100)
    assert status == 413
    assert given == 3  # 150 bytes: nothing after the chunk that passed the limit


def test_a_body_under_the_limit_reaches_the_application() -> None:
    assert run([b"x" * 50, b"x" * 50], length=100) == (200, b"100", 2)


def test_a_path_prefix_has_its_own_limit() -> None:
    assert run([b"x" * 500], path="/admin/v1/users")[:2] == (200, b"500")
    assert run([b"x" * 500], path="/oauth2/v1/token")[0] == 413
