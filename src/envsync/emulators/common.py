"""What the Render, Netlify and Vault emulators share.

Each emulator is an ASGI app built on `Emulator`. It serves the platform's API under the
platform's own paths and, under `/_emulator/`, a control API for tests and demos:

- `GET /_emulator/state`: the whole state in the seed form, secret values in full.
- `POST /_emulator/seed`: replace the state with the body (the seed form).
- `POST /_emulator/reset`: back to the starting seed, with an empty request log, no
  faults, the starting configuration and fresh rate-limit windows.
- `GET /_emulator/requests` (and `DELETE` to empty it): the API calls received, in arrival
  order, as `{"method", "path", "query", "status", "started", "ended", "keys"}`. `query`
  is the raw query string, `started` and `ended` are Unix times in seconds, `status` is
  null for a dropped connection, and `keys` lists the variable keys a write touched,
  never a value.
- `POST /_emulator/faults` (`GET` lists pending rules, `DELETE` removes them): see
  `envsync.emulators.faults`.
- `POST /_emulator/release`: let every request that a `hold` fault keeps waiting go on;
  returns `{"released": N}`.
- `GET`/`POST /_emulator/config`: read or change the run-time switches. Each emulator
  adds its own to three common ones:
  - `latency_ms`: a delay added to every API request. It uses asyncio.sleep, so delayed
    requests overlap.

A request is carried out once its whole body has arrived, even when its client stops
waiting for the response because it timed out or died. A request whose client left before
sending all of it is dropped, with a status of null in the request log.
  - `rate_window_s`: null keeps each limit's real window, a number makes every window
    that many seconds long.
  - `rate_limits`: false keeps counting and reporting but never responds 429.

Tests can watch every API response that any emulator in the process sends with
`add_response_observer`, for example to check the responses against a platform's OpenAPI
spec.

Control calls need no token and are not logged. Every API request passes, in order:
fault lookup, latency, the fault itself (status, drop), the token check, the rate limit,
then the API handler. Every response carries the emulator's rate-limit headers, except
those of a status fault, which carry only the fault's own headers and the request id.
"""

from __future__ import annotations

import abc
import asyncio
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from envsync.emulators.faults import Fault, FaultBook, FaultSpecError, parse_fault
from envsync.emulators.ratelimit import Bucket, RateDecision, RateLimiter

logger = logging.getLogger(__name__)

JSONObject = dict[str, Any]

# The scope entries through which the wrapper and the API handlers talk.
KEYS_SCOPE = "envsync.emulator.keys"
REPEAT_CURSOR_SCOPE = "envsync.emulator.repeat_cursor"
TRANSPORT_SCOPE = "envsync.emulator.transport"

# The rate-limit client key of requests without a known token.
_ANONYMOUS = "\x00anonymous"

# How long a dropped or truncated connection may take to report that it closed.
_DISCONNECT_WAIT_S = 5.0

# The longest a `hold` fault keeps a request waiting without a release, so that a test that
# never releases it cannot leave the emulator stuck.
_HOLD_LIMIT_S = 120.0


class ApiError(Exception):
    """An error response raised inside an API handler. Each emulator renders its body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body
        self.headers = dict(headers or {})


class SeedError(ValueError):
    """A seed document that does not fit the seed form; the message names the field."""


class ConfigError(ValueError):
    """An unknown configuration switch or a value it does not accept."""


class ConnectionDropped(Exception):
    """Raised when the server gives the app no way to close the connection itself."""


@dataclass(frozen=True, slots=True)
class ObservedResponse:
    """One API response as an emulator sent it.

    `headers` have lower-case names. `fault` is the kind of the injected fault that shaped
    the response (`"status"`, `"truncate"`, `"latency_ms"` or `"repeat_cursor"`), or None
    for an ordinary response. A truncated response carries only the part of the body that
    was sent. A dropped connection sends no response and is not observed.
    """

    api: str
    method: str
    path: str
    query: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    fault: str | None


ResponseObserver = Callable[[ObservedResponse], None]

# Observers of every emulator in this process. The tuple is replaced, never changed in
# place, so the serving thread can iterate over it while a test thread adds or removes one.
_observers: tuple[ResponseObserver, ...] = ()


def add_response_observer(observer: ResponseObserver) -> Callable[[], None]:
    """Call observer with every API response that any emulator in this process sends.

    The observer runs on the emulator's event loop, before the last byte of the body is
    sent, so a client has seen no complete response that its observers have not. It must
    be quick and must not raise: an exception is logged and ignored. Returns a function
    that removes the observer.
    """
    global _observers
    _observers = (*_observers, observer)

    def remove() -> None:
        global _observers
        _observers = tuple(kept for kept in _observers if kept is not observer)

    return remove


def _notify_observers(response: ObservedResponse) -> None:
    for observer in _observers:
        try:
            observer(response)
        except Exception:
            logger.exception("an emulator response observer failed; it is ignored")


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


async def read_json(request: Request) -> Any:
    """Return the parsed request body, None for an empty body; ApiError 400 when invalid."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None


def note_keys(request: Request, keys: Iterable[str]) -> None:
    """Record variable keys that this request wrote, for the request log."""
    logged = request.scope.get(KEYS_SCOPE)
    if logged is not None:
        logged.extend(keys)


def query_values(request: Request, name: str) -> list[str]:
    """Return a query parameter's values, given repeated (`a=1&a=2`) or comma-joined."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part for part in raw.split(",") if part)
    return values


def bearer_token(scope: Scope) -> str | None:
    header = header_value(scope, b"authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class Emulator(abc.ABC):
    """An ASGI app that emulates one platform API, with the `/_emulator/` control API.

    Subclasses hold the platform's state and routes. They implement `load_seed`,
    `dump_state`, `api_routes` and `error_body`, and may override the token check, the
    rate buckets and the extra headers. All state is touched only on the event loop that
    serves the app, so handlers need no locks. Code on other threads goes through
    `EmulatorSet`, which runs its calls on that loop.
    """

    api: ClassVar[str]
    media_type: ClassVar[str] = "application/json"
    # Switch name -> accepted values, for the emulator's own switches; `(str,)` accepts any
    # non-empty string.
    config_choices: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    config_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self,
        seed: Mapping[str, Any] | None = None,
        *,
        latency_ms: int = 0,
        rate_window_s: float | None = None,
    ) -> None:
        self.initial_seed: JSONObject = copy.deepcopy(
            dict(seed) if seed is not None else self.default_seed()
        )
        self.initial_config: JSONObject = {
            **self.config_defaults,
            "latency_ms": latency_ms,
            "rate_window_s": rate_window_s,
            "rate_limits": True,
        }
        self.validate_config(self.initial_config)
        self.config: JSONObject = dict(self.initial_config)
        self.tokens: frozenset[str] = frozenset()
        self.log: list[JSONObject] = []
        self.faults = FaultBook()
        self.limiter = RateLimiter()
        # Requests held by a `hold` fault wait for this event; a release sets it and puts a
        # fresh one in its place for later holds.
        self._release = asyncio.Event()
        self.held = 0
        self.load_seed(self.initial_seed)
        # Ids and times the seed left out were generated just now; keep them, so that a
        # reset brings back exactly this state.
        self.initial_seed = self.dump_state()
        self._api_app = self._build_api_app()
        self._control_app = self._build_control_app()

    # Hooks for each platform.

    @classmethod
    @abc.abstractmethod
    def default_seed(cls) -> JSONObject:
        """Return the seed used when none is given."""

    @abc.abstractmethod
    def load_seed(self, document: Mapping[str, Any]) -> None:
        """Replace the whole state with the seed document; raise SeedError when invalid."""

    @abc.abstractmethod
    def dump_state(self) -> JSONObject:
        """Return the state in the seed form, secret values in full."""

    @abc.abstractmethod
    def api_routes(self) -> list[BaseRoute]:
        """Return the platform API's routes."""

    @abc.abstractmethod
    def error_body(self, status: int, message: str) -> Any:
        """Return the platform's JSON error body for a status and message."""

    def token_of(self, scope: Scope) -> str | None:
        """Return the request's token when it is one of the seed's tokens, else None."""
        token = bearer_token(scope)
        return token if token in self.tokens else None

    def needs_token(self, path: str) -> bool:
        return True

    def auth_failure(self, path: str) -> Response:
        return self.error_response(401, "unauthorized")

    def rate_bucket(self, method: str, path: str) -> Bucket | None:
        return None

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        return {}

    def rate_limited(self, decision: RateDecision) -> Response:
        return self.error_response(429, "rate limit exceeded")

    def extra_headers(self) -> dict[str, str]:
        """Return headers that every API response carries, such as a request id."""
        return {}

    def not_found_route(self, path: str) -> Response:
        return self.error_response(404, "not found")

    # Responses.

    def json_response(
        self, document: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response(json_bytes(document), status, dict(headers or {}), self.media_type)

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return self.json_response(self.error_body(status, message), status, headers)

    @staticmethod
    def no_content() -> Response:
        # No body and no content type: the Netlify JS client rejects an empty body that
        # claims to be JSON (netlify/build js-client, response parsing).
        return Response(status_code=204)

    # The control API, callable directly on the loop that serves the app.

    def reset(self) -> None:
        self.release()
        self.load_seed(self.initial_seed)
        self.log.clear()
        self.faults.clear()
        self.limiter.clear()
        self.config = dict(self.initial_config)

    def seed(self, document: Mapping[str, Any]) -> None:
        self.load_seed(copy.deepcopy(dict(document)))

    def requests(self) -> list[JSONObject]:
        return copy.deepcopy(self.log)

    def add_fault(self, rule: Mapping[str, Any]) -> JSONObject:
        fault = parse_fault(dict(rule))
        self.faults.add(fault)
        return fault.describe()

    def release(self) -> int:
        """Let every held request go on; return how many were waiting."""
        released = self.held
        self._release.set()
        self._release = asyncio.Event()
        return released

    def configure(self, changes: Mapping[str, Any]) -> JSONObject:
        merged = {**self.config, **changes}
        self.validate_config(merged)
        self.config = merged
        return dict(self.config)

    def validate_config(self, config: Mapping[str, Any]) -> None:
        known = {"latency_ms", "rate_window_s", "rate_limits", *self.config_choices}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"unknown switch {unknown[0]!r}; known: {', '.join(sorted(known))}")

        for name, choices in self.config_choices.items():
            value = config.get(name)
            if choices == (str,):
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{name} must be a non-empty string")
            elif value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
                raise ConfigError(f"{name} must be one of {list(choices)}")

        latency = config.get("latency_ms")
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise ConfigError("latency_ms must be a non-negative number of milliseconds")

        window = config.get("rate_window_s")
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int | float) or window <= 0
        ):
            raise ConfigError("rate_window_s must be null or a positive number of seconds")

        if not isinstance(config.get("rate_limits"), bool):
            raise ConfigError("rate_limits must be true or false")

    # ASGI.

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._api_app(scope, receive, send)
            return

        if scope["path"].startswith("/_emulator/"):
            await self._control_app(scope, receive, send)
            return

        await self._serve_api(scope, receive, send)

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        entry: JSONObject = {
            "method": method,
            "path": path,
            "query": query,
            "status": None,
            "started": time.time(),
            "ended": None,
            "keys": [],
        }
        self.log.append(entry)
        scope[KEYS_SCOPE] = entry["keys"]
        # uvicorn's `send` is a method of the object that owns the connection's transport;
        # the drop and truncate faults close that transport.
        scope[TRANSPORT_SCOPE] = getattr(getattr(send, "__self__", None), "transport", None)

        # A platform acts on a request once it has received all of it, whether or not the
        # client is still there for the response. A request whose client left before
        # sending all of it is never carried out.
        receive, whole = await _read_whole_request(receive)
        if not whole:
            logger.debug("the client of %s %s left before sending the whole request", method, path)
            entry["ended"] = time.time()
            return

        fault = self.faults.take(method, path, _has_cursor(query))
        delay_ms = self.config["latency_ms"] + (fault.latency_ms if fault else 0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if fault is not None and fault.kind == "hold":
            await self._wait_for_release()

        observation = _Observation(self.api, entry, fault.kind if fault else None)

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            observation.record(message)
            await send(message)

        try:
            await self._respond(scope, receive, send_logged, fault)
        finally:
            entry["ended"] = time.time()
            observation.finish()

    async def _wait_for_release(self) -> None:
        release = self._release
        self.held += 1
        try:
            async with asyncio.timeout(_HOLD_LIMIT_S):
                await release.wait()
        except TimeoutError:
            logger.warning("a held request went on after %.0f s without a release", _HOLD_LIMIT_S)
        finally:
            self.held -= 1

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, fault: Fault | None
    ) -> None:
        path: str = scope["path"]
        if fault is not None and fault.kind == "drop":
            await _drop_connection(scope, receive)
            return

        if fault is not None and fault.kind == "status":
            await self._fault_response(fault)(scope, receive, self._with_headers(send, {}))
            return

        token = self.token_of(scope)
        bucket = self.rate_bucket(scope["method"], path)
        if token is None and self.needs_token(path):
            # Requests without a known token share one window of their own; they are
            # always rejected with 401, but still carry the rate-limit headers.
            decision = self._check_rate(_ANONYMOUS, bucket) if bucket is not None else None
            headers = self.rate_headers(decision) if decision is not None else {}
            await self.auth_failure(path)(scope, receive, self._with_headers(send, headers))
            return

        rate_headers: dict[str, str] = {}
        if bucket is not None:
            decision = self._check_rate(token or _ANONYMOUS, bucket)
            rate_headers = self.rate_headers(decision)
            if not decision.allowed:
                limited = self.rate_limited(decision)
                await limited(scope, receive, self._with_headers(send, rate_headers))
                return

        if fault is not None and fault.kind == "repeat_cursor":
            scope[REPEAT_CURSOR_SCOPE] = True
        if fault is not None and fault.kind == "truncate":
            truncated_send = self._with_headers(send, rate_headers)
            await _send_truncated(self._api_app, scope, receive, truncated_send)
            return
        await self._api_app(scope, receive, self._with_headers(send, rate_headers))

    def _check_rate(self, token: str, bucket: Bucket) -> RateDecision:
        return self.limiter.check(
            token,
            bucket,
            now=time.time(),
            enforce=self.config["rate_limits"],
            window_override_s=self.config["rate_window_s"],
        )

    def _fault_response(self, fault: Fault) -> Response:
        headers = {name.lower(): value for name, value in fault.headers.items()}
        if fault.body is not None:
            headers.setdefault("content-type", self.media_type)
        return Response(fault.body, fault.status, headers)

    def _with_headers(self, send: Send, headers: Mapping[str, str]) -> Send:
        """Wrap `send` so that the response carries the emulator's standard headers."""
        added = {**self.extra_headers(), **headers}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {bytes(name).lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in added.items()
                    if name.lower().encode("latin-1") not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return send_with_headers

    # Starlette apps.

    def _build_api_app(self) -> Starlette:
        app = Starlette(
            routes=self.api_routes(),
            exception_handlers={
                ApiError: self._handle_api_error,
                HTTPException: self._handle_http_exception,
            },
        )
        # The real APIs serve a path with a trailing slash themselves, without redirects.
        app.router.redirect_slashes = False
        return app

    async def _handle_api_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        body = (
            error.body if error.body is not None else self.error_body(error.status, error.message)
        )
        return self.json_response(body, error.status, error.headers)

    async def _handle_http_exception(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return self.not_found_route(request.url.path)
        return self.error_response(error.status_code, error.detail, error.headers)

    def _build_control_app(self) -> Starlette:
        routes = [
            Route("/_emulator/state", self._control(self._get_state), methods=["GET"]),
            Route("/_emulator/seed", self._control(self._post_seed), methods=["POST"]),
            Route("/_emulator/reset", self._control(self._post_reset), methods=["POST"]),
            Route(
                "/_emulator/requests",
                self._control(self._requests),
                methods=["GET", "DELETE"],
            ),
            Route(
                "/_emulator/faults",
                self._control(self._faults),
                methods=["GET", "POST", "DELETE"],
            ),
            Route("/_emulator/config", self._control(self._config), methods=["GET", "POST"]),
            Route("/_emulator/release", self._control(self._post_release), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def _control(
        self, handler: Callable[[Request], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Turn a control handler's result into JSON and its input errors into 400."""

        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except (SeedError, ConfigError, FaultSpecError) as error:
                body = json_bytes({"error": str(error)})
                return Response(body, 400, media_type="application/json")
            except ApiError as error:
                body = json_bytes({"error": error.message})
                return Response(body, error.status, media_type="application/json")
            status = (
                201 if request.method == "POST" and request.url.path.endswith("/faults") else 200
            )
            return Response(json_bytes(result), status, media_type="application/json")

        return endpoint

    async def _get_state(self, request: Request) -> Any:
        return self.dump_state()

    async def _post_seed(self, request: Request) -> Any:
        document = await read_json(request)
        if not isinstance(document, dict):
            raise SeedError("the seed must be a JSON object")
        self.seed(document)
        return self.dump_state()

    async def _post_release(self, request: Request) -> Any:
        return {"released": self.release()}

    async def _post_reset(self, request: Request) -> Any:
        self.reset()
        return {"reset": True}

    async def _requests(self, request: Request) -> Any:
        if request.method == "DELETE":
            self.log.clear()
        return self.requests()

    async def _faults(self, request: Request) -> Any:
        if request.method == "DELETE":
            self.faults.clear()
        if request.method == "POST":
            return self.add_fault(await read_json(request) or {})
        return self.faults.pending()

    async def _config(self, request: Request) -> Any:
        if request.method == "POST":
            changes = await read_json(request)
            if not isinstance(changes, dict):
                raise ConfigError("the configuration change must be a JSON object")
            return self.configure(changes)
        return dict(self.config)


class _Observation:
    """Collect one response's status, headers and body for the response observers."""

    def __init__(self, api: str, entry: JSONObject, fault: str | None) -> None:
        self._api = api
        self._entry = entry
        self._fault = fault
        self._active = bool(_observers)
        self._status: int | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._done = False

    def record(self, message: Message) -> None:
        """Note a message about to be sent; notify observers before the last body part."""
        if not self._active:
            return
        if message["type"] == "http.response.start":
            self._status = int(message["status"])
            self._headers = {
                bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1")
                for name, value in message.get("headers", [])
            }
            return
        if message["type"] == "http.response.body":
            self._body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.finish()

    def finish(self) -> None:
        """Notify observers once, also for a response cut short by a truncate fault."""
        if self._done or not self._active or self._status is None:
            return
        self._done = True
        _notify_observers(
            ObservedResponse(
                api=self._api,
                method=self._entry["method"],
                path=self._entry["path"],
                query=self._entry["query"],
                status=self._status,
                headers=self._headers,
                body=b"".join(self._body),
                fault=self._fault,
            )
        )


async def _read_whole_request(receive: Receive) -> tuple[Receive, bool]:
    """Read the request body now; return a `receive` that hands it over again, and whether
    the whole request arrived before the client disconnected."""
    messages: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive, False
        messages.append(message)
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay, True


def _has_cursor(query: str) -> bool:
    return any(part.startswith("cursor=") and len(part) > 7 for part in query.split("&"))


async def _close_connection(scope: Scope, receive: Receive) -> None:
    """Abort the TCP connection under this request and wait for uvicorn to notice."""
    transport = scope.get(TRANSPORT_SCOPE)
    if not isinstance(transport, asyncio.BaseTransport):
        # Outside uvicorn (an in-process ASGI transport) an exception is the only way out.
        raise ConnectionDropped("the emulator dropped the connection")

    abort = getattr(transport, "abort", transport.close)
    abort()
    async with asyncio.timeout(_DISCONNECT_WAIT_S):
        while (await receive())["type"] != "http.disconnect":
            pass


async def _drop_connection(scope: Scope, receive: Receive) -> None:
    logger.debug("dropping a connection as a fault rule asks")
    await _close_connection(scope, receive)


async def _send_truncated(app: Starlette, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the app, then send its headers and half of its body before closing the connection."""
    messages: list[Message] = []

    async def capture(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, capture)
    start = next(message for message in messages if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")

    headers = [
        (name, value)
        for name, value in start.get("headers", [])
        if bytes(name).lower() != b"content-length"
    ]
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await _close_connection(scope, receive)
