"""Webhook deliveries of events, signed so that receivers can check them.

`WebhookSink(settings)` is subscribed to every event on the bus. For each event it
serialises `Event.to_dict()` once, as UTF-8 JSON, and POSTs exactly those bytes to every
URL in ENVSYNC_WEBHOOK_URLS with

    Content-Type: application/json
    X-Envsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">

under ENVSYNC_WEBHOOK_SECRET. The signature covers the bytes sent, not a re-serialisation,
so key names with emoji, U+2028 or a literal backslash-u verify as they are. The timestamp
is part of the signed content, so a receiver can reject stale or replayed deliveries
(`verify_signature`).

Publishing never blocks a sync: `publish` puts the body on a bounded queue per URL and
returns. A background task per URL sends the deliveries in order and retries a 5xx, 429,
408, a timeout or a connection failure with capped exponential backoff, up to
ENVSYNC_WEBHOOK_MAX_ATTEMPTS tries. When a queue is full, the new delivery is dropped,
logged and counted. `aclose` waits a bounded time for the queues to empty.

A webhook URL often carries its own credential in its path or query, so it is treated as
one: logs and errors name only its host. Plain `http://` is accepted only for loopback
hosts, TLS certificates are verified, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from envsync import __version__
from envsync.errors import ConfigError
from envsync.events import Event
from envsync.http import RetryPolicy
from envsync.model import SecretValue
from envsync.sources.http import is_loopback_host

if TYPE_CHECKING:
    from envsync.config import Settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Envsync-Signature"
EVENT_HEADER = "X-Envsync-Event"
DELIVERY_HEADER = "X-Envsync-Delivery"

# A receiver rejects a delivery whose timestamp is further than this from its own clock.
DEFAULT_TOLERANCE_S = 300

DEFAULT_FLUSH_TIMEOUT_S = 10.0

# Statuses worth another try: the receiver is overloaded, timed out or failed for now.
RETRY_STATUSES = frozenset({408, 425, 429})

Sleep = Callable[[float], Awaitable[None]]


# Signing and checking.


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, *, now: float | None = None) -> str:
    """Return the X-Envsync-Signature value for `body`, signed at `now` (default: the clock)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Check an X-Envsync-Signature header against the raw body a receiver got.

    True when the header has a timestamp within `tolerance_s` of `now` and one of its `v1`
    signatures matches the body (several are allowed, for a change of secret). Compare the
    bytes as received: parsing and serialising the JSON again can change them.
    """
    timestamp, signatures = _parse_header(header)
    if timestamp is None or not signatures:
        return False

    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False

    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def _parse_header(header: str) -> tuple[int | None, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    return timestamp, signatures


def event_body(event: Event) -> bytes:
    """Serialise an event once, as compact UTF-8 JSON; these bytes are signed and sent."""
    document = event.to_dict()
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be encoded as UTF-8; JSON's \u escapes can carry it.
        return json.dumps(document, separators=(",", ":")).encode("ascii")


# The sink.


@dataclass(slots=True)
class WebhookStats:
    """Counts of deliveries since the sink started, for metrics and tests."""

    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0


@dataclass(frozen=True, slots=True)
class _Delivery:
    event_id: str
    event_type: str
    body: bytes


@dataclass(slots=True)
class _Endpoint:
    """One webhook URL with its queue and the task that sends from it."""

    url: SecretValue
    host: str
    queue: asyncio.Queue[_Delivery] | None = None
    task: asyncio.Task[None] | None = None
    stats: WebhookStats = field(default_factory=WebhookStats)


class WebhookSink:
    """Delivers every event to the URLs in ENVSYNC_WEBHOOK_URLS, signed, in the background.

    Without URLs it does nothing. With URLs, ENVSYNC_WEBHOOK_SECRET is required. The
    background tasks start on the event loop of the first `publish`. `transport`, `sleep`
    and `clock` let tests control the network, the waits and the time.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoints = [
            _endpoint(index, url.get_secret_value())
            for index, url in enumerate(settings.webhook_urls)
        ]
        self._secret = _secret(settings) if self._endpoints else None
        self._timeout_s = settings.webhook_timeout_s
        self._max_attempts = settings.webhook_max_attempts
        self._queue_size = settings.webhook_queue_size
        self._policy = RetryPolicy(
            max_retries=settings.webhook_max_attempts - 1,
            base_s=settings.retry_base_s,
            max_s=settings.retry_max_s,
            timeout_s=settings.webhook_timeout_s,
        )
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def stats(self) -> WebhookStats:
        """Totals over every URL."""
        total = WebhookStats()
        for endpoint in self._endpoints:
            total.delivered += endpoint.stats.delivered
            total.failed += endpoint.stats.failed
            total.dropped += endpoint.stats.dropped
            total.retried += endpoint.stats.retried
        return total

    def __call__(self, event: Event) -> None:
        self.publish(event)

    def publish(self, event: Event) -> None:
        """Queue the event for every URL and return at once."""
        if not self._endpoints:
            return
        if self._closed:
            logger.warning("webhook sink is closed; event %s %s not sent", event.type, event.id)
            return
        if not self._started_here():
            for endpoint in self._endpoints:
                endpoint.stats.dropped += 1
            return

        delivery = _Delivery(event.id, event.type, event_body(event))
        for endpoint in self._endpoints:
            self._enqueue(endpoint, delivery)

    async def aclose(self, timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        """Wait up to `timeout_s` for queued deliveries, then stop the background tasks."""
        self._closed = True
        running = [endpoint for endpoint in self._endpoints if endpoint.task is not None]
        if running and self._loop is asyncio.get_running_loop():
            await self._flush(running, timeout_s)
        for endpoint in running:
            assert endpoint.task is not None
            endpoint.task.cancel()
        await asyncio.gather(
            *(endpoint.task for endpoint in running if endpoint.task is not None),
            return_exceptions=True,
        )
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # Queueing.

    def _started_here(self) -> bool:
        """Start the background tasks on the running loop; False when there is none."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("webhook deliveries need a running event loop; event not sent")
            return False
        if loop is self._loop:
            return True

        # The first publish, or a new loop (a CLI command runs each run in its own loop):
        # the old loop's tasks and client cannot be used here, so what they still held is
        # counted as dropped.
        for endpoint in self._endpoints:
            if endpoint.queue is not None and endpoint.queue.qsize():
                endpoint.stats.dropped += endpoint.queue.qsize()
                logger.warning(
                    "%d webhook deliveries to %s were left on a finished event loop",
                    endpoint.queue.qsize(),
                    endpoint.host,
                )
        self._loop = loop
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self._timeout_s,
            follow_redirects=False,
            verify=True,
        )
        for endpoint in self._endpoints:
            endpoint.queue = asyncio.Queue(maxsize=self._queue_size)
            endpoint.task = loop.create_task(self._send_loop(endpoint))
        return True

    def _enqueue(self, endpoint: _Endpoint, delivery: _Delivery) -> None:
        assert endpoint.queue is not None
        try:
            endpoint.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            endpoint.stats.dropped += 1
            logger.warning(
                "webhook queue for %s is full (%d waiting); %s %s dropped",
                endpoint.host,
                endpoint.queue.qsize(),
                delivery.event_type,
                delivery.event_id,
            )

    async def _flush(self, endpoints: list[_Endpoint], timeout_s: float) -> None:
        joins = [endpoint.queue.join() for endpoint in endpoints if endpoint.queue is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*joins), timeout_s)
        except TimeoutError:
            for endpoint in endpoints:
                waiting = endpoint.queue.qsize() if endpoint.queue is not None else 0
                if waiting:
                    endpoint.stats.dropped += waiting
                    logger.warning(
                        "%d webhook deliveries to %s not sent within %.1fs of shutdown",
                        waiting,
                        endpoint.host,
                        timeout_s,
                    )

    # Sending.

    async def _send_loop(self, endpoint: _Endpoint) -> None:
        assert endpoint.queue is not None
        while True:
            delivery = await endpoint.queue.get()
            try:
                await self._deliver(endpoint, delivery)
            except Exception:
                # A bug here must not end the loop, or every later delivery would wait forever.
                endpoint.stats.failed += 1
                logger.exception(
                    "webhook delivery %s to %s failed", delivery.event_id, endpoint.host
                )
            finally:
                endpoint.queue.task_done()

    async def _deliver(self, endpoint: _Endpoint, delivery: _Delivery) -> None:
        for attempt in range(1, self._max_attempts + 1):
            outcome = await self._post(endpoint, delivery)
            if outcome is None:
                endpoint.stats.delivered += 1
                return
            retryable, reason = outcome
            if not retryable or attempt == self._max_attempts:
                endpoint.stats.failed += 1
                logger.warning(
                    "webhook delivery %s (%s) to %s failed after %d attempts: %s",
                    delivery.event_id,
                    delivery.event_type,
                    endpoint.host,
                    attempt,
                    reason,
                )
                return

            delay = self._policy.backoff(attempt - 1)
            endpoint.stats.retried += 1
            logger.info(
                "webhook delivery %s to %s: %s; retrying in %.1fs",
                delivery.event_id,
                endpoint.host,
                reason,
                delay,
            )
            await self._sleep(delay)

    async def _post(self, endpoint: _Endpoint, delivery: _Delivery) -> tuple[bool, str] | None:
        """Send one attempt; return None on success, else (retryable, reason)."""
        assert self._client is not None and self._secret is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"envsync/{__version__}",
            SIGNATURE_HEADER: signature_header(
                self._secret.reveal(), delivery.body, now=self._clock()
            ),
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: delivery.event_id,
        }
        try:
            response = await self._client.post(
                endpoint.url.reveal(), content=delivery.body, headers=headers
            )
        except httpx.TimeoutException:
            return True, "timed out"
        except httpx.TransportError as error:
            # httpx's message may contain the URL, so only the kind of failure is kept.
            return True, f"connection failed ({type(error).__name__})"

        status = response.status_code
        if 200 <= status < 300:
            return None
        if status >= 500 or status in RETRY_STATUSES:
            return True, f"HTTP {status}"
        if 300 <= status < 400:
            return False, f"HTTP {status}, a redirect, which webhook deliveries do not follow"
        return False, f"HTTP {status}"


def _endpoint(index: int, url: str) -> _Endpoint:
    """Check one ENVSYNC_WEBHOOK_URLS entry; errors name its position and host only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        return _Endpoint(SecretValue(url), host)
    if parts.scheme == "http" and is_loopback_host(host):
        return _Endpoint(SecretValue(url), host)
    raise ConfigError(
        "ENVSYNC_WEBHOOK_URLS",
        f"entry {index + 1} (host {host}) is not an https:// URL; plain http:// is accepted "
        "only for loopback hosts (127.0.0.1, ::1, localhost)",
        hint="use an https:// URL",
    )


def _secret(settings: Settings) -> SecretValue:
    secret = settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ConfigError(
            "ENVSYNC_WEBHOOK_SECRET",
            "is not set, but ENVSYNC_WEBHOOK_URLS is; every delivery is signed with it so "
            "that receivers can check it",
            hint="set ENVSYNC_WEBHOOK_SECRET to a long random string shared with the receivers",
        )
    return SecretValue(secret.get_secret_value())
