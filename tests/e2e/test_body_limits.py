"""Request-body limits (issue 12): a large body, declared or streamed (chunked), is refused
with 413 before it is buffered, and the admin API checks the token before it reads a body; the
server's memory does not grow with what a client sends. The integration service has the same
limit. The answers keep each protocol's error shape."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.admin import console_token
from tests.support.flow import demo_auth
from tests.support.integration import API, Service, bearer, client_token, running_service
from tests.support.server import Server

MB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_raw(
    base_url: str, method: str, path: str, headers: dict[str, str], body_bytes: int, *,
    chunked: bool,
) -> tuple[int, dict[str, str], bytes]:
    """Send up to `body_bytes` of body and stop as soon as the server answers; return the
    answer. (An HTTP client library would insist on sending the whole body first.)"""
    host, port = base_url.removeprefix("http://").split(":")
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_bytes}")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        while sent < body_bytes and not select.select([sock], [], [], 0)[0]:
            piece = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" if chunked else CHUNK
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        if chunked and sent >= body_bytes:
            sock.sendall(b"0\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head_raw, _, body = received.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    answer_headers = {
        k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])
    }
    return int(lines[0].split()[1]), answer_headers, body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").lower().split("\r\n"):
        if line.startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return False


@pytest.fixture(scope="module")
def admin_token(server: Server) -> str:
    return str(console_token(server.base_url, "admin", "Tessera-Demo-Root-2026")["access_token"])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_token_request_body_is_refused_413_without_being_buffered(
    server: Server, chunked: bool
) -> None:
    before = rss_kib(server.proc.pid)
    status, headers, body = send_raw(
        server.base_url, "POST", "/oauth2/v1/token",
        {"Content-Type": "application/x-www-form-urlencoded"}, 100 * MB, chunked=chunked,
    )
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "invalid_request"
    assert rss_kib(server.proc.pid) - before < 32 * 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_admin_post_is_refused_before_its_body_is_read(
    server: Server, chunked: bool
) -> None:
    before = rss_kib(server.proc.pid)
    # Under the admin API's 1 MiB limit when declared, so only the token check can refuse it;
    # streamed, it would be 100 MB of JSON that FastAPI reads before its dependencies run.
    size = 512 * 1024 if not chunked else 100 * MB
    status, headers, body = send_raw(
        server.base_url, "POST", "/admin/v1/users", {"Content-Type": "application/json"},
        size, chunked=chunked,
    )
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert "invalid_token" in body.decode()
    assert rss_kib(server.proc.pid) - before < 32 * 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_administrators_body_over_the_admin_limit_is_refused_413(
    server: Server, admin_token: str, chunked: bool
) -> None:
    before = rss_kib(server.proc.pid)
    status, _, body = send_raw(
        server.base_url, "POST", "/admin/v1/users",
        {"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"},
        100 * MB, chunked=chunked,
    )
    assert status == 413
    problem = json.loads(body)  # the admin API's one error shape (RFC 9457)
    assert (problem["status"], problem["error"]) == (413, "request_too_large")
    assert rss_kib(server.proc.pid) - before < 32 * 1024
    # Nothing was created, and the node still answers.
    users = server.cli_json("admin", "users", "list")
    assert sorted(u["username"] for u in users) == ["admin", "alice"]


@pytest.fixture(scope="module")
def service(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(server, Path(tmp_path_factory.mktemp("ic"))) as svc:
        yield svc


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_integration_service_refuses_a_huge_body_with_a_problem(
    server: Server, service: Service, chunked: bool
) -> None:
    token = client_token(server, demo_auth(server), server.demo["resource"]["manage_scope"])
    before = rss_kib(service.proc.pid)
    status, headers, body = send_raw(
        service.base_url, "POST", f"{API}/integrations",
        {"Content-Type": "application/yaml", **bearer(token)}, 100 * MB, chunked=chunked,
    )
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    assert rss_kib(service.proc.pid) - before < 32 * 1024
