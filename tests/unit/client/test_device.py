"""`tessera.client.device_login` (RFC 8628) against a fake identity domain with an injected
sleep and clock: the interval is honoured and grows by 5 seconds on each `slow_down` (§3.5),
denied and expired requests end with `DeviceLoginError`, the tokens are cached as the browser
login caches them; and the CLI's QR code of `verification_uri_complete` (§3.3.1)."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.client import DeviceLoginError, LoginError, TokenCache, device_login
from tests.unit.client.fakes import ISSUER, FakeIdp

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class DeviceIdp(FakeIdp):
    """The fake with a device authorization endpoint; polls answer `answers` in order, then
    tokens."""

    answers: list[str] = field(default_factory=list)
    device: bool = True

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth2/v1/device":
            super().handler(request)  # recorded
            return httpx.Response(
                200,
                json={
                    "device_code": "dc-1",
                    "user_code": "BCDF-GHJK",
                    "verification_uri": f"{ISSUER}/device",
                    "verification_uri_complete": f"{ISSUER}/device?user_code=BCDF-GHJK",
                    "expires_in": 60,
                    "interval": 5,
                },
            )
        if path == "/oauth2/v1/token" and b"device_code" in request.content and self.answers:
            super().handler(request)
            return httpx.Response(400, json={"error": self.answers.pop(0)})
        return super().handler(request)

    def metadata(self) -> dict[str, Any]:
        doc = super().metadata()
        if self.device:
            doc["device_authorization_endpoint"] = f"{ISSUER}/oauth2/v1/device"
        return doc


@dataclass
class Waits:
    """The injected sleep and clock: sleeping moves the clock, nothing waits."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def run(idp: DeviceIdp, waits: Waits, tmp_path: Path, **kw: Any) -> Any:
    shown: list[Any] = []
    session = device_login(
        ISSUER,
        "cli",
        scopes=["https://api.test/read"],
        cache=TokenCache(tmp_path),
        http=idp.client(),
        on_code=shown.append,
        sleep=waits.sleep,
        clock=waits.clock,
        **kw,
    )
    return session, shown


def test_polls_at_the_interval_slows_down_by_five_seconds_then_caches_the_tokens(
    tmp_path: Path,
) -> None:
    idp = DeviceIdp(answers=["authorization_pending", "slow_down", "authorization_pending"])
    waits = Waits()
    session, shown = run(idp, waits, tmp_path)
    assert waits.slept == [5, 5, 10, 10]  # §3.5: + 5 s for this and all later polls
    (code,) = shown
    assert code.user_code == "BCDF-GHJK" and "dc-1" not in repr(code)
    (asked,) = idp.calls("/oauth2/v1/device")
    assert asked == {"client_id": "cli", "scope": "openid https://api.test/read"}
    polls = idp.calls("/oauth2/v1/token")
    assert {p["grant_type"] for p in polls} == {GRANT} and len(polls) == 4
    assert session.tokens.refresh_token
    assert TokenCache(tmp_path).load(ISSUER, "cli", "default") is not None


@pytest.mark.parametrize(
    ("answer", "words"),
    [("access_denied", "denied"), ("expired_token", "expired")],
)
def test_a_denied_or_expired_request_ends_the_login(
    tmp_path: Path, answer: str, words: str
) -> None:
    idp = DeviceIdp(answers=["authorization_pending", answer])
    with pytest.raises(DeviceLoginError) as ended:
        run(idp, Waits(), tmp_path)
    assert ended.value.error == answer and words in ended.value.message
    assert TokenCache(tmp_path).load(ISSUER, "cli", "default") is None


def test_the_login_gives_up_when_the_code_runs_out_while_pending(tmp_path: Path) -> None:
    idp = DeviceIdp(answers=["authorization_pending"] * 100)
    waits = Waits()
    with pytest.raises(DeviceLoginError) as ended:
        run(idp, waits, tmp_path)
    assert ended.value.error == "expired_token" and waits.now <= 60


def test_a_server_without_the_endpoint_is_refused_before_any_request(tmp_path: Path) -> None:
    idp = DeviceIdp(device=False)
    with pytest.raises(LoginError, match="no device login"):
        run(idp, Waits(), tmp_path)
    assert idp.calls("/oauth2/v1/token") == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("tty", "as_json"), [(True, False), (False, False), (True, True)])
def test_the_cli_prints_the_link_and_a_qr_code_only_to_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tty: bool, as_json: bool
) -> None:
    from tessera.cli.client import _show_device_code
    from tessera.client import DeviceCode

    out = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    link = f"{ISSUER}/device?user_code=BCDF-GHJK"
    code = DeviceCode("BCDF-GHJK", f"{ISSUER}/device", link, 600, 5, "dc-1")
    _show_device_code(code, as_json)
    lines = out.getvalue().splitlines()
    if as_json:
        assert lines == []  # stdout keeps the JSON result only
        return
    assert lines[0] == link
    qr = lines[1:]
    assert (len(qr) > 10) is tty  # segno's compact terminal rendering, half blocks
    assert all(set(line) <= set(" █▀▄") for line in qr)
