"""The FastAPI application of `envsync serve`.

`create_app(service)` builds the app around a Service, which it starts and stops with the
app's lifespan. `create_app_from_environment()` is the factory uvicorn calls in every
worker process: it reads the settings from the environment and refuses to build an app
without ENVSYNC_API_TOKEN unless `envsync serve --insecure-local` started it.

Every error response is JSON, `{"error", "message"}`, and contains no value, token or
traceback. In particular a request that fails validation is answered without the input
it sent, because that input may be a value for /envsync/rotate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from envsync import __version__
from envsync.api import health, history, syncs
from envsync.api import operations as operation_routes
from envsync.api.auth import TokenGuard, require_token
from envsync.api.operations import Operations
from envsync.api.responses import INTERNAL_ERROR, error_response, failure_response
from envsync.errors import ConfigError, EnvsyncError
from envsync.service import Service

logger = logging.getLogger(__name__)

# Set by `envsync serve --insecure-local` for the worker processes it starts.
INSECURE_LOCAL_VARIABLE = "ENVSYNC_SERVE_INSECURE_LOCAL"

DESCRIPTION = """Keeps Render and Netlify environment variables equal to one canonical set.

Every route except /envsync/health and /metrics requires
`Authorization: Bearer $ENVSYNC_API_TOKEN`. Values never appear in an answer: diffs show
`sha:<6 hex> (<N> chars)`, a prefix of a keyed hash and the length."""


def create_app(
    service: Service,
    *,
    insecure_local: bool = False,
    operations: Operations | None = None,
) -> FastAPI:
    """Build the API around `service`, which the app starts and stops.

    Raises ConfigError when ENVSYNC_API_TOKEN is not set and `insecure_local` is false.
    """
    settings = service.settings
    if settings.api_token is None and not insecure_local:
        raise ConfigError(
            "ENVSYNC_API_TOKEN",
            "is not set, and the API requires it",
            hint="set ENVSYNC_API_TOKEN, or serve on a loopback address with --insecure-local",
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="envsync",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.state.operations = operations or Operations()
    # With a token configured, --insecure-local changes nothing: the token is required.
    token = settings.api_token
    app.state.guard = TokenGuard(token, service.metrics)

    for router in (health.router, syncs.router, history.router, operation_routes.router):
        app.include_router(router)
    _add_docs(app)
    _add_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def create_app_from_environment() -> FastAPI:
    """Build the app from the process environment; uvicorn's factory in each worker."""
    from envsync.config import load_settings
    from envsync.logs import configure_logging, register_credentials

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    register_credentials(settings)
    insecure_local = os.environ.get(INSECURE_LOCAL_VARIABLE) == "1"
    return create_app(Service(settings), insecure_local=insecure_local)


def _add_docs(app: FastAPI) -> None:
    """Serve /docs and /openapi.json behind the token, like every route but two."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_token)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="envsync API")


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(EnvsyncError, _envsync_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _validation_failed(_: Request, error: RequestValidationError) -> JSONResponse:
    # Pydantic's report carries the rejected input; only where and why are sent back.
    problems = [
        {"loc": [str(part) for part in detail.get("loc", ())], "msg": detail.get("msg", "")}
        for detail in error.errors()
    ]
    summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
    return error_response(422, "InvalidRequest", summary or "invalid request", problems=problems)


def status_name(status_code: int) -> str:
    """Return the status's reason phrase as one word, such as `Unauthorized`."""
    try:
        return HTTPStatus(status_code).phrase.replace(" ", "")
    except ValueError:
        return "HTTPError"


async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
    name = status_name(error.status_code)
    headers = dict(error.headers) if error.headers else None
    return error_response(error.status_code, name, str(error.detail), headers=headers)


async def _envsync_error(_: Request, error: EnvsyncError) -> JSONResponse:
    return failure_response(error)


async def _unexpected_error(_: Request, error: Exception) -> JSONResponse:
    logger.error("unhandled error in a request", exc_info=error)
    return error_response(500, type(error).__name__, INTERNAL_ERROR)


class BodySizeLimit:
    """Limits request bodies to ENVSYNC_MAX_BODY_BYTES with a 413 response.

    A body whose Content-Length exceeds the limit is rejected before routing, so routes
    that never read their body run nothing either. A body without Content-Length is
    counted as the route reads it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.max_bytes:
            response = error_response(413, status_name(413), self._message())
            await response(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException from reading the body on to the
                    # exception handlers, which turn it into the JSON 413 response.
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"the request body exceeds ENVSYNC_MAX_BODY_BYTES ({self.max_bytes} bytes)"

    @staticmethod
    def _declared(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0
