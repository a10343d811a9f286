"""A partner's or an app's own JWKS endpoint on loopback, for end-to-end tests: it serves
`document` (which a test may change, to rotate keys) and counts the fetches."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc.jwk import ECKey, KeySet, RSAKey

__all__ = ["JwksEndpoint", "public_jwks", "serving_jwks"]


def public_jwks(*keys: ECKey | RSAKey) -> dict[str, Any]:
    """The JWK Set of the public halves of `keys`."""
    return KeySet([type(k).import_key(k.as_dict(private=False)) for k in keys]).as_dict()


class JwksEndpoint:
    """Serves `document` at `url` on 127.0.0.1 (http: a development node fetches loopback)."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                outer.hits += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving_jwks() -> Iterator[JwksEndpoint]:
    served = JwksEndpoint()
    try:
        yield served
    finally:
        served.close()
