"""The revocation feed (docs/security.md rules 25, 30): who may read it, when a long poll
answers, what it answers; and the HTTP long poll on the core, with a wakeup the test drives."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from tessera.domain.model import RevocationKind
from tessera.oauth import errors
from tessera.oauth.revocation_feed import (
    POLL_SECONDS,
    answer_now,
    authenticate_reader,
    feed_body,
)
from tessera.web.revocation_feed import revocation_feed

from .conftest import Core


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def revoke_jti(core: Core, jti: str) -> int:
    now = core.clock()
    return core.store.revocations.append(
        RevocationKind.JTI, jti, now, now + timedelta(hours=1), now
    )


# --- who may read it ---------------------------------------------------------------------------


def test_a_resource_server_reads_the_feed(core: Core) -> None:
    api, secret = core.add_app(resource_server_for=("https://orders.test/",))
    assert secret is not None
    reader = authenticate_reader(
        basic(api.client_id, secret), core.store.clients.get, core.pepper, core.clock()
    )
    assert reader.client_id == api.client_id


def test_an_app_that_is_no_resource_server_is_refused_403(core: Core) -> None:
    web, secret = core.add_app()
    assert secret is not None
    with pytest.raises(errors.NotAResourceServer) as caught:
        authenticate_reader(
            basic(web.client_id, secret), core.store.clients.get, core.pepper, core.clock()
        )
    assert (caught.value.status, caught.value.error) == (403, "unauthorized_client")


@pytest.mark.parametrize("case", ["none", "wrong-secret", "unknown", "public", "bearer"])
def test_without_a_confidential_apps_credentials_the_feed_is_invalid_client(
    core: Core, case: str
) -> None:
    api, secret = core.add_app(resource_server_for=("https://orders.test/",))
    public, _ = core.add_app(
        public=True, name="Public app", resource_server_for=("https://orders.test/",)
    )
    authorization = {
        "none": None,
        "wrong-secret": basic(api.client_id, "x" + str(secret)),
        "unknown": basic("app-nobody", str(secret)),
        "public": basic(public.client_id, ""),
        "bearer": "Bearer abc",
    }[case]
    with pytest.raises(errors.InvalidClient):
        authenticate_reader(authorization, core.store.clients.get, core.pepper, core.clock())


# --- when a long poll answers, and what --------------------------------------------------------


def test_a_poll_answers_when_it_has_events_its_wait_is_over_or_the_node_closes(core: Core) -> None:
    revoke_jti(core, "j1")
    events = core.store.revocations.since(0)
    assert answer_now(events, 10.0, closing=False)
    assert answer_now([], 0.0, closing=False)
    assert answer_now([], -0.1, closing=False)
    assert answer_now([], 10.0, closing=True)
    assert not answer_now([], 10.0, closing=False)


def test_the_answer_lists_the_events_and_the_next_sequence_number(core: Core) -> None:
    first = revoke_jti(core, "j1")
    now = core.clock()
    second = core.store.revocations.append(
        RevocationKind.SUBJECT, "u-alice", now, now + timedelta(hours=2), now
    )
    body = feed_body(core.store.revocations.since(0), 0)
    assert body == {
        "events": [
            {
                "seq": first,
                "kind": "jti",
                "key": "j1",
                "not_before": now.timestamp(),
                "expires_at": (now + timedelta(hours=1)).timestamp(),
            },
            {
                "seq": second,
                "kind": "subject",
                "key": "u-alice",
                "not_before": now.timestamp(),
                "expires_at": (now + timedelta(hours=2)).timestamp(),
            },
        ],
        "last_seq": second,
    }
    assert feed_body([], 41) == {"events": [], "last_seq": 41}


# --- the HTTP long poll ------------------------------------------------------------------------


class FakeWakeup:
    """Records the waits; `on_wait` runs instead of sleeping (a revocation, a shutdown)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.closing = False
        self.waits: list[float] = []
        self.on_wait: Any = None

    async def wait(self, timeout: float, domain_id: str) -> None:
        assert domain_id == self.core.store.domain_id
        self.waits.append(timeout)
        if self.on_wait is not None:
            self.on_wait(self)


def poll(
    core: Core, wakeup: FakeWakeup, query: str, authorization: str | None, gone: bool = False
) -> tuple[int, dict[str, Any]]:
    """One GET of the feed through its handler, on an app whose services are the core's."""
    services = SimpleNamespace(
        ctx=SimpleNamespace(
            store=core.store,
            secret_pepper=core.pepper,
            clock=core.clock,
            domain_id=core.store.domain_id,
        ),
        client=core.store.clients.get,
        wakeup=wakeup,
        assertions=None,  # Basic credentials only here (assertions: tests/e2e)
    )
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/oauth2/v1/revocations",
        "query_string": query.encode(),
        "headers": headers,
        "app": SimpleNamespace(state=SimpleNamespace(services=services)),
    }

    async def receive() -> dict[str, Any]:
        if gone:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # the client stays; `is_disconnected` does not wait for it
        raise AssertionError

    response = asyncio.run(revocation_feed(Request(scope, receive)))
    return response.status_code, orjson.loads(bytes(response.body))


@pytest.fixture
def reader(core: Core) -> str:
    api, secret = core.add_app(name="Orders API", resource_server_for=("https://orders.test/",))
    return basic(api.client_id, str(secret))


def test_events_are_answered_at_once(core: Core, reader: str) -> None:
    seq = revoke_jti(core, "j1")
    wakeup = FakeWakeup(core)
    status, body = poll(core, wakeup, "since=0&wait=30", reader)
    assert status == 200
    assert [e["key"] for e in body["events"]] == ["j1"] and body["last_seq"] == seq
    assert wakeup.waits == []
    status, body = poll(core, wakeup, f"since={seq}&wait=0", reader)
    assert (status, body) == (200, {"events": [], "last_seq": seq})


def test_a_waiting_poll_answers_the_revocation_that_woke_it(core: Core, reader: str) -> None:
    wakeup = FakeWakeup(core)
    wakeup.on_wait = lambda w: revoke_jti(w.core, "j-later") if len(w.waits) == 2 else None
    status, body = poll(core, wakeup, "since=0&wait=30", reader)
    assert status == 200
    assert [e["key"] for e in body["events"]] == ["j-later"]
    assert len(wakeup.waits) == 2 and all(0 < t <= POLL_SECONDS for t in wakeup.waits)


def test_a_shutdown_ends_a_waiting_poll(core: Core, reader: str) -> None:
    wakeup = FakeWakeup(core)
    wakeup.on_wait = lambda w: setattr(w, "closing", True)
    assert poll(core, wakeup, "since=0&wait=30", reader) == (200, {"events": [], "last_seq": 0})
    assert len(wakeup.waits) == 1
    # A poll that arrives while the node is closing answers without waiting.
    assert poll(core, wakeup, "since=0&wait=30", reader)[0] == 200
    assert len(wakeup.waits) == 1


def test_a_poll_whose_client_went_away_ends(core: Core, reader: str) -> None:
    wakeup = FakeWakeup(core)
    assert poll(core, wakeup, "since=0&wait=30", reader, gone=True)[0] == 200
    assert wakeup.waits == []


def test_the_http_errors_of_the_feed(core: Core, reader: str) -> None:
    wakeup = FakeWakeup(core)
    web, secret = core.add_app(name="Web app")
    status, body = poll(core, wakeup, "wait=1", basic(web.client_id, str(secret)))
    assert (status, body["error"]) == (403, "unauthorized_client")
    assert poll(core, wakeup, "wait=1", None)[0] == 401
    status, body = poll(core, wakeup, "wait=nan", reader)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = poll(core, wakeup, "since=1&since=2", reader)
    assert (status, body["error"]) == (400, "invalid_request")
    assert wakeup.waits == []
