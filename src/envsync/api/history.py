"""The history routes: GET /envsync/runs, /envsync/runs/{id} and /envsync/tickets."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from envsync.api.auth import require_token
from envsync.api.models import ErrorBody, RunBody, RunsPage, TicketsBody
from envsync.api.responses import error_response
from envsync.api.syncs import service_of
from envsync.report import run_dict, ticket_dict

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
