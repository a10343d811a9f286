"""The egress policy of `invoke` steps: refused address classes, numeric host forms, the
allow-list, and the connect-time check on resolved addresses (DNS rebinding)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tessera.integration.egress import (
    EgressError,
    EgressPolicy,
    EgressRefused,
    guarded_transport,
    literal_address,
    parse_allow,
)
from tessera.integration.settings import IntegrationConfigError, load_settings

DEFAULT = EgressPolicy()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/metrics",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:8000/metrics",
        "http://[::ffff:169.254.169.254]/",
        "http://[::127.0.0.1]/",  # IPv4-compatible
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://2130706433:8000/metrics",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://127.1/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
    ],
)
def test_deploy_check_refuses_internal_literal_addresses(url: str) -> None:
    assert DEFAULT.check_url(url) is not None


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/", "http://[2606:4700::1111]/", "https://backend.example.com/x"]
)
def test_deploy_check_accepts_global_addresses_and_names(url: str) -> None:
    assert DEFAULT.check_url(url) is None


def test_numeric_host_forms_are_normalised_before_the_check() -> None:
    for host in ("2130706433", "0x7f.1", "017700000001", "127.1", "0x7F000001"):
        assert str(literal_address(host)) == "127.0.0.1"
    assert literal_address("backend.example.com") is None
    assert literal_address("1.2.3.example") is None


def test_the_allow_list_admits_cidrs_and_host_ports_only() -> None:
    policy = parse_allow("10.20.0.0/16, 127.0.0.1:9000 backend.internal [::1]:80")
    assert policy.check_url("http://10.20.3.4/") is None
    assert policy.check_url("http://10.21.3.4/") is not None
    assert policy.check_url("http://127.0.0.1:9000/x") is None
    assert policy.check_url("http://127.0.0.1:9001/x") is not None  # another port
    assert policy.check_url("http://[::1]/") is None  # port 80 written explicitly in the entry
    assert policy.check_url("http://[::1]:81/") is not None


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://x/y", "a@b", "host:notaport"])
def test_a_bad_allow_list_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(EgressError):
        parse_allow(entry)
    with pytest.raises(IntegrationConfigError, match="EGRESS_ALLOW"):
        load_settings(issuer="http://127.0.0.1:8000", egress_allow=entry)


# --- at connect time ------------------------------------------------------------------------------


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 that answers a secret: what SSRF would read."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = f"secret host={self.headers.get('Host')}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _get(policy: EgressPolicy, url: str, answers: dict[str, list[str]]) -> httpx.Response:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return answers[host]

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=guarded_transport(policy, resolve)) as http:
            return await http.get(url, timeout=5)

    return asyncio.run(run())


def test_a_public_name_resolving_to_a_private_address_is_refused_at_connect(
    loopback_server: int,
) -> None:
    """DNS rebinding: the name passed the deploy check; what it resolves to is checked."""
    url = f"http://rebind.example.com:{loopback_server}/"
    with pytest.raises(httpx.ConnectError) as caught:
        _get(DEFAULT, url, {"rebind.example.com": ["127.0.0.1"]})
    assert isinstance(caught.value.__cause__, EgressRefused)
    assert "127.0.0.1 is loopback" in str(caught.value)


def test_every_resolved_address_is_checked_not_only_the_first(loopback_server: int) -> None:
    url = f"http://mixed.example.com:{loopback_server}/"
    with pytest.raises(httpx.ConnectError):
        _get(DEFAULT, url, {"mixed.example.com": ["93.184.215.14", "10.0.0.5"]})


def test_numeric_hosts_are_refused_at_connect_too(loopback_server: int) -> None:
    for host in ("2130706433", "127.1", "[::ffff:127.0.0.1]"):
        with pytest.raises(httpx.ConnectError):
            _get(DEFAULT, f"http://{host}:{loopback_server}/", {})


def test_an_allowed_name_connects_to_the_checked_address_with_its_host_header(
    loopback_server: int,
) -> None:
    policy = parse_allow(f"backend.internal:{loopback_server}")
    url = f"http://backend.internal:{loopback_server}/"
    response = _get(policy, url, {"backend.internal": ["127.0.0.1"]})
    assert response.text == f"secret host=backend.internal:{loopback_server}"
