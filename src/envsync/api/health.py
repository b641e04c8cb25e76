"""GET /envsync/health and GET /metrics: the two routes that need no token.

Health shows the configuration without secrets: modes, schedule, source kind, targets,
filters, and URLs reduced to what identifies a host. Provider API URLs keep their path.
Vault and dashboard URLs show only their origin, because envsync treats them as
credentials. The database shows only its kind, and webhooks only their number. It also shows the
scheduler's state, each target's last run and whether the store answers, which is
checked at most once a second however often health is requested. The status is 503 while
the store does not answer, so a platform's health check sees it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from envsync import __version__
from envsync.api.models import HealthBody
from envsync.api.syncs import service_of
from envsync.config import Settings

router = APIRouter(tags=["operations"])


@router.get(
    "/envsync/health",
    response_model=HealthBody,
    responses={503: {"model": HealthBody, "description": "The store does not answer."}},
    summary="Configuration without secrets, scheduler, last runs, store",
)
async def health(request: Request) -> JSONResponse:
    service = service_of(request)
    status = await service.store_status.get()
    body = {
        "status": "ok" if status.reachable else "degraded",
        "version": __version__,
        "auth": request.app.state.guard.mode,
        "config": describe_settings(service.settings),
        "scheduler": service.scheduler_state(),
        "store": {
            "reachable": status.reachable,
            "backend": database_kind(service.settings),
        },
        "in_flight": service.in_flight(),
        "last_runs": status.last_runs,
    }
    return JSONResponse(body, status_code=200 if status.reachable else 503)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}}},
)
async def metrics(request: Request) -> Response:
    service = service_of(request)
    return Response(service.metrics.collect(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def describe_settings(settings: Settings) -> dict[str, Any]:
    """Describe the settings a person checks on a running service, without credentials."""
    return {
        "enabled": settings.enabled,
        "mode": settings.mode,
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "source": _describe_source(settings),
        "targets": list(settings.targets),
        "filters": {
            "include_prefixes": list(settings.include_prefixes),
            "exclude_prefixes": list(settings.exclude_prefixes),
        },
        "allow_deletions": settings.allow_deletions,
        "max_deletions": settings.max_deletions,
        "redeploy": settings.redeploy,
        "ledger_backend": settings.ledger_backend,
        "discovery_order": list(settings.discovery_order),
        "netlify_contexts": list(settings.netlify_contexts),
        "render_write_mode": settings.render_write_mode,
        "urls": {
            "render": public_url(settings.render_api_url),
            "netlify": public_url(settings.netlify_api_url),
        },
        "webhooks": len(settings.webhook_urls),
        "lock_timeout_s": settings.lock_timeout_s,
    }


def _describe_source(settings: Settings) -> dict[str, Any]:
    kind = settings.canonical_source
    source: dict[str, Any] = {"kind": kind}
    if kind == "file":
        source["file"] = settings.canonical_file
    if kind == "vault":
        vault_kind = settings.effective_vault_kind
        source["vault_kind"] = vault_kind
        address = settings.vault_addr if vault_kind == "hashicorp" else settings.vault_url
        source["vault"] = origin(address)
        if vault_kind == "hashicorp":
            source["path"] = f"{settings.vault_mount}/{settings.vault_path}"
    if kind == "dashboard":
        source["dashboard"] = origin(settings.dashboard_url)
    return source


def public_url(url: str) -> str:
    """Return the URL without user name, password, query string or fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{_host_port(url)}{parts.path}"


def origin(url: str | None) -> str | None:
    """Return only the scheme, host and port of a URL."""
    if not url:
        return None
    return f"{urlsplit(url).scheme}://{_host_port(url)}"


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def database_kind(settings: Settings) -> str:
    """Return the kind of database (sqlite, postgresql), never its URL, which may hold a
    password."""
    scheme = settings.database_url.get_secret_value().split(":", 1)[0]
    kind = scheme.split("+", 1)[0].lower()
    if kind in ("postgres", "postgresql"):
        return "postgresql"
    return "sqlite" if kind == "sqlite" else "unknown"
