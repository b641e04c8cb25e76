"""The sync routes: POST /envsync/dry-run/{provider}, /apply/{provider} and /apply-all.

Dry-run routes never write, and apply routes always enforce, whatever ENVSYNC_MODE is.
`?force=true` is the CLI's `--force`. With `?wait=false` an apply route responds 202 with
the run's id at once, to be followed at /envsync/runs/{id}.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from envsync.api.auth import require_token
from envsync.api.models import ApplyAllBody, ErrorBody, ProviderBody, RunAccepted
from envsync.api.responses import (
    error_response,
    failure_response,
    grouped_body,
    provider_body,
    run_response,
)
from envsync.config import PROVIDER_NAMES, load_targets
from envsync.engine import RunRequest
from envsync.errors import ConfigError, DiscoveryError
from envsync.model import RunMode
from envsync.service import Service
from envsync.store.records import RunTrigger

router = APIRouter(prefix="/envsync", tags=["sync"], dependencies=[Depends(require_token)])

ForceQuery = Query(False, description="Make deletions over ENVSYNC_MAX_DELETIONS (--force).")
WaitQuery = Query(True, description="false: respond 202 with the run id at once.")

RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every target succeeded with no errors."},
    202: {"model": RunAccepted, "description": "Started in the background (?wait=false)."},
    401: {"model": ErrorBody, "description": "Missing or invalid bearer token."},
    409: {
        "model": ErrorBody,
        "description": "The provider is not configured, or another apply of a target held "
        "its lock past the lock timeout (the body then holds every result).",
    },
    500: {"model": ErrorBody, "description": "envsync's own failure, such as its source."},
    502: {"description": "A target has an error; the body still holds every result."},
}
PROVIDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RUN_RESPONSES,
    404: {"model": ErrorBody, "description": "Unknown provider; `providers` lists the known."},
}


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def actor_of(request: Request) -> str:
    """Name who asked, for the run history: the API and the client's address."""
    client = request.client.host if request.client else "unknown"
    return f"api {client}"


@router.post(
    "/dry-run/{provider}",
    response_model=ProviderBody,
    responses=PROVIDER_RESPONSES,
    summary="Plan one provider's targets without writing",
)
async def dry_run(provider: str, request: Request, force: bool = ForceQuery) -> JSONResponse:
    service = service_of(request)
    problem = await provider_problem(service, provider)
    if problem is not None:
        return problem
    run_request = _run_request(service, request, RunMode.DRY_RUN, (provider,), force)
    return await _run_provider(service, run_request, provider)


@router.post(
    "/apply/{provider}",
    response_model=ProviderBody,
    responses=PROVIDER_RESPONSES,
    summary="Apply the canonical set to one provider's targets",
)
async def apply(
    provider: str, request: Request, force: bool = ForceQuery, wait: bool = WaitQuery
) -> JSONResponse:
    service = service_of(request)
    problem = await provider_problem(service, provider)
    if problem is not None:
        return problem
    run_request = _run_request(service, request, RunMode.ENFORCE, (provider,), force)
    if not wait:
        return await accepted(service, run_request)
    return await _run_provider(service, run_request, provider)


@router.post(
    "/apply-all",
    response_model=ApplyAllBody,
    responses=RUN_RESPONSES,
    summary="Apply the canonical set to every configured target",
)
async def apply_all(
    request: Request, force: bool = ForceQuery, wait: bool = WaitQuery
) -> JSONResponse:
    service = service_of(request)
    run_request = _run_request(service, request, RunMode.ENFORCE, (), force)
    if not wait:
        return await accepted(service, run_request)

    try:
        report = await service.run(run_request)
    except Exception as error:
        return failure_response(error)
    body = grouped_body(report, await service.hasher())
    return run_response(body, report.results)


async def accepted(service: Service, run_request: RunRequest) -> JSONResponse:
    """Start the run in the background and respond 202 with where to follow it."""
    try:
        run_id = await service.submit(run_request)
    except Exception as error:
        return failure_response(error)
    location = f"/envsync/runs/{run_id}"
    return JSONResponse(
        {"run_id": run_id, "status": "running", "status_url": location},
        status_code=202,
        headers={"Location": location},
    )


async def provider_problem(service: Service, provider: str) -> JSONResponse | None:
    """Build a 404 response for an unknown provider and 409 for one not configured.

    The token is looked up here as well as in the run, so that a missing token is a 409
    naming the setting, also for `?wait=false`, rather than a failed target.
    """
    if provider not in PROVIDER_NAMES:
        return error_response(
            404,
            "UnknownProvider",
            f"unknown provider {provider[:64]!r}; known providers: {', '.join(PROVIDER_NAMES)}",
            providers=list(PROVIDER_NAMES),
        )

    settings = service.settings
    if provider not in settings.targets:
        return _not_configured(
            "ENVSYNC_TARGETS",
            f"{provider} is not in ENVSYNC_TARGETS ({','.join(settings.targets) or 'empty'}); "
            f"add it to sync {provider}",
        )
    try:
        specs = await asyncio.to_thread(load_targets, settings, cwd=service.cwd)
        if not any(spec.provider == provider for spec in specs):
            return _not_configured(
                "ENVSYNC_CONFIG_FILE",
                f"{settings.config_file} describes no {provider} target; add a [[target]] "
                f'table with provider = "{provider}"',
            )
        await _require_token(service, provider)
    except DiscoveryError as error:
        return _not_configured(f"{provider.upper()}_API_TOKEN", str(error))
    except ConfigError as error:
        return _not_configured(error.setting, str(error))
    return None


async def _require_token(service: Service, provider: str) -> None:
    from envsync.discovery import discover_token, require_token

    discovery = await discover_token(service.settings, provider, environ=service.environ)
    require_token(discovery)


def _not_configured(setting: str, message: str) -> JSONResponse:
    return error_response(409, "ProviderNotConfigured", message, setting=setting)


def _run_request(
    service: Service,
    request: Request,
    mode: RunMode,
    targets: tuple[str, ...],
    force: bool,
) -> RunRequest:
    return RunRequest(
        mode=mode,
        targets=targets,
        force=force,
        trigger=RunTrigger.API.value,
        actor=actor_of(request),
        lock_timeout_s=service.settings.lock_timeout_s,
    )


async def _run_provider(service: Service, run_request: RunRequest, provider: str) -> JSONResponse:
    try:
        report = await service.run(run_request)
    except Exception as error:
        return failure_response(error)

    results = [result for result in report.results if result.target.provider == provider]
    hasher = await service.hasher()
    body = provider_body(provider, results, run_request.mode.value, hasher)
    return run_response(body, results)
