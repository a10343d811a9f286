"""Use-once artifacts under a race (RFC 9700 §4.2.4, §4.14; Keycloak CVE-2026-1035).

Twenty clients that start together on one code get exactly one success; twenty that start
together on one refresh token get one new family member, never two, and never a 5xx.

This module's server has a generous refresh grace window so that all twenty refreshes, however
slowly a loaded machine serves them, count as retries of one rotation: the test is about the
atomic rotation, not about the length of the window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.flow import (
    Browser,
    basic_auth,
    code_from,
    code_grant,
    exchange_code,
    token_request,
)
from tests.support.server import Server, running_server

N = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    grace = {"TESSERA_REFRESH_GRACE_SECONDS": "30"}
    with running_server(tmp_path_factory.mktemp("idp"), extra_env=grace) as srv:
        yield srv


def app(server: Server) -> dict[str, str]:
    return server.demo["confidential_app"]


def fresh_code(server: Server, browser: Browser) -> str:
    alice = server.demo["user"]
    return code_from(
        browser.sign_in_and_authorize(
            alice["username"],
            alice["password"],
            response_type="code",
            client_id=app(server)["client_id"],
            redirect_uri=app(server)["redirect_uri"],
            scope="openid " + server.demo["resource"]["scope"],
            state="race",
        )
    )


def refresh(server: Server, refresh_token: str) -> httpx.Response:
    return token_request(
        server.base_url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=basic_auth(app(server)),
    )


def all_at_once(server: Server, data: dict[str, str]) -> list[httpx.Response]:
    """POST the same token request from N threads released together by a barrier."""
    barrier = threading.Barrier(N)
    auth = basic_auth(app(server))

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            http.get("/health/live")  # open the connection before the start line
            barrier.wait(timeout=30)
            return http.post("/oauth2/v1/token", data=data, auth=auth)

    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(one, range(N)))


def introspect(server: Server, token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/oauth2/v1/introspect",
        data={"token": token},
        auth=basic_auth(app(server)),
    )
    assert response.status_code == 200, response.text
    return response.json()


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def only(responses: list[httpx.Response], pick: Callable[[httpx.Response], bool]) -> list[Any]:
    return [r.json() for r in responses if pick(r)]


def test_twenty_concurrent_redemptions_of_one_code_give_exactly_one_success(
    server: Server, browser: Browser
) -> None:
    code = fresh_code(server, browser)
    responses = all_at_once(server, code_grant(app(server), code))

    assert all(r.status_code < 500 for r in responses), statuses(responses)
    winners = only(responses, lambda r: r.status_code == 200)
    assert len(winners) == 1, statuses(responses)
    assert "access_token" in winners[0]
    losers = only(responses, lambda r: r.status_code != 200)
    assert len(losers) == N - 1
    assert {body["error"] for body in losers} == {"invalid_grant"}
    assert all("access_token" not in body for body in losers)


REPLAY_ROUNDS = 6


def test_replays_racing_a_redemption_revoke_everything_the_code_issued(
    server: Server, browser: Browser
) -> None:
    """RFC 6749 §4.1.2, docs/security.md rule 13: the losers of the race are replays of a used
    code, so the grant the winner started is revoked, all of it: its access token and its
    refresh token, however the replays interleave with the winner's writes. The interleaving
    that matters is rare, hence a few rounds."""
    for round_ in range(REPLAY_ROUNDS):
        code = fresh_code(server, browser)
        responses = all_at_once(server, code_grant(app(server), code))
        (winner,) = only(responses, lambda r: r.status_code == 200)

        assert introspect(server, winner["access_token"]) == {"active": False}, round_
        assert introspect(server, winner["refresh_token"]) == {"active": False}, round_
        refreshed = refresh(server, winner["refresh_token"])
        assert refreshed.status_code == 400, (round_, refreshed.text)
        assert refreshed.json()["error"] == "invalid_grant"


def test_twenty_concurrent_refreshes_of_one_token_give_one_new_family_member(
    server: Server, browser: Browser
) -> None:
    code = fresh_code(server, browser)
    original = exchange_code(server.base_url, app(server), code)
    family = introspect(server, original["refresh_token"])["sid"]

    responses = all_at_once(
        server, {"grant_type": "refresh_token", "refresh_token": original["refresh_token"]}
    )

    assert all(r.status_code < 500 for r in responses), statuses(responses)
    # Every client retried inside the grace window, so each one gets the same successor.
    assert statuses(responses) == [200] * N, [r.text for r in responses if r.status_code != 200]
    successors = {body["refresh_token"] for body in only(responses, lambda r: True)}
    assert len(successors) == 1, successors
    (successor,) = successors
    assert successor != original["refresh_token"]

    # The successor is the family's one live member; the original is spent.
    assert introspect(server, original["refresh_token"]) == {"active": False}
    live = introspect(server, successor)
    assert live["active"] is True
    assert live["sid"] == family
    for body in only(responses, lambda r: True):
        assert introspect(server, body["access_token"])["sid"] == family

    # The family was not revoked by the race: the successor rotates on normally.
    onward = refresh(server, successor)
    assert onward.status_code == 200, onward.text
    assert onward.json()["refresh_token"] not in (successor, original["refresh_token"])
    assert introspect(server, successor) == {"active": False}
