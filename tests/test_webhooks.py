"""Webhook deliveries to a receiver served by uvicorn on loopback.

The receiver keeps the raw bytes and headers of every request and checks each signature
over those bytes, as a real receiver should.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envsync.config import load_settings
from envsync.emulators import EmulatorSet
from envsync.errors import ConfigError
from envsync.events import Event
from envsync.webhooks import (
    SIGNATURE_HEADER,
    WebhookSink,
    event_body,
    sign,
    signature_header,
    verify_signature,
)
from tests.ops_support import CANARY, environ_for, make_engine

SECRET = "webhook-secret-for-tests"
# Characters that a re-serialisation changes: an emoji, LINE SEPARATOR, and a backslash-u
# that is text, not an escape.
AWKWARD_KEYS = ["BRIDGE_ROCKET_\U0001f680", "BRIDGE_LINE\u2028SEP", "BRIDGE_TEXT_\\u0041"]


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver: responds 500 to the first `failures` requests, then 204."""

    failures: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        await asyncio.to_thread(self.gate.wait, 30)
        body = await request.body()
        self.received.append(Received(body, dict(request.headers)))
        if self.failures > 0:
            self.failures -= 1
            return Response(status_code=500)
        return Response(status_code=204)

    def bodies(self) -> list[bytes]:
        return [item.body for item in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    state.gate.set()
    app = Starlette(routes=[Route("/hooks/{token}", state.endpoint, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.01)
        # The path contains a credential, as many webhook URLs do.
        state.url = f"http://127.0.0.1:{port}/hooks/path-token-3c9e?key=query-token-77aa"
        yield state
    finally:
        state.gate.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


def _sink(url: str, **extra: str) -> WebhookSink:
    environ = {
        "ENVSYNC_WEBHOOK_URLS": url,
        "ENVSYNC_WEBHOOK_SECRET": SECRET,
        "ENVSYNC_RETRY_BASE_S": "0.01",
        "ENVSYNC_RETRY_MAX_S": "0.02",
        **extra,
    }
    return WebhookSink(load_settings(environ, cwd=Path("/nonexistent")))


def _event(keys: list[str], *, event_id: str = "evt-1") -> Event:
    return Event(
        id=event_id,
        type="ENVSYNC_DRIFT_DETECTED",
        time="2026-01-01T00:00:00Z",
        provider="render",
        target="render/api",
        run_id="run-1",
        counts={"create": len(keys), "update": 0, "delete": 0, "noop": 0, "rejected": 0},
        keys=keys,
        errors=[],
    )


async def _publish_and_close(sink: WebhookSink, *events: Event) -> None:
    for event in events:
        sink.publish(event)
    await sink.aclose(timeout_s=20)


def test_signature_verifies_over_raw_bytes_with_awkward_keys(receiver: Receiver) -> None:
    sink = _sink(receiver.url)
    event = _event(AWKWARD_KEYS)

    asyncio.run(_publish_and_close(sink, event))

    [delivery] = receiver.received
    assert delivery.body == event_body(event)
    assert verify_signature(SECRET, delivery.headers[SIGNATURE_HEADER.lower()], delivery.body)
    assert json.loads(delivery.body)["keys"] == AWKWARD_KEYS


def test_delivery_body_keeps_characters_raw(receiver: Receiver) -> None:
    sink = _sink(receiver.url)

    asyncio.run(_publish_and_close(sink, _event(AWKWARD_KEYS)))

    body = receiver.received[0].body
    assert "\U0001f680".encode() in body
    assert "\u2028".encode() in body
    assert b"\\\\u0041" in body


def test_reserialised_body_does_not_verify(receiver: Receiver) -> None:
    sink = _sink(receiver.url)

    asyncio.run(_publish_and_close(sink, _event(AWKWARD_KEYS)))

    delivery = receiver.received[0]
    reserialised = json.dumps(json.loads(delivery.body)).encode()
    header = delivery.headers[SIGNATURE_HEADER.lower()]
    assert not verify_signature(SECRET, header, reserialised)


def test_delivery_headers_name_content_type_and_event(receiver: Receiver) -> None:
    sink = _sink(receiver.url)

    asyncio.run(_publish_and_close(sink, _event(["BRIDGE_A"], event_id="evt-42")))

    headers = receiver.received[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["x-envsync-event"] == "ENVSYNC_DRIFT_DETECTED"
    assert headers["x-envsync-delivery"] == "evt-42"


def test_delivery_retried_after_500(receiver: Receiver) -> None:
    receiver.failures = 2
    sink = _sink(receiver.url)
    event = _event(["BRIDGE_A"])

    asyncio.run(_publish_and_close(sink, event))

    assert receiver.bodies() == [event_body(event)] * 3
    for delivery in receiver.received:
        assert verify_signature(SECRET, delivery.headers[SIGNATURE_HEADER.lower()], delivery.body)
    assert (sink.stats.delivered, sink.stats.retried, sink.stats.failed) == (1, 2, 0)


def test_delivery_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.failures = 10
    sink = _sink(receiver.url, ENVSYNC_WEBHOOK_MAX_ATTEMPTS="3")

    asyncio.run(_publish_and_close(sink, _event(["BRIDGE_A"])))

    assert len(receiver.received) == 3
    assert (sink.stats.delivered, sink.stats.failed) == (0, 1)


def test_publish_returns_before_receiver_answers(receiver: Receiver) -> None:
    receiver.gate.clear()
    sink = _sink(receiver.url)

    async def scenario() -> tuple[int, int]:
        sink.publish(_event(["BRIDGE_A"]))
        await asyncio.sleep(0)
        before = sink.stats.delivered
        receiver.gate.set()
        await sink.aclose(timeout_s=20)
        return before, sink.stats.delivered

    assert asyncio.run(scenario()) == (0, 1)


def test_full_queue_drops_and_counts(receiver: Receiver) -> None:
    receiver.gate.clear()
    sink = _sink(receiver.url, ENVSYNC_WEBHOOK_QUEUE_SIZE="1")

    async def scenario() -> None:
        sink.publish(_event(["BRIDGE_A"], event_id="evt-1"))
        sink.publish(_event(["BRIDGE_B"], event_id="evt-2"))
        receiver.gate.set()
        await sink.aclose(timeout_s=20)

    asyncio.run(scenario())

    assert sink.stats.dropped == 1
    assert [json.loads(body)["id"] for body in receiver.bodies()] == ["evt-1"]


def test_urls_appear_in_no_log_line(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.failures = 10
    sink = _sink(receiver.url, ENVSYNC_WEBHOOK_MAX_ATTEMPTS="2")
    caplog.set_level(logging.DEBUG, logger="envsync.webhooks")

    asyncio.run(_publish_and_close(sink, _event(["BRIDGE_A"])))

    assert "127.0.0.1" in caplog.text
    assert "path-token-3c9e" not in caplog.text
    assert "query-token-77aa" not in caplog.text


def test_engine_events_hold_no_value(
    receiver: Receiver, emulators: EmulatorSet, tmp_path: Path
) -> None:
    canonical = {key: f"{CANARY}-{index}" for index, key in enumerate(AWKWARD_KEYS)}
    environ = environ_for(
        emulators,
        tmp_path,
        ENVSYNC_CANONICAL_SOURCE="env",
        ENVSYNC_INCLUDE_PREFIXES="BRIDGE_",
        ENVSYNC_WEBHOOK_URLS=receiver.url,
        ENVSYNC_WEBHOOK_SECRET=SECRET,
        **canonical,
    )
    engine = make_engine(environ, tmp_path)
    sink = WebhookSink(engine.settings)
    engine.events.subscribe("*", sink)

    async def scenario() -> None:
        from envsync.engine import RunRequest
        from envsync.model import RunMode

        await engine.run(RunRequest(mode=RunMode.ENFORCE))
        await sink.aclose(timeout_s=20)

    asyncio.run(scenario())

    types = sorted(json.loads(body)["type"] for body in receiver.bodies())
    assert types.count("ENVSYNC_COMPLETE") == 2
    for delivery in receiver.received:
        assert verify_signature(SECRET, delivery.headers[SIGNATURE_HEADER.lower()], delivery.body)
        assert CANARY.encode() not in delivery.body
        assert set(json.loads(delivery.body)["keys"]) <= set(AWKWARD_KEYS)


# The sink's settings.


def test_plain_http_to_other_host_is_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        _sink("http://hooks.example.com/path-token-3c9e")

    assert raised.value.setting == "ENVSYNC_WEBHOOK_URLS"
    assert "path-token-3c9e" not in str(raised.value)


def test_urls_without_secret_are_config_error() -> None:
    settings = load_settings(
        {"ENVSYNC_WEBHOOK_URLS": "https://hooks.example.com/x"}, cwd=Path("/nonexistent")
    )

    with pytest.raises(ConfigError) as raised:
        WebhookSink(settings)

    assert raised.value.setting == "ENVSYNC_WEBHOOK_SECRET"


def test_sink_without_urls_sends_nothing() -> None:
    sink = WebhookSink(load_settings({}, cwd=Path("/nonexistent")))

    async def scenario() -> None:
        sink.publish(_event(["BRIDGE_A"]))
        await sink.aclose()

    asyncio.run(scenario())

    assert sink.stats.delivered == 0


# verify_signature, for receivers.

BODY = b'{"id":"evt-1"}'
NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("header", "body", "now", "expected"),
    [
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY, NOW, True),
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY + b" ", NOW, False),
        (f"t={NOW},v1={sign('other', NOW, BODY)}", BODY, NOW, False),
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY, NOW + 301, False),
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY, NOW - 301, False),
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY, NOW + 299, True),
        (f"t={NOW},v1=deadbeef,v1={sign(SECRET, NOW, BODY)}", BODY, NOW, True),
        (f"t={NOW + 1},v1={sign(SECRET, NOW, BODY)}", BODY, NOW, False),
        (f"v1={sign(SECRET, NOW, BODY)}", BODY, NOW, False),
        (f"t={NOW}", BODY, NOW, False),
        ("garbage", BODY, NOW, False),
    ],
    ids=[
        "valid",
        "body-changed",
        "other-secret",
        "stale",
        "from-the-future",
        "within-tolerance",
        "second-signature-matches",
        "timestamp-changed",
        "no-timestamp",
        "no-signature",
        "malformed",
    ],
)
def test_verify_signature_cases(header: str, body: bytes, now: int, expected: bool) -> None:
    assert verify_signature(SECRET, header, body, now=now) is expected


def test_signature_header_signs_timestamp_and_body() -> None:
    header = signature_header(SECRET, BODY, now=NOW)

    assert header == f"t={NOW},v1={sign(SECRET, NOW, BODY)}"
