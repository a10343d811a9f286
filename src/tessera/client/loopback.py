"""The loopback redirect of native apps, RFC 8252 §7.3 and §8.3.

`LoopbackListener` listens on 127.0.0.1 on an ephemeral port (the identity domain accepts any
port for a registered `http://127.0.0.1/callback`), waits for the one authorization response,
checks it (`state` against CSRF, RFC 6749 §10.12; `iss` against mix-up, RFC 9207 §2.4), answers
the browser with a page saying the user may close the tab, and hands the code to the caller.
The first response on the callback path ends the wait, successful or not: a forged or stale
response fails the login instead of being ignored.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tessera.client.errors import LoginError, LoginTimeout

__all__ = ["AuthorizationResponse", "LoopbackListener", "check_authorization_response"]

_MAX_VALUE = 4096


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    code: str
    state: str
    iss: str | None


def check_authorization_response(
    params: Mapping[str, str], *, expected_state: str, expected_issuer: str, require_iss: bool
) -> AuthorizationResponse:
    """The checks of a redirect's query, in order; `LoginError` with a message for people."""
    state = params.get("state")
    if state != expected_state:
        # RFC 6749 §10.12: a response we did not ask for (CSRF, or an old tab).
        raise LoginError(
            "the sign-in response does not belong to this login (state mismatch)",
            hint="start the login again; if this repeats, someone may be interfering",
        )
    iss = params.get("iss")
    if iss is not None and iss != expected_issuer:
        # RFC 9207 §2.4: compare by simple string comparison; a mismatch is a mix-up attack.
        raise LoginError(
            f"the sign-in response came from another issuer ({iss!r}, expected {expected_issuer!r})"
        )
    if iss is None and require_iss:
        # RFC 9207 §2.4: the metadata promised `iss`, so a response without it is refused.
        raise LoginError("the sign-in response has no iss parameter (RFC 9207)")
    error = params.get("error")
    if error is not None:
        description = params.get("error_description")
        if error == "access_denied":
            raise LoginError(
                "sign-in was cancelled or access was denied"
                + (f" ({description})" if description else "")
            )
        raise LoginError(
            f"the identity domain answered {error}" + (f": {description}" if description else "")
        )
    code = params.get("code")
    if not code:
        raise LoginError("the sign-in response has neither a code nor an error")
    return AuthorizationResponse(code=code, state=state, iss=iss)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f5f6f8;color:#1d2330;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.5rem;
max-width:28rem;text-align:center}}
h1{{font-size:1.4rem;margin:.2rem 0 1rem}} p{{line-height:1.5;color:#4a5262}}
.mark{{font-size:2.2rem;color:{color}}}
</style></head>
<body><main><div class="mark" aria-hidden="true">{mark}</div><h1>{title}</h1>{body}</main></body>
</html>
"""


def _page(ok: bool, message: str) -> bytes:
    if ok:
        title, mark, color = "You are signed in", "&#10003;", "#1a7f37"
        body = (
            "<p>Tessera received your sign-in.</p>"
            "<p><strong>You can close this tab</strong> and return to your terminal.</p>"
        )
    else:
        title, mark, color = "Sign-in failed", "&#10007;", "#b42318"
        body = (
            f"<p>{html.escape(message)}</p>"
            "<p>You can close this tab; your terminal shows what to do next.</p>"
        )
    return _PAGE.format(title=title, mark=mark, color=color, body=body).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "tessera-login"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line holds the authorization code (docs/security.md rule 23)."""

    def do_GET(self) -> None:
        listener = self.server.listener
        url = urlsplit(self.path)
        if url.path != listener.path:
            self._send(404, _page(False, "This is not the sign-in callback."))
            return
        status, body = listener._receive(url.query)
        self._send(status, body)
        listener._done.set()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, listener: LoopbackListener, address: tuple[str, int]) -> None:
        self.listener = listener
        super().__init__(address, _Handler)


class LoopbackListener:
    """`with LoopbackListener(state, issuer, require_iss) as l: open(l.redirect_uri…); l.wait()`"""

    def __init__(
        self,
        *,
        expected_state: str,
        expected_issuer: str,
        require_iss: bool = True,
        path: str = "/callback",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError("the callback path starts with /")
        self.path = path
        self._expected_state = expected_state
        self._expected_issuer = expected_issuer
        self._require_iss = require_iss
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: AuthorizationResponse | LoginError | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LoopbackListener:
        if self._server is None:
            self._server = _Server(self, self._address)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="tessera-loopback",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackListener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the listener is not started")
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        host = str(self._address[0])
        return f"http://{host}:{self.port}{self.path}"

    # --- the one response ------------------------------------------------------------------------

    def _receive(self, query: str) -> tuple[int, bytes]:
        with self._lock:
            if self._result is not None:
                return 409, _page(False, "This sign-in has already finished.")
            try:
                params = _single_values(query)
                result: AuthorizationResponse | LoginError = check_authorization_response(
                    params,
                    expected_state=self._expected_state,
                    expected_issuer=self._expected_issuer,
                    require_iss=self._require_iss,
                )
            except LoginError as exc:
                result = exc
            self._result = result
        if isinstance(result, LoginError):
            return 400, _page(False, result.message)
        return 200, _page(True, "")

    def wait(self, timeout: float) -> AuthorizationResponse:
        """Block until the browser comes back; `LoginTimeout` after `timeout` seconds."""
        if self._server is None:
            raise RuntimeError("the listener is not started")
        if not self._done.wait(timeout):
            raise LoginTimeout(
                f"no sign-in response from the browser within {timeout:g} seconds",
                hint="run the login again (use --timeout to wait longer)",
            )
        result = self._result
        if isinstance(result, LoginError):
            raise result
        assert result is not None
        return result


def _single_values(query: str) -> dict[str, str]:
    """The query's parameters; a repeated or oversized one is a malformed response."""
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
    except ValueError:
        raise LoginError("the sign-in response is malformed") from None
    out: dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) != 1 or len(values[0]) > _MAX_VALUE:
            raise LoginError(f"the sign-in response has a malformed {name!r} parameter")
        out[name] = values[0]
    return out
