"""The loopback listener of RFC 8252: one response, `state` and `iss` checked, a page for the
browser, a timeout."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tessera.client.errors import LoginError, LoginTimeout
from tessera.client.loopback import LoopbackListener

ISSUER = "https://id.example.test"
STATE = "s-Q3x"


@pytest.fixture
def listener() -> Iterator[LoopbackListener]:
    with LoopbackListener(expected_state=STATE, expected_issuer=ISSUER, require_iss=True) as lsn:
        yield lsn


def back(listener: LoopbackListener, path: str | None = None, **params: str) -> httpx.Response:
    url = listener.redirect_uri if path is None else f"http://127.0.0.1:{listener.port}{path}"
    return httpx.get(url, params=params, timeout=5)


def test_listens_on_127_0_0_1_with_an_ephemeral_port(listener: LoopbackListener) -> None:
    assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
    assert listener.port > 0


def test_a_good_response_gives_the_code_and_a_close_this_tab_page(
    listener: LoopbackListener,
) -> None:
    page = back(listener, code="c-1", state=STATE, iss=ISSUER)
    assert page.status_code == 200
    assert "close this tab" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    result = listener.wait(5)
    assert (result.code, result.state, result.iss) == ("c-1", STATE, ISSUER)


def test_state_mismatch_fails_the_login(listener: LoopbackListener) -> None:
    page = back(listener, code="c-1", state="forged", iss=ISSUER)
    assert page.status_code == 400
    assert "state mismatch" in page.text
    with pytest.raises(LoginError, match="state mismatch"):
        listener.wait(5)


def test_missing_state_fails_the_login(listener: LoopbackListener) -> None:
    back(listener, code="c-1", iss=ISSUER)
    with pytest.raises(LoginError, match="state mismatch"):
        listener.wait(5)


def test_iss_mismatch_fails_the_login(listener: LoopbackListener) -> None:
    page = back(listener, code="c-1", state=STATE, iss="https://evil.example.test")
    assert page.status_code == 400
    with pytest.raises(LoginError, match="another issuer"):
        listener.wait(5)


def test_iss_is_compared_exactly_not_as_a_prefix(listener: LoopbackListener) -> None:
    back(listener, code="c-1", state=STATE, iss=ISSUER + "/")
    with pytest.raises(LoginError, match="another issuer"):
        listener.wait(5)


def test_missing_iss_fails_when_the_metadata_promised_it(listener: LoopbackListener) -> None:
    back(listener, code="c-1", state=STATE)
    with pytest.raises(LoginError, match="no iss parameter"):
        listener.wait(5)


def test_missing_iss_is_accepted_when_the_server_does_not_send_it() -> None:
    with LoopbackListener(expected_state=STATE, expected_issuer=ISSUER, require_iss=False) as lsn:
        back(lsn, code="c-1", state=STATE)
        assert lsn.wait(5).code == "c-1"


def test_an_error_parameter_fails_the_login_with_its_description(
    listener: LoopbackListener,
) -> None:
    page = back(
        listener,
        error="invalid_scope",
        error_description="unknown scope <script>",
        state=STATE,
        iss=ISSUER,
    )
    assert page.status_code == 400
    assert "<script>" not in page.text  # escaped
    assert "&lt;script&gt;" in page.text
    with pytest.raises(LoginError, match="invalid_scope: unknown scope"):
        listener.wait(5)


def test_access_denied_says_the_user_cancelled(listener: LoopbackListener) -> None:
    back(listener, error="access_denied", state=STATE, iss=ISSUER)
    with pytest.raises(LoginError, match="cancelled or access was denied"):
        listener.wait(5)


def test_repeated_parameters_are_malformed(listener: LoopbackListener) -> None:
    httpx.get(f"{listener.redirect_uri}?code=a&code=b&state={STATE}&iss={ISSUER}", timeout=5)
    with pytest.raises(LoginError, match="malformed 'code'"):
        listener.wait(5)


def test_other_paths_get_404_and_do_not_end_the_wait(listener: LoopbackListener) -> None:
    assert back(listener, "/favicon.ico").status_code == 404
    with pytest.raises(LoginTimeout):
        listener.wait(0.2)
    back(listener, code="c-2", state=STATE, iss=ISSUER)
    assert listener.wait(5).code == "c-2"


def test_only_the_first_response_counts(listener: LoopbackListener) -> None:
    back(listener, code="c-1", state=STATE, iss=ISSUER)
    second = back(listener, code="c-evil", state=STATE, iss=ISSUER)
    assert second.status_code == 409
    assert listener.wait(5).code == "c-1"


def test_timeout_when_the_browser_never_comes_back(listener: LoopbackListener) -> None:
    with pytest.raises(LoginTimeout, match=r"within 0\.2 seconds") as caught:
        listener.wait(0.2)
    assert caught.value.hint and "--timeout" in caught.value.hint


def test_the_code_never_reaches_stderr(
    listener: LoopbackListener, capfd: pytest.CaptureFixture[str]
) -> None:
    back(listener, code="secret-code-123", state=STATE, iss=ISSUER)
    listener.wait(5)
    out, err = capfd.readouterr()
    assert "secret-code-123" not in out + err


def test_the_port_is_closed_after_the_login() -> None:
    with LoopbackListener(expected_state=STATE, expected_issuer=ISSUER) as lsn:
        uri = lsn.redirect_uri
    with pytest.raises(httpx.ConnectError):
        httpx.get(uri, timeout=2)
