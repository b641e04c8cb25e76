"""POST /envsync/rollback/{run_id} and POST /envsync/rotate.

Both run through the engine like a sync and respond like /apply-all, with one result per
provider and the status a sync would get (200, 409 or 502). A rollback adds the keys it
skipped, and a rotation adds where it wrote the new value, never the value itself. A
request the operation cannot carry out (a dry-run to roll back, a key outside the filters)
gets 409 or 422 with the error's message.

The work itself is done by `envsync.rollback.rollback` and `envsync.rotate.rotate`. The
app reaches them through `Operations`, so a test or an embedding application can point
the routes at other functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from envsync.api.auth import require_token
from envsync.api.models import ErrorBody, RollbackBody, RotateBody, RotateRequest
from envsync.api.responses import (
    error_response,
    failure_response,
    grouped_body,
    status_for,
)
from envsync.api.syncs import RUN_RESPONSES, actor_of, service_of
from envsync.errors import ConfigError, RollbackError, RotationError
from envsync.model import SecretValue

if TYPE_CHECKING:
    from envsync.rollback import RollbackReport, Runner
    from envsync.rotate import RotateReport

router = APIRouter(prefix="/envsync", tags=["operations"], dependencies=[Depends(require_token)])

RollbackFunction = Callable[..., Awaitable["RollbackReport"]]
RotateFunction = Callable[..., Awaitable["RotateReport"]]


async def default_rollback(
    runner: Runner, run_id: str, *, confirm: bool, force: bool, actor: str | None
) -> RollbackReport:
    from envsync.rollback import rollback

    return await rollback(runner, run_id, confirm=confirm, force=force, actor=actor)


async def default_rotate(
    runner: Runner,
    key: str,
    *,
    value: SecretValue | None,
    generate: bool,
    actor: str | None,
) -> RotateReport:
    from envsync.rotate import rotate

    return await rotate(runner, key, value=value, generate=generate, actor=actor)


@dataclass(slots=True)
class Operations:
    """The functions behind the rollback and rotate routes, called with keyword options
    as `envsync.rollback.rollback` and `envsync.rotate.rotate` take them.

    The routes pass the Service as the runner, so these runs are tracked like any other:
    counted in the metrics, and waited for or abandoned at shutdown.
    """

    rollback: RollbackFunction = default_rollback
    rotate: RotateFunction = default_rotate


OPERATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RUN_RESPONSES,
    404: {"model": ErrorBody, "description": "No run has this id."},
    409: {"model": ErrorBody, "description": "The operation is not possible as configured."},
    422: {"model": ErrorBody, "description": "The request is invalid, such as its key."},
}


@router.post(
    "/rollback/{run_id}",
    response_model=RollbackBody,
    responses=OPERATION_RESPONSES,
    summary="Undo a run's changes from its snapshot (a dry-run unless ?confirm=true)",
)
async def rollback(
    run_id: str,
    request: Request,
    confirm: bool = Query(False, description="true: write; otherwise show the plan only."),
    force: bool = Query(
        False,
        description="Restore keys changed since the run, and delete over ENVSYNC_MAX_DELETIONS.",
    ),
) -> JSONResponse:
    service = service_of(request)
    run = await asyncio.to_thread(service.store.get_run, run_id)
    if run is None:
        return error_response(404, "RunNotFound", f"no run has the id {run_id[:64]!r}")

    operations: Operations = request.app.state.operations
    try:
        outcome = await operations.rollback(
            service, run_id, confirm=confirm, force=force, actor=actor_of(request)
        )
    except Exception as error:
        return _operation_failure(error)

    body: dict[str, Any] = {
        "ok": outcome.ok,
        "rolled_back_run_id": run_id,
        "applied": outcome.applied,
        "skipped": [asdict(item) for item in outcome.skipped],
        "message": outcome.message,
        "run_id": None,
        "mode": None,
        "results": [],
    }
    if outcome.report is None:
        return JSONResponse(body)
    body.update(grouped_body(outcome.report, await service.hasher()))
    return JSONResponse(body, status_code=status_for(outcome.report.results))


@router.post(
    "/rotate",
    response_model=RotateBody,
    responses=OPERATION_RESPONSES,
    summary="Give one key a new value in the source and on every target",
)
async def rotate(request: Request, body: RotateRequest) -> JSONResponse:
    service = service_of(request)
    value = SecretValue(body.value.get_secret_value()) if body.value is not None else None
    operations: Operations = request.app.state.operations
    try:
        outcome = await operations.rotate(
            service,
            body.key,
            value=value,
            generate=body.generate,
            actor=actor_of(request),
        )
    except Exception as error:
        return _operation_failure(error)

    answer: dict[str, Any] = {
        "key": outcome.key,
        "origin": outcome.origin,
        "generated": outcome.generated,
    }
    answer.update(grouped_body(outcome.report, await service.hasher()))
    return JSONResponse(answer, status_code=status_for(outcome.report.results))


def _operation_failure(error: Exception) -> JSONResponse:
    """Build the response for a request the operation rejected, or for any other failure."""
    if isinstance(error, RollbackError):
        return error_response(409, type(error).__name__, str(error))
    if isinstance(error, RotationError):
        return error_response(422, type(error).__name__, str(error))
    if isinstance(error, ConfigError):
        return error_response(409, type(error).__name__, str(error), setting=error.setting)
    return failure_response(error)
