"""The HTTP layer every provider client sends its calls through.

It owns what the providers share: the bearer token (only ever in a header), retries with
capped exponential backoff and jitter, waiting as a 429 answer says, pacing from the
platforms' rate-limit headers, one log line per call, and turning HTTP failures into
envsync errors at this edge, with query strings, credentials and sent values removed.

Reads (GET) are always retried on 429, 5xx, timeouts, dropped connections and bodies that
cannot be parsed. A write is retried only when the platform cannot have acted on it: a
429, or a connection that failed before the request was sent. Any other failure of a
write raises WriteOutcomeUnknownError, so that the engine reads the target again before it
decides what to write next.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import httpx

from envsync import __version__
from envsync.errors import (
    AuthError,
    IncompleteReadError,
    NotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    WriteOutcomeUnknownError,
)
from envsync.model import SecretValue
from envsync.slots import PrioritySlots

logger = logging.getLogger(__name__)

# Render documents Ratelimit-Reset as epoch seconds but sends seconds until the reset; a
# value this large can only be an epoch time.
EPOCH_THRESHOLD = 1_000_000_000

# A server may ask for a long wait; beyond this, waiting is worse than failing the run.
MAX_SERVER_WAIT_S = 600.0

# How much of a platform's error message an error keeps.
MAX_DETAIL_CHARS = 300

# The values and credentials of the run in progress, per asyncio task. A broken or hostile
# platform may repeat any value it holds in an error message, not only the ones a request
# sent, so provider errors remove these as well.
_run_secrets: ContextVar[frozenset[str]] = ContextVar("envsync_run_secrets", default=frozenset())

CallObserver = Callable[["CallRecord"], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished provider call, for logs and metrics. It holds no value and no query."""

    provider: str
    operation: str
    method: str
    path: str
    status: int | None
    duration_s: float
    target: str | None
    attempt: int
    waited_s: float = 0.0


# Observers registered by the service (metrics); each gets every CallRecord.
call_observers: list[CallObserver] = []


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 6
    base_s: float = 0.5
    max_s: float = 60.0
    timeout_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter backoff: a random wait up to base * 2**attempt, capped."""
        ceiling = min(self.max_s, self.base_s * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(slots=True)
class RateBucket:
    """What the platform last said about one rate-limit bucket.

    `remaining` counts down locally for every request sent, so concurrent tasks do not all
    spend the same last request; each answer's headers correct it. `in_flight` counts the
    requests sent and not yet answered: an answer's `remaining` was counted before them.
    """

    remaining: int | None = None
    reset_at: float | None = None
    in_flight: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimitPacer:
    """Holds requests back while a bucket's window is spent, as the headers report."""

    def __init__(self, sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.time):
        self._buckets: dict[str, RateBucket] = {}
        self._sleep = sleep
        self._clock = clock
        self.waited_s = 0.0

    def bucket(self, name: str) -> RateBucket:
        return self._buckets.setdefault(name, RateBucket())

    async def acquire(self, name: str) -> float:
        """Wait until the bucket allows one more request and spend it; return the seconds
        waited."""
        waited = 0.0
        while True:
            waited += await self.wait_for_window(name)
            if self.take(name):
                return waited

    async def wait_for_window(self, name: str) -> float:
        """Wait while the bucket's window is spent, without spending from it; return the
        seconds waited."""
        bucket = self.bucket(name)
        waited = 0.0
        async with bucket.lock:
            if bucket.remaining is not None and bucket.remaining <= 0:
                delay = (bucket.reset_at or self._clock()) - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                    waited += delay
                # The window has reset; the next answer's headers say how much it holds.
                bucket.remaining = None
        self.waited_s += waited
        return waited

    def take(self, name: str) -> bool:
        """Spend one request of the bucket's window, when one is left or none is known."""
        bucket = self.bucket(name)
        if bucket.remaining is not None and bucket.remaining <= 0:
            return False
        if bucket.remaining is not None:
            bucket.remaining -= 1
        bucket.in_flight += 1
        return True

    def observe(self, name: str, headers: httpx.Headers | None) -> None:
        """Take one answer's rate-limit headers in (None: the request got no answer)."""
        bucket = self.bucket(name)
        bucket.in_flight = max(0, bucket.in_flight - 1)
        if headers is None:
            return
        remaining = _int_header(headers, "ratelimit-remaining", "x-ratelimit-remaining")
        reset_in = reset_delay(headers, self._clock())
        if remaining is None or reset_in is None:
            return
        # The platform counted this request before the others still in flight, which were
        # already spent here: assume none of them is in its count yet. Answers can arrive
        # out of order, so within one window an answer never raises the count.
        estimate = max(0, remaining - bucket.in_flight)
        reset_at = self._clock() + reset_in
        same_window = bucket.reset_at is not None and abs(reset_at - bucket.reset_at) < 1.0
        if same_window and bucket.remaining is not None:
            estimate = min(estimate, bucket.remaining)
        bucket.remaining = estimate
        bucket.reset_at = reset_at


def _int_header(headers: httpx.Headers, *names: str) -> int | None:
    for name in names:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return int(float(raw.strip()))
        except ValueError:
            continue
    return None


def reset_delay(headers: httpx.Headers, now: float) -> float | None:
    """Seconds until the rate-limit window resets, from whichever header the platform sent.

    `Ratelimit-Reset` (Render) is seconds until the reset, or epoch seconds when larger than
    10^9; `X-RateLimit-Reset` (Netlify) is epoch seconds.
    """
    render_reset = _int_header(headers, "ratelimit-reset")
    if render_reset is not None:
        if render_reset > EPOCH_THRESHOLD:
            return max(0.0, render_reset - now)
        return float(max(0, render_reset))
    netlify_reset = _int_header(headers, "x-ratelimit-reset")
    if netlify_reset is not None:
        return max(0.0, netlify_reset - now)
    return None


def retry_after_delay(headers: httpx.Headers, now: float) -> float | None:
    """The wait a 429 asks for: `Retry-After` (seconds or an HTTP date), else the reset."""
    raw = headers.get("retry-after")
    if raw is not None:
        raw = raw.strip()
        if raw.isdigit():
            return float(raw)
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    return reset_delay(headers, now)


def remember_secrets(secrets: Iterable[str]) -> Token[frozenset[str]]:
    """Add `secrets` to what provider errors remove in this task and the tasks it starts.

    Returns the token that `forget_secrets` takes to undo the addition.
    """
    return _run_secrets.set(_run_secrets.get() | frozenset(secrets))


def forget_secrets(token: Token[frozenset[str]]) -> None:
    _run_secrets.reset(token)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Remove every secret string from `text`; short strings are left, as they would
    blank out ordinary words and cannot identify a secret anyway."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def strings_in(document: Any) -> list[str]:
    """Every string inside a JSON-like document: the values a request body carries."""
    if isinstance(document, str):
        return [document]
    if isinstance(document, dict):
        return [text for item in document.values() for text in strings_in(item)]
    if isinstance(document, list):
        return [text for item in document for text in strings_in(item)]
    return []


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: Any
    headers: httpx.Headers


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for every client of the process.

    httpx builds a context per client by loading the whole CA bundle, which took about 40 ms
    each time; the service builds clients for every run. The context is httpx's own default
    (certifi's bundle, or SSL_CERT_FILE and SSL_CERT_DIR when set), with verification on.
    """
    return httpx.create_ssl_context(trust_env=True)


class ApiClient:
    """An authenticated JSON client for one provider's API and one token."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        token: SecretValue,
        policy: RetryPolicy,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        pacer: RateLimitPacer | None = None,
    ) -> None:
        self.provider = provider
        self._token = token
        self._policy = policy
        self._sleep = sleep
        self.pacer = pacer or RateLimitPacer(sleep=sleep)
        self._slots = PrioritySlots(concurrency)
        # Each target's place in the order its first request came in, which is its
        # priority for a slot (see envsync.slots).
        self._target_order: dict[str, int] = {}
        self._base_path = httpx.URL(base_url).path.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            verify=shared_tls_context(),
            timeout=httpx.Timeout(policy.timeout_s),
            follow_redirects=False,
            headers={
                "Accept": "application/json",
                "User-Agent": f"envsync/{__version__}",
            },
        )
        self.request_count = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(
        self,
        path: str,
        *,
        operation: str,
        params: dict[str, Any] | None = None,
        target: str | None = None,
        bucket: str = "read",
    ) -> ApiResponse:
        return await self.request(
            "GET", path, operation=operation, params=params, target=target, bucket=bucket
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        target: str | None = None,
        bucket: str | None = None,
    ) -> ApiResponse:
        """Send one call, retrying as the module docstring says, and return its answer.

        `path` is relative to the base URL and holds no query string; `params` carry the
        query. Raises a ProviderError subclass when the call fails for good.
        """
        is_read = method == "GET"
        bucket = bucket or ("read" if is_read else "write")
        sent_values = strings_in(json_body)
        full_path = f"{self._base_path}{path}"
        attempt = 0

        while True:
            waited = await self.pacer.wait_for_window(bucket)
            started = time.monotonic()
            try:
                async with self._slots.slot(self._priority(target)):
                    # The window is spent from only once a slot is free: a request that
                    # waited for a slot while others spent the window waits again, rather
                    # than being sent into a 429.
                    if not self.pacer.take(bucket):
                        continue
                    try:
                        response = await self._send(method, path, params, json_body)
                    except BaseException:
                        self.pacer.observe(bucket, None)
                        raise
                    self.pacer.observe(bucket, response.headers)
                    body = self._parse_body(response)
            except (httpx.TimeoutException, httpx.TransportError, _BadBody) as failure:
                self._record(operation, method, full_path, None, started, target, attempt, waited)
                attempt += 1
                retry_safe = is_read or _not_sent(failure)
                if retry_safe and attempt <= self._policy.max_retries:
                    await self._sleep(self._policy.backoff(attempt - 1))
                    continue
                raise self._transport_error(failure, method, full_path, target, is_read) from None

            self._record(
                operation, method, full_path, response.status_code, started, target, attempt, waited
            )
            if response.is_success:
                return ApiResponse(response.status_code, body, response.headers)

            attempt += 1
            delay = self._retry_delay(response, is_read, attempt)
            if delay is not None:
                await self._sleep(delay)
                continue
            raise self._status_error(response, body, method, full_path, target, sent_values)

    def _priority(self, target: str | None) -> int:
        # A call for no target, such as looking a service up by name, delays every target,
        # so it goes first.
        if target is None:
            return -1
        return self._target_order.setdefault(target, len(self._target_order))

    async def _send(
        self, method: str, path: str, params: dict[str, Any] | None, json_body: Any
    ) -> httpx.Response:
        self.request_count += 1
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        content = None
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        return await self._http.request(
            method, path, params=params, content=content, headers=headers
        )

    @staticmethod
    def _parse_body(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            if response.is_success:
                raise _BadBody(response.status_code) from None
            return response.text

    def _retry_delay(self, response: httpx.Response, is_read: bool, attempt: int) -> float | None:
        """How long to wait before sending again, or None when the call must not be retried."""
        if attempt > self._policy.max_retries:
            return None
        status = response.status_code
        if status == 429:
            asked = retry_after_delay(response.headers, time.time())
            if asked is None:
                return self._policy.backoff(attempt - 1)
            if asked > MAX_SERVER_WAIT_S:
                return None
            # A little jitter keeps many waiting clients from returning in the same instant.
            return asked + random.uniform(0, min(1.0, self._policy.base_s))
        if is_read and status >= 500:
            return self._policy.backoff(attempt - 1)
        return None

    def _record(
        self,
        operation: str,
        method: str,
        path: str,
        status: int | None,
        started: float,
        target: str | None,
        attempt: int,
        waited: float,
    ) -> None:
        record = CallRecord(
            provider=self.provider,
            operation=operation,
            method=method,
            path=path,
            status=status,
            duration_s=time.monotonic() - started,
            target=target,
            attempt=attempt,
            waited_s=waited,
        )
        logger.info(
            "%s %s %s %s %.0fms target=%s",
            record.provider,
            record.method,
            record.path,
            record.status if record.status is not None else "failed",
            record.duration_s * 1000,
            record.target or "-",
            extra={"envsync_call": record},
        )
        for observer in call_observers:
            observer(record)

    def _status_error(
        self,
        response: httpx.Response,
        body: Any,
        method: str,
        path: str,
        target: str | None,
        sent_values: list[str],
    ) -> ProviderError:
        status = response.status_code
        # Redacted before it is shortened: a cut through a value would leave its start.
        known = [*sent_values, self._token.reveal(), *_run_secrets.get()]
        detail = redact(_platform_message(body), known)[:MAX_DETAIL_CHARS]
        common: dict[str, Any] = {
            "provider": self.provider,
            "method": method,
            "path": path,
            "status": status,
            "detail": detail,
            "target": target,
        }
        if status in (401, 403):
            return AuthError(
                "the API token was rejected or lacks permission",
                hint=f"check the {self.provider} token that `envsync discover` reports",
                **common,
            )
        if status == 404:
            return NotFoundError("not found", **common)
        if status == 429:
            return RateLimitedError(
                "rate limit still exhausted after every retry",
                hint="run again later, or lower ENVSYNC_CONCURRENCY",
                **common,
            )
        if status >= 500 and method != "GET":
            return WriteOutcomeUnknownError(
                "the platform failed while writing; the write may or may not have happened",
                **common,
            )
        if status >= 500:
            return ProviderUnavailableError(
                "the platform kept failing", hint="run again later", **common
            )
        return ProviderError("the platform rejected the request", **common)

    def _transport_error(
        self, failure: Exception, method: str, path: str, target: str | None, is_read: bool
    ) -> ProviderError:
        kind = _describe_failure(failure)
        common: dict[str, Any] = {
            "provider": self.provider,
            "method": method,
            "path": path,
            "target": target,
        }
        if isinstance(failure, _BadBody):
            common["status"] = failure.status
        if is_read and isinstance(failure, _BadBody):
            return IncompleteReadError(f"the answer could not be parsed: {kind}", **common)
        if is_read:
            return ProviderUnavailableError(
                f"{kind} after every retry", hint="check the API URL and run again", **common
            )
        if _not_sent(failure):
            return ProviderUnavailableError(f"{kind}; nothing was written", **common)
        return WriteOutcomeUnknownError(f"{kind}; the write may or may not have happened", **common)


class _BadBody(Exception):
    """A success answer whose body is not the JSON it should be (cut short, malformed)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} with a body that is not valid JSON")
        self.status = status


def _not_sent(failure: Exception) -> bool:
    """Whether the request surely never reached the server, so resending cannot double it."""
    return isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _describe_failure(failure: Exception) -> str:
    if isinstance(failure, _BadBody):
        return str(failure)
    if isinstance(failure, httpx.TimeoutException):
        return "the request timed out"
    if isinstance(failure, httpx.ConnectError):
        return "could not connect"
    if isinstance(failure, httpx.RemoteProtocolError):
        return "the connection was dropped or the answer was cut short"
    return f"the connection failed ({type(failure).__name__})"


def _platform_message(body: Any) -> str:
    """The platform's own error text: Render's `message` or `error`, Netlify's `message`,
    or plain text, in full; the caller redacts it, then shortens it."""
    if isinstance(body, dict):
        for field_name in ("message", "error", "errors"):
            value = body.get(field_name)
            if isinstance(value, str):
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return "; ".join(value)
        return ""
    if isinstance(body, str):
        return body.strip()
    return ""
