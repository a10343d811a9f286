"""A request-body size limit for every route of an ASGI application (RFC 9110 §15.5.14).

A declared `Content-Length` over the limit is refused before the application runs; a body sent
without one (chunked) is counted as it arrives, and the request is refused as soon as the count
passes the limit: the application is told the client went away, its answer is discarded and the
client gets 413. Nothing over the limit is ever buffered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Answer", "BodyLimitMiddleware", "Render"]

Scope = dict[str, Any]
Message = dict[str, Any]
# The 413 answer: content type, body and headers, in the protocol's own error shape.
Answer = tuple[str, bytes, Mapping[str, str]]
# (the request's scope, its path below the application's root, the limit): the scope, for what
# the answer says about the request (an identity domain's pages name it).
Render = Callable[[Scope, str, int], Answer]


def _plain(_scope: Scope, _path: str, limit: int) -> Answer:
    return "text/plain; charset=utf-8", f"request body over {limit} bytes\n".encode(), {}


class BodyLimitMiddleware:
    """`limit` bytes by default; `limits` maps path prefixes to their own (longest wins)."""

    def __init__(
        self,
        app: Any,
        *,
        limit: int,
        limits: Mapping[str, int] | None = None,
        render: Render = _plain,
    ) -> None:
        self.app = app
        self.limit = limit
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))
        self.render = render

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        limit = self.limit_for(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, path, limit, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    # The application stops reading as for a client that went away.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the application's answer to a body it never fully got
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, path, limit, send)

    async def _refuse(self, scope: Scope, path: str, limit: int, send: Any) -> None:
        content_type, body, extra = self.render(scope, path, limit)
        headers = {"cache-control": "no-store", **{k.lower(): v for k, v in extra.items()}}
        headers.update(
            {
                "content-type": content_type,
                "content-length": str(len(body)),
                # The rest of the body is not read: the connection cannot be reused.
                "connection": "close",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _route_path(scope: Scope) -> str:
    """The path below the application's root (an identity domain's prefix, a mount point)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
