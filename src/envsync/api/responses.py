"""How results and failures become HTTP responses.

A run's response is 200 when every target succeeded with no errors, 409 when an apply of a
target was still holding its lock after the lock timeout, and 502 when any target has
another error (a provider failure, a rejected key, a conflict); the body still holds every
result, so `curl -f` in a workflow fails on any failed target. envsync's own failures are
500 with the error's class and a message that holds no value and no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import JSONResponse

from envsync.engine import RunReport
from envsync.errors import EnvsyncError, LockTimeoutError
from envsync.model import TargetResult
from envsync.report import Fingerprinter, provider_dict, target_dict

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error; the server log has the details"


def error_response(
    status_code: int,
    error: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message}
    body.update({name: value for name, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status_code, headers=headers)


def failure_response(error: Exception) -> JSONResponse:
    """Build the response for an exception raised before any target had a result."""
    if isinstance(error, LockTimeoutError):
        return error_response(409, type(error).__name__, str(error))
    if isinstance(error, EnvsyncError):
        logger.error("request failed: %s: %s", type(error).__name__, error)
        return error_response(500, type(error).__name__, str(error))
    # Only envsync's own messages are known to hold no value; others stay in the log.
    logger.error("request failed", exc_info=error)
    return error_response(500, type(error).__name__, INTERNAL_ERROR)


def status_for(results: Iterable[TargetResult]) -> int:
    """Return the status a run's answer gets from its targets' results."""
    results = list(results)
    if any(LockTimeoutError.cause in result.error_causes for result in results):
        return 409
    if all(result.ok for result in results):
        return 200
    return 502


def provider_body(
    provider: str, results: Sequence[TargetResult], mode: str, hasher: Fingerprinter
) -> dict[str, Any]:
    """Build one provider's response: its one target's object, or the `targets` summary."""
    entries = [target_dict(result, hasher) for result in results]
    return provider_dict(provider, mode, entries)


def by_provider(report: RunReport) -> dict[str, list[TargetResult]]:
    """Group a run's results by provider, in the order the providers first appear."""
    groups: dict[str, list[TargetResult]] = {}
    for result in report.results:
        groups.setdefault(result.target.provider, []).append(result)
    return groups


def grouped_body(report: RunReport, hasher: Fingerprinter) -> dict[str, Any]:
    """Build the response of a run over several providers:
    `{"ok", "run_id", "mode", "results": [...]}`."""
    mode = report.mode.value
    return {
        "ok": report.ok,
        "run_id": report.run_id,
        "mode": mode,
        "results": [
            provider_body(provider, results, mode, hasher)
            for provider, results in by_provider(report).items()
        ],
    }


def run_response(body: dict[str, Any], results: Iterable[TargetResult]) -> JSONResponse:
    return JSONResponse(body, status_code=status_for(results))
