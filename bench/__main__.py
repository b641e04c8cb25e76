"""Run every benchmark and write docs/BENCHMARKS.md (and its plot and raw figures).

    python -m bench                       # everything, a quarter of an hour on two cores
    python -m bench --parts counts,scale  # some parts
    python -m bench --runs 5              # more runs per figure

netlify-cli runs only inside ../shared/tools/isolated-run, which this command calls with
`python -m bench.netlify_side`; the emulators for it start inside the same namespace.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import counts, footprint, machine, planner_scale, report, service_load, walltime

REPO = Path(__file__).resolve().parent.parent
ISOLATED_RUN = REPO.parent / "shared" / "tools" / "isolated-run"
PARTS = ("counts", "walltime", "footprint", "scale", "service", "netlify")


def main() -> None:
    options = _arguments()
    parts = options.parts.split(",") if options.parts else list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        sys.exit(f"unknown part {unknown[0]}; the parts are {', '.join(PARTS)}")

    results: dict[str, Any] = _previous(options.out) if options.parts else {}
    results.update(machine=machine.machine(), versions=machine.versions())
    load_at_start = machine.load_average()
    started = time.monotonic()
    runners: dict[str, Callable[[], Any]] = {
        "counts": lambda: [row.as_dict() for row in counts.run()],
        "walltime": lambda: [row.as_dict() for row in walltime.run(runs=options.runs)],
        "footprint": lambda: [f.as_dict() for f in footprint.run(runs=options.runs * 5)],
        "scale": lambda: [row.as_dict() for row in planner_scale.run(runs=options.runs)],
        "service": lambda: [row.as_dict() for row in service_load.run()],
        "netlify": lambda: _netlify_side(options.runs * 3),
    }
    for part in parts:
        print(f"bench: {part}", file=sys.stderr, flush=True)
        results[part] = _guarded(runners[part])

    # One record per invocation: a run of some parts keeps the records of the others.
    earlier = [run for run in results.get("runs", []) if not set(run["parts"]) <= set(parts)]
    results["runs"] = [
        *earlier,
        {
            "parts": parts,
            "commit": _commit(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started),
            "runs per figure": options.runs,
            "load average at start": load_at_start,
            "load average at end": machine.load_average(),
        },
    ]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    (options.out.parent / "benchmarks.json").write_text(json.dumps(results, indent=2), "utf-8")
    report.write(results, options.out)
    print(f"bench: wrote {options.out}", file=sys.stderr)


def _commit() -> str:
    """Return the checked-out commit, with `+changes` when the work tree differs from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head}+changes" if changed else head or "unknown"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="", help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--runs", type=int, default=3, help="runs per wall-time figure")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    return parser.parse_args()


def _previous(out: Path) -> dict[str, Any]:
    """Load the figures of an earlier full run, so that running some parts keeps the others."""
    raw = out.parent / "benchmarks.json"
    if not raw.exists():
        return {}
    loaded: dict[str, Any] = json.loads(raw.read_text("utf-8"))
    return loaded


def _guarded(runner: Callable[[], Any]) -> Any:
    """Run one part; a part that fails returns its error, which the document reports."""
    try:
        return runner()
    except Exception as error:
        print(f"bench: failed: {error!r}", file=sys.stderr)
        return {"error": f"{type(error).__name__}: {error}"}


def _netlify_side(runs: int) -> dict[str, Any]:
    if not ISOLATED_RUN.exists():
        return {"error": f"{ISOLATED_RUN} is absent, so netlify-cli was not run"}
    with tempfile.TemporaryDirectory(prefix="envsync-bench-") as scratch:
        out = Path(scratch) / "netlify.json"
        finished = subprocess.run(
            [
                str(ISOLATED_RUN),
                "--",
                sys.executable,
                "-m",
                "bench.netlify_side",
                str(out),
                str(runs),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if finished.returncode != 0 or not out.exists():
            tail = (finished.stderr or finished.stdout).strip().splitlines()[-3:]
            return {"error": f"isolated-run exited {finished.returncode}: {' / '.join(tail)}"}
        loaded: dict[str, Any] = json.loads(out.read_text("utf-8"))
        return loaded


if __name__ == "__main__":
    main()
