"""The benchmark harness at small sizes: it runs, and envsync's request counts equal the
minimum the APIs allow. No timing is asserted; docs/BENCHMARKS.md contains the figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import bounds, counts, report, walltime

from envsync.emulators import EmulatorSet
from tests.conftest import subprocess_env


@pytest.mark.parametrize(("kind", "drift", "ledger"), list(counts.scenarios()))
def test_sync_makes_the_minimum_requests(
    emulators: EmulatorSet, tmp_path: Path, kind: str, drift: str, ledger: str
) -> None:
    row = counts.measure(emulators, tmp_path, kind, drift, ledger, variables=30)

    assert (row.reads, row.writes) == (row.minimum_reads, row.minimum_writes)


def test_render_reads_until_a_short_page() -> None:
    assert bounds.render_service(130, 0, write_mode="bulk", ledger_on_target=False).reads == 2
    assert bounds.render_service(200, 0, write_mode="bulk", ledger_on_target=False).reads == 3


def test_rate_limits_set_bound_past_one_window() -> None:
    bound = bounds.wall_time_bound(
        {"netlify": 1001}, bounds.NETLIFY_LIMITS, window_s=10.0, latency_s=0.03, depth=3
    )

    assert bound.seconds == pytest.approx(20.03)


def test_wall_time_harness_syncs_every_target(tmp_path: Path) -> None:
    rows = walltime.measure(
        "netlify",
        2,
        runs=1,
        folder=tmp_path,
        window_s=5.0,
        latency_ms=0,
        variables=20,
        sequential=True,
        env=subprocess_env(),
    )

    # Per site: the site and its variables, then one PATCH per changed key (20% of 20).
    assert [(row.way, row.requests) for row in rows] == [
        ("envsync apply", 2 * (2 + 4)),
        ("sequential per-key script", 2 * (1 + 4)),
    ]


def test_report_renders_measured_and_missing_parts(emulators: EmulatorSet, tmp_path: Path) -> None:
    row = counts.measure(emulators, tmp_path / "sync", "render group", "10%", "target", 30)
    out = tmp_path / "BENCHMARKS.md"

    report.write({"counts": [row.as_dict()], "walltime": {"error": "RuntimeError: x"}}, out)

    document = out.read_text("utf-8")
    assert "| render group | 10% | target |" in document
    assert "Not measured: the part failed with `RuntimeError: x`." in document
    assert "Not measured in this run." in document
