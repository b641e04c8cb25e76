"""Prometheus metrics of the service: runs, changes, errors, provider calls, drift, API auth.

In one process the metrics live in a registry of their own, so several services in one
process (tests) never collide. Under `envsync serve --workers N`, PROMETHEUS_MULTIPROC_DIR
is set before the workers start, each worker writes its values to files there
(prometheus-client's multiprocess mode), and /metrics merges every worker's files, so any
worker reports for all of them.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from envsync.engine import RunRequest
from envsync.http import CallRecord
from envsync.model import RunMode, TargetResult

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Provider calls range from a few milliseconds (emulators) to the 30 s HTTP timeout.
CALL_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The service's metric families and the observers that feed them."""

    def __init__(self) -> None:
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None
        # In multiprocess mode the values go to files, and collect() reads them back.
        registry = None if self._multiprocess_dir else CollectorRegistry()
        self._registry = registry

        self.runs = Counter(
            "envsync_runs",
            "Finished runs by trigger, mode and status.",
            ["trigger", "mode", "status"],
            registry=registry,
        )
        self.changes = Counter(
            "envsync_changes",
            "Changes written to targets, by provider and operation.",
            ["provider", "op"],
            registry=registry,
        )
        self.errors = Counter(
            "envsync_errors",
            "Target errors by provider and cause (rejected and conflict included).",
            ["provider", "cause"],
            registry=registry,
        )
        self.call_duration = Histogram(
            "envsync_provider_call_duration_seconds",
            "Provider API call latency by provider, operation and status.",
            ["provider", "operation", "status"],
            buckets=CALL_BUCKETS_S,
            registry=registry,
        )
        self.calls = Counter(
            "envsync_provider_calls",
            "Provider API calls by provider, operation and status (failed: no answer).",
            ["provider", "operation", "status"],
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "envsync_rate_limit_waits",
            "Provider calls held back by rate-limit headers or answered with HTTP 429.",
            ["provider"],
            registry=registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "envsync_rate_limit_wait_seconds",
            "Seconds spent waiting for a provider's rate-limit window to reset.",
            ["provider"],
            registry=registry,
        )
        self.drift = Gauge(
            "envsync_drift_pending_changes",
            "Changes still pending per target after its last plan or apply.",
            ["provider", "target"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.auth_failures = Counter(
            "envsync_api_auth_failures",
            "Rejected API requests by reason (missing, malformed or wrong token).",
            ["reason"],
            registry=registry,
        )

    def collect(self) -> bytes:
        """Return every family in Prometheus' text format."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def observe_call(self, record: CallRecord) -> None:
        """Count one provider call; registered in `envsync.http.call_observers`."""
        status = str(record.status) if record.status is not None else "failed"
        labels = (record.provider, record.operation, status)
        self.calls.labels(*labels).inc()
        self.call_duration.labels(*labels).observe(record.duration_s)
        if record.waited_s > 0 or record.status == 429:
            self.rate_limit_waits.labels(record.provider).inc()
        if record.waited_s > 0:
            self.rate_limit_wait_seconds.labels(record.provider).inc(record.waited_s)

    async def observe_result(self, result: TargetResult, request: RunRequest) -> None:
        """Count one target's changes and errors and set its drift; an engine result hook."""
        provider = result.target.provider
        for change in result.written:
            self.changes.labels(provider, change.op.value).inc()
        for cause in result.error_causes:
            self.errors.labels(provider, cause).inc()

        plan = result.plan
        if plan is None:
            # A target that failed before planning keeps the drift of its last plan.
            return
        if plan.rejected:
            self.errors.labels(provider, "rejected").inc(len(plan.rejected))
        if plan.conflicts:
            self.errors.labels(provider, "conflict").inc(len(plan.conflicts))
        self.drift.labels(provider, result.target.name).set(_pending_after(result))

    def observe_run(self, trigger: str, mode: RunMode, status: str) -> None:
        self.runs.labels(trigger, mode.value, status).inc()

    def observe_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()


def _pending_after(result: TargetResult) -> int:
    """Count the plan's changes that are still pending once the run is done with the target."""
    assert result.plan is not None
    pending = result.plan.pending
    if result.mode is RunMode.DRY_RUN:
        return len(pending)
    written = {change.slot for change in result.written}
    return sum(1 for change in pending if change.slot not in written)
