"""The history routes: GET /envsync/runs, /envsync/runs/{id} and /envsync/tickets."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from envsync.api.auth import require_token
from envsync.api.models import ErrorBody, RunBody, RunsPage, TicketsBody
from envsync.api.responses import error_response
from envsync.api.syncs import service_of
from envsync.store.records import KeyChange, Run, RunTarget, Ticket

router = APIRouter(prefix="/envsync", tags=["history"], dependencies=[Depends(require_token)])

MAX_PAGE = 200


@router.get("/runs", response_model=RunsPage, summary="List runs, newest first")
async def list_runs(
    request: Request,
    limit: int = Query(50, ge=1, le=MAX_PAGE, description="Runs per page."),
    offset: int = Query(0, ge=0, description="Runs to skip."),
) -> JSONResponse:
    service = service_of(request)
    runs = await asyncio.to_thread(service.store.list_runs, limit, offset)
    in_flight = set(service.in_flight())
    return JSONResponse(
        {
            "runs": [run_dict(run, in_flight=run.id in in_flight) for run in runs],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(runs) == limit else None,
        }
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunBody,
    responses={404: {"model": ErrorBody, "description": "No run has this id."}},
    summary="One run with what it did to each target",
)
async def get_run(run_id: str, request: Request) -> JSONResponse:
    service = service_of(request)
    run = await asyncio.to_thread(service.store.get_run, run_id)
    if run is None:
        return error_response(404, "RunNotFound", f"no run has the id {run_id[:64]!r}")

    body = run_dict(run, in_flight=run_id in service.in_flight())
    error = service.run_error(run_id)
    if error is not None:
        body["error"] = error
    return JSONResponse(body)


@router.get("/tickets", response_model=TicketsBody, summary="Diagnostic tickets")
async def list_tickets(
    request: Request,
    open_only: bool = Query(False, alias="open", description="true: only open tickets."),
    target: str | None = Query(None, description="Only this target's tickets."),
) -> JSONResponse:
    service = service_of(request)
    tickets = await asyncio.to_thread(service.store.list_tickets, open_only, target)
    return JSONResponse({"tickets": [ticket_dict(ticket) for ticket in tickets]})


def run_dict(run: Run, *, in_flight: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "started_at": _time(run.started_at),
        "ended_at": _time(run.ended_at),
        "trigger": run.trigger.value,
        "actor": run.actor,
        "mode": run.mode.value,
        "status": run.status.value,
        "targets": [_run_target_dict(target) for target in run.targets],
    }
    if in_flight is not None:
        body["in_flight"] = in_flight
    return body


def _run_target_dict(target: RunTarget) -> dict[str, Any]:
    return {
        "target": target.target,
        "provider": target.provider,
        "ledger_id": target.ledger_id,
        "counts": asdict(target.counts),
        "changes": [_key_change_dict(change) for change in target.changes],
        "written": [_key_change_dict(change) for change in target.written],
        "errors": list(target.errors),
        "error_causes": list(target.error_causes),
        "duration_s": target.duration_s,
        "applied": target.applied,
        "finished": target.finished,
    }


def _key_change_dict(change: KeyChange) -> dict[str, Any]:
    return {"key": change.key, "context": change.context, "op": change.op.value}


def ticket_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "target": ticket.target,
        "cause": ticket.cause,
        "opened": _time(ticket.opened),
        "last_seen": _time(ticket.last_seen),
        "count": ticket.count,
        "diagnosis": ticket.diagnosis,
        "next_step": ticket.next_step,
        "closed": _time(ticket.closed),
        "open": ticket.is_open,
    }


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")
