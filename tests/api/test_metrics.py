"""GET /metrics: the families the service exposes, fed by real runs over loopback."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from envsync.emulators import EmulatorSet
from tests.api.conftest import RunningApi

FAMILIES = [
    "envsync_runs",
    "envsync_changes",
    "envsync_errors",
    "envsync_provider_call_duration_seconds",
    "envsync_provider_calls",
    "envsync_rate_limit_waits",
    "envsync_rate_limit_wait_seconds",
    "envsync_drift_pending_changes",
    "envsync_api_auth_failures",
]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_expose_every_family(api: RunningApi) -> None:
    with api.client() as client:
        text = client.get("/metrics").text

    names = {family.name for family in text_string_to_metric_families(text)}
    for family in FAMILIES:
        assert family in names, family


def test_metrics_count_runs_changes_and_calls(api: RunningApi) -> None:
    with api.client() as client:
        client.post("/envsync/dry-run/render")
        client.post("/envsync/apply/render")
        samples = _samples(client.get("/metrics").text)

    runs = "envsync_runs_total"
    assert _value(samples, runs, trigger="api", mode="dry-run", status="succeeded") == 1
    assert _value(samples, runs, trigger="api", mode="enforce", status="succeeded") == 1
    assert _value(samples, "envsync_changes_total", provider="render", op="create") == 2
    calls = [
        value
        for (name, labels), value in samples.items()
        if name == "envsync_provider_calls_total" and ("provider", "render") in labels
    ]
    assert sum(calls) > 0
    assert (
        _value(samples, "envsync_drift_pending_changes", provider="render", target="render/api")
        == 0
    )


def test_drift_gauge_shows_pending_changes(api: RunningApi) -> None:
    with api.client() as client:
        client.post("/envsync/dry-run/netlify")
        samples = _samples(client.get("/metrics").text)

    drift = "envsync_drift_pending_changes"
    assert _value(samples, drift, provider="netlify", target="netlify/web") == 2


def test_errors_counted_by_cause(api: RunningApi, emulators: EmulatorSet) -> None:
    emulators.add_fault(
        "netlify", {"match": {"path": ".*"}, "times": 100, "fault": {"status": 401}}
    )

    with api.client() as client:
        client.post("/envsync/apply/netlify")
        samples = _samples(client.get("/metrics").text)

    assert _value(samples, "envsync_errors_total", provider="netlify", cause="auth") == 1
    assert (
        _value(samples, "envsync_runs_total", trigger="api", mode="enforce", status="failed") == 1
    )
    failed_calls = [
        value
        for (name, labels), value in samples.items()
        if name == "envsync_provider_calls_total" and ("status", "401") in labels
    ]
    assert sum(failed_calls) >= 1


def test_rate_limited_call_is_counted(api: RunningApi, emulators: EmulatorSet) -> None:
    emulators.add_fault(
        "render",
        {
            "match": {"method": "GET", "path": "/v1/services$"},
            "times": 1,
            "fault": {"status": 429, "headers": {"Retry-After": "0"}},
        },
    )

    with api.client() as client:
        response = client.post("/envsync/dry-run/render")
        samples = _samples(client.get("/metrics").text)

    assert response.status_code == 200
    assert _value(samples, "envsync_rate_limit_waits_total", provider="render") == 1
