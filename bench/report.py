"""Write docs/BENCHMARKS.md, and its wall-time plot, from the figures `python -m bench`
collected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import walltime

PLOT_NAME = "benchmarks-wall-time.png"

VERSION_TARGET_S = 0.1
PLAN_TARGET_S = 0.4
MEMORY_TARGET_MIB = 80.0
WALL_TARGET_RATIO = 1.2
PLANNER_TARGET_S = 1.0
HEALTH_TARGET_RPS = 2000.0
HEALTH_TARGET_P99_MS = 50.0


def write(results: Mapping[str, Any], out: Path) -> None:
    plotted = _plot(results.get("walltime"), out.parent / PLOT_NAME)
    sections = [
        _intro(results),
        _summary(results),
        _machine(results),
        _counts(results.get("counts")),
        _walltime(results.get("walltime"), plotted),
        _footprint(results.get("footprint"), results.get("netlify")),
        _scale(results.get("scale")),
        _service(results.get("service")),
        _side_by_side(results.get("netlify")),
        _missed(results),
    ]
    out.write_text("\n\n".join(section.rstrip() for section in sections) + "\n", "utf-8")


# Helpers.


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _failed(part: Any) -> str | None:
    if part is None:
        return "Not measured in this run."
    if isinstance(part, dict) and "error" in part:
        return f"Not measured: the part failed with `{part['error']}`."
    return None


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.0f} ms"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


# Sections.


def _intro(results: Mapping[str, Any]) -> str:
    runs = results.get("runs", [])
    per_figure = runs[-1]["runs per figure"] if runs else "?"
    return f"""# Benchmarks

envsync's cost is counted in API calls (the platforms rate-limit them), in wall time (a
deploy waits for the sync), and in the footprint of the CLI in CI jobs. Every figure below
comes from `python -m bench` (the `bench/` folder), which starts the Render and Netlify
emulators on loopback, seeds the targets, runs envsync, and counts requests in the
emulators' request logs. It rewrites this file, `docs/{PLOT_NAME}` and the raw figures in
`docs/benchmarks.json`. `python -m bench --parts counts,scale` runs some parts and keeps
the others' figures. `tests/test_bench_quick.py` runs the harness at small sizes in the test
suite and checks that the request counts equal the minimum, without asserting any time.

Times are medians of several runs ({per_figure} per wall-time figure, five times as many
per CLI command). The machine is shared with other work, so the table of runs below gives
the load average at the start and the end of each. Single figures move by tens of percent
from one run to the next, while request counts are exact."""


def _summary(results: Mapping[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    rows += _summary_counts(results.get("counts"))
    rows += _summary_wall(results.get("walltime"))
    rows += _summary_footprint(results.get("footprint"))
    rows += _summary_scale(results.get("scale"))
    rows += _summary_service(results.get("service"))
    return "## Summary\n\n" + _table(("measure", "result", "target", "verdict"), rows)


def _summary_counts(part: Any) -> list[tuple[str, str, str, str]]:
    if _failed(part):
        return [("requests per sync", "not measured", "ratio 1.00", "-")]
    worst = max(row["ratio"] for row in part)
    return [
        (
            f"requests per sync, {len(part)} scenarios",
            f"worst ratio to the minimum {worst:.2f}",
            "1.00 in every scenario",
            _met(worst == 1.0),
        )
    ]


def _summary_wall(part: Any) -> list[tuple[str, str, str, str]]:
    if _failed(part):
        return [("wall time, 100 targets", "not measured", "", "-")]
    rows = []
    for row in _large_fleets(part):
        rows.append(
            (
                f"wall time, {row['targets']} {row['provider']} targets{_window_note(row)}",
                f"{_seconds(row['wall_s'])}, {row['ratio']:.2f}x the bound "
                f"({_seconds(row['bound_s'])}, set by {row['limited_by']})",
                f"at most {WALL_TARGET_RATIO}x the bound",
                _met(row["ratio"] <= WALL_TARGET_RATIO),
            )
        )
    return rows


def _large_fleets(part: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """envsync's rows at 100 targets or more, which the wall-time target is about."""
    return [row for row in part if row["targets"] >= 100 and row["way"] == "envsync apply"]


def _window_note(row: Mapping[str, Any]) -> str:
    window = _window(row)
    return "" if window == walltime.WINDOW_S else f", {window:.0f} s windows"


def _window(row: Mapping[str, Any]) -> float:
    # Figures saved before the window was recorded all used the default window.
    return float(row.get("window_s", walltime.WINDOW_S))


def _summary_footprint(part: Any) -> list[tuple[str, str, str, str]]:
    if _failed(part):
        return [("CLI footprint", "not measured", "", "-")]
    rows = []
    for figures in part:
        limit = VERSION_TARGET_S if "--version" in figures["name"] else PLAN_TARGET_S
        rows.append(
            (
                figures["name"],
                f"{_seconds(figures['wall_s'])}, {figures['peak_mib']:.0f} MiB",
                f"at most {_seconds(limit)}, under {MEMORY_TARGET_MIB:.0f} MiB",
                _met(figures["wall_s"] <= limit and figures["peak_mib"] < MEMORY_TARGET_MIB),
            )
        )
    return rows


def _summary_scale(part: Any) -> list[tuple[str, str, str, str]]:
    if _failed(part):
        return [("planner, 100,000 variables", "not measured", "", "-")]
    largest = _largest_pure_planner(part)
    return [
        (
            f"planner, {largest['variables']:,} variables",
            _seconds(largest["seconds"]),
            f"under {_seconds(PLANNER_TARGET_S)}",
            _met(largest["seconds"] < PLANNER_TARGET_S),
        )
    ]


def _summary_service(part: Any) -> list[tuple[str, str, str, str]]:
    if _failed(part):
        return [("service health route", "not measured", "", "-")]
    health = next(row for row in part if "health" in row["route"])
    ok = (
        health["per_second"] >= HEALTH_TARGET_RPS
        and health["p99_ms"] < HEALTH_TARGET_P99_MS
        and health["failures"] == 0
    )
    return [
        (
            f"{health['route']}, {health['connections']} connections",
            f"{health['per_second']:,.0f} requests/s, p99 {health['p99_ms']:.1f} ms",
            f"at least {HEALTH_TARGET_RPS:,.0f}/s, p99 under {HEALTH_TARGET_P99_MS:.0f} ms",
            _met(ok),
        )
    ]


def _machine(results: Mapping[str, Any]) -> str:
    described = dict(results.get("machine", {}))
    runs = _table(
        ("parts", "commit", "finished", "duration", "load average at start", "at end"),
        (
            (
                ", ".join(run["parts"]),
                run["commit"],
                run["finished"],
                f"{run['seconds']} s",
                run["load average at start"],
                run["load average at end"],
            )
            for run in results.get("runs", [])
        ),
    )
    versions = results.get("versions", {})
    netlify = results.get("netlify")
    if isinstance(netlify, dict) and "netlify_cli_version" in netlify:
        versions = {**versions, "netlify-cli": netlify["netlify_cli_version"]}
    return f"""## Machine and versions

{_table(("", ""), described.items())}

Load averages are over 1, 5 and 15 minutes, for two cores:

{runs}

{_table(("software", "version"), versions.items())}

hyperfine, wrk and GNU time come from Debian's packages (`apt-get install hyperfine wrk
time`); without hyperfine the harness times each run with a clock, and the footprint table
says which timer it used. matplotlib draws the plot (`pip install -e '.[bench]'`)."""


def _counts(part: Any) -> str:
    failed = _failed(part)
    body = failed or _table(
        ("target", "drift", "ledger", "reads", "writes", "methods", "minimum", "ratio"),
        (
            (
                row["kind"],
                row["drift"],
                row["ledger"],
                f"{row['reads']} (min {row['minimum_reads']})",
                f"{row['writes']} (min {row['minimum_writes']})",
                row["methods"],
                row["minimum"],
                f"{row['ratio']:.2f}",
            )
            for row in part
        ),
    )
    return f"""## 1. Requests per sync

Each row is one apply of one target of 130 variables, given by id (no `auto` look-ups), and
its counts come from the emulator's request log. The targets are a Render service in each
write mode, a Render environment group, and a Netlify site whose variables each have a
value in `production`, `deploy-preview` and `branch-deploy` (envsync manages those three
contexts). "10%" changes 13 canonical values, and "all keys new" starts from a target
without any of them. In the other scenarios envsync has synced the target once before, so
its ledger owns every key. The ledger lives in the database or, with
`ENVSYNC_LEDGER_BACKEND=target`, in the target's own `ENVSYNC_OWNERSHIP` variable.

The minimum the APIs allow (`bench/bounds.py`):

- **Reads.** Render lists a service's variables in pages of at most 100 (Render's API docs,
  pagination page). The list ends at a page shorter than the limit, so 130 variables take
  2 reads (100, then 30), and an empty service 1. `GET /env-groups/{{id}}` returns a group
  with every variable and is not paginated: 1 read. A Netlify site takes 2: the site (for
  its account, which every env call names) and the site's variables, which are not
  paginated.
- **Writes.** A Render service in bulk mode takes one `PUT /services/{{id}}/env-vars` with
  the whole list, whatever changed; in per-key mode, and always for a group (groups have no
  bulk write), one `PUT` per changed key. Netlify takes one batched `POST` for all new keys
  and one `PATCH` per changed context value (13 keys x 3 contexts = 39).
- **Ledger on the target.** Its one write rides inside Render's bulk `PUT`; elsewhere it is
  one more write whenever anything changed (a `PUT` of the variable on Render, a `POST` or
  `PATCH` of its `dev` value on Netlify).

A sync with nothing to change writes nothing, with either ledger.

{body}"""


def _walltime(part: Any, plotted: bool) -> str:
    failed = _failed(part)
    body = failed or _table(
        (
            "provider",
            "targets",
            "window",
            "way",
            "wall (median)",
            "bound",
            "ratio",
            "limited by",
            "requests",
            "429s",
            "CPU envsync",
            "CPU emulators",
            "ratio to max(bound, CPU)",
        ),
        (
            (
                row["provider"],
                row["targets"],
                f"{_window(row):.0f} s",
                row["way"],
                _seconds(row["wall_s"]),
                _seconds(row["bound_s"]),
                f"{row['ratio']:.2f}",
                row["limited_by"],
                row["requests"],
                row["throttled"],
                _seconds(row["cpu_envsync_s"]),
                _seconds(row["cpu_emulators_s"]),
                f"{_cpu_ratio(row):.2f}",
            )
            for row in part
        ),
    )
    plot = f"\n\n![Wall time against the number of targets]({PLOT_NAME})" if plotted else ""
    window = walltime.WINDOW_S
    return f"""## 2. Wall time over many targets

Each row is one `apply` (the engine in-process, as the service and the CLI run it) over 1,
10 or 100 Render services or Netlify sites of {walltime.VARIABLES} variables each, and
over {walltime.RENDER_RATE_BOUND_TARGETS} Render services. The
canonical set differs from every target in 20% of its values, and every request gets
{walltime.LATENCY_MS} ms of emulated latency. envsync runs with its defaults
(`ENVSYNC_CONCURRENCY={_default_concurrency()}` requests at a time per provider, bulk
writes on Render, `all` on Netlify). The emulators run in a process of their own, so
envsync and the emulators each have one of the two cores. Every target was synced once
before the timed runs.

The emulators keep the platforms' limits per window (Render: 400 GETs and 100 env-var
writes per token; Netlify: 500 requests per token) in a window of {window:.0f} s instead
of 60 s. Take N requests in a bucket that allows L per window W, a latency of l per request,
and chains of d requests that wait for each other. On Render d = 4 (three pages of 100, 100
and 0, then the write), and on Netlify d = 3 (the site, its variables, then the writes).
The lower bound is

    T_bound = max(d * l, max over buckets of ((ceil(N / L) - 1) * W + l))

because the k-th window of a bucket opens no earlier than (k - 1) * W after the first.
100 Netlify sites need 100 x (2 + 40) = 4,200 requests, 9 windows of 500: the rate term,
80 s, dominates, far above the CPU time the same run costs. Render's 100 services need 300
reads and 100 bulk writes, which fit in one window of each bucket whatever its length. Their
bound is therefore the latency chain, 4 x 30 ms = 0.12 s, which no window length changes,
and CPU time sets the run's pace instead (the CPU columns show it). So one more row
syncs {walltime.RENDER_RATE_BOUND_TARGETS} Render services: 600 reads and 200 bulk writes,
two windows of each bucket. Its window is {walltime.RENDER_RATE_BOUND_WINDOW_S:.0f} s, long
enough that the rate term, one window, outweighs the CPU time of the run.

Under rate limits the order of requests matters. Each provider's
`ENVSYNC_CONCURRENCY` slots go to the targets in the order they started, so a target
reads its next page before another target reads its first. Targets finish one after
another, and the finished ones write in the window that is open. With slots given first
come, first served, 200 Render services were all read a page at a time. When the first read
window ran out, only 17 had been read in full and could write. That run took 25.8 s against
a 10 s bound, where it now takes about 13.5 s (one apply each, 10 s windows,
measured on 2026-12-05 on the machine below).

The sequential per-key script works as simple sync scripts do. It reads each target, then
writes each changed key with its own request, one at a time, and sleeps as long as a 429
response asks (`PUT /services/{{id}}/env-vars/{{key}}` on Render, `PATCH` of the `all` value
on Netlify).
It runs up to 10 targets; its ratio is to the same bound. A 429 response counts in the
"429s" column and not in "requests". CPU times are user plus system time, of this process
for envsync and of the emulators' process from psutil, which counts in steps of 10 ms. The
last column divides the wall time by the larger of the bound and the CPU time of the busier
process, since on two cores no run can beat either.{plot}

{body}"""


def _default_concurrency() -> int:
    from envsync.config import Settings

    return int(Settings.model_fields["provider_concurrency"].default)


def _cpu_ratio(row: Mapping[str, Any]) -> float:
    """Wall time against the larger of the bound and the busier process's CPU time, which
    no run on two cores can beat either."""
    floor = max(row["bound_s"], row["cpu_envsync_s"], row["cpu_emulators_s"])
    return float(row["wall_s"] / floor)


def _footprint(part: Any, netlify: Any) -> str:
    failed = _failed(part)
    figures = [] if failed else list(part)
    if isinstance(netlify, dict) and "footprint" in netlify:
        figures += netlify["footprint"]
    body = (
        failed
        if failed and not figures
        else _table(
            ("command", "wall (median)", "user CPU", "system CPU", "peak memory", "runs", "timer"),
            (
                (
                    f"`{f['name']}`",
                    _seconds(f["wall_s"]),
                    _seconds(f["user_s"]),
                    _seconds(f["system_s"]),
                    f"{f['peak_mib']:.0f} MiB",
                    f["runs"],
                    f["timer"],
                )
                for f in figures
            ),
        )
    )
    netlify_note = ""
    if _failed(netlify):
        netlify_note = f"\n\nnetlify-cli: {_failed(netlify)}"
    return f"""## 3. CLI footprint

The installed `envsync` script, as a CI job calls it: `envsync --version`, and `envsync
plan` of one target with no drift (a Render service, then a Netlify site, of 20 variables),
whose store already exists and whose ledger owns every key. Beside them, netlify-cli's
`netlify --version` and `netlify env:list --json` against the same Netlify emulator, run
inside `isolated-run` with the emulator started in the same namespace (`bench/netlify_side.py`).
Wall time comes from hyperfine (`--shell=none`, after warm-up runs). Peak memory is GNU
time's maximum resident set size, the median over the same number of runs. A wheel install compiles
envsync's bytecode when it installs; this checkout is an editable install on a machine that
sets PYTHONDONTWRITEBYTECODE, so the harness compiles it first and runs the commands without
that variable.

{body}{netlify_note}

Where a plan spends its time, by `python -X importtime` and pyinstrument: most of it goes to
imports. SQLAlchemy for the run history and the ledger takes about a third of the wall time.
Then come pydantic and pydantic-settings for the settings, httpx and its TLS context, and
Typer and Rich for the command line and its output. The run itself is two HTTP requests,
the plan, one ledger read and three short SQLite writes. Alembic (the schema check),
requests (the Vault source), psycopg (PostgreSQL locks), croniter and httpx's own
command-line client (Pygments and most of Rich) no longer load on this path, and
`tests/test_startup_path.py` keeps them off it."""


def _scale(part: Any) -> str:
    failed = _failed(part)
    body = failed or _table(
        ("variables", "figure", "time", "peak memory", "changes planned"),
        (
            (
                f"{row['variables']:,}",
                row["figure"],
                _seconds(row["seconds"]),
                f"{row['peak_mib']:.0f} MiB",
                f"{row['changes']:,}",
            )
            for row in part
        ),
    )
    return f"""## 4. Planner scale

One Netlify site in `all` with 10,000 and 100,000 variables, 10% of them drifted, every key
owned by the ledger. "Pure planner" times `plan_target` on records built in memory, and its
peak memory is the peak of Python allocations during that one call (tracemalloc), each size
in a fresh interpreter. "Whole envsync plan --json" is the CLI against the emulator: one read
of every variable, the ledger from SQLite, the canonical file, the plan and its JSON output;
its memory is the process's peak resident set size. The pure planner costs
{_per_key_us(part)} per key in this run, mostly a keyed hash to check the ledger and one
`Change` record. In the whole plan,
most of the rest goes to parsing the platform's response and the canonical file, and to
Python's garbage collector, which scans the hundreds of thousands of objects they create.

{body}"""


def _per_key_us(part: Any) -> str:
    if _failed(part):
        return "an unmeasured time"
    return f"about {_per_key_seconds(_largest_pure_planner(part)) * 1e6:.0f} µs"


def _largest_pure_planner(part: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    pure = [row for row in part if row["figure"] == "pure planner"]
    return max(pure, key=lambda row: row["variables"])


def _per_key_seconds(row: Mapping[str, Any]) -> float:
    return float(row["seconds"] / row["variables"])


def _service(part: Any) -> str:
    failed = _failed(part)
    body = failed or _table(
        ("route", "connections", "duration", "requests", "failures", "requests/s", "p50", "p99"),
        (
            (
                row["route"],
                row["connections"],
                f"{row['seconds']} s",
                f"{row['requests']:,}",
                row["failures"],
                f"{row['per_second']:,.1f}",
                f"{row['p50_ms']:.1f} ms",
                f"{row['p99_ms']:.1f} ms",
            )
            for row in part
        ),
    )
    return f"""## 5. Service load

`envsync serve` (one uvicorn worker, `ENVSYNC_API_TOKEN` set) under wrk with one thread and
50 connections on loopback, so the server keeps one of the two cores. The dry-run route plans
one Netlify site of 20 variables against the emulators, a whole run each time: token
discovery, the canonical file, two API calls, the plan and the run history.

{body}"""


def _side_by_side(part: Any) -> str:
    failed = _failed(part)
    if failed:
        return f"## 6. envsync beside netlify-cli\n\n{failed}"
    rows = part["side_by_side"]
    survived_keys = list(rows[0]["survived"]) if rows else []
    table = _table(
        ("tool", "drift", "exit", "wall (median)", "requests", "by method", *survived_keys),
        (
            (
                row["tool"],
                row["drift"],
                row["exit_code"],
                _seconds(row["wall_s"]),
                row["requests"],
                ", ".join(f"{method} {count}" for method, count in row["methods"].items()),
                *(_yes_no(row["survived"][key]) for key in survived_keys),
            )
            for row in rows
        ),
    )
    return f"""## 6. envsync beside netlify-cli

`netlify env:import FILE` and `envsync apply --file FILE --yes` import the same .env file into
the same emulated site, from the same starting state each run, inside `isolated-run`. The
site has 20 plain keys with a `production` and a `deploy-preview` value, `APP_HASH` whose
`production` value is `abc#def`, and `APP_SECRET`, a secret with `production` and
`deploy-preview` values. The file sets every key's value: unchanged ("none"), or with four
plain keys and `APP_HASH` changed. envsync manages the `production` context
(`NETLIFY_CONTEXT=production`, `NETLIFY_SECRET_KEYS=APP_SECRET`) and starts without local
state, as in a CI job, so it cannot read the secret back and writes it once; netlify-cli's
`env:import` has no context option.

{table}

netlify-cli's `env:import` deletes every key of the file that the site already has and
creates them again in one batch. Each key then has one value for every context: the
`deploy-preview` values are gone and the secret is a plain variable. Its .env parser also
starts a comment at an unquoted `#`, so `APP_HASH=abc#def` stores `abc`. envsync reads the
site once and writes only the `production` values that differ. It keeps every other context
and the secret flag, and its .env rules read an unquoted `#` with no space before it as
part of the value."""


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _plot(part: Any, path: Path) -> bool:
    """Draw wall time against the number of targets; False when nothing could be drawn."""
    if _failed(part):
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    styles = {"render": "tab:blue", "netlify": "tab:green"}
    for provider, colour in styles.items():
        rows = [
            row for row in part if row["provider"] == provider and _window(row) == walltime.WINDOW_S
        ]
        for way, marker, line in (
            ("envsync apply", "o", "-"),
            ("sequential per-key script", "s", ":"),
        ):
            chosen = sorted((r for r in rows if r["way"] == way), key=lambda r: r["targets"])
            if chosen:
                axes.plot(
                    [r["targets"] for r in chosen],
                    [r["wall_s"] for r in chosen],
                    marker=marker,
                    linestyle=line,
                    color=colour,
                    label=f"{provider}: {way}",
                )
        bound = sorted((r for r in rows if r["way"] == "envsync apply"), key=lambda r: r["targets"])
        # Markers only: between the measured sizes the bound is a step, not a line.
        axes.plot(
            [r["targets"] for r in bound],
            [r["bound_s"] for r in bound],
            linestyle="none",
            marker="_",
            markersize=16,
            markeredgewidth=2,
            color=colour,
            label=f"{provider}: lower bound",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("targets (200 variables each, 20% drift)")
    axes.set_ylabel("wall time (s)")
    axes.set_title(
        f"One apply at {walltime.LATENCY_MS} ms latency, {walltime.WINDOW_S:.0f} s rate windows"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def _missed(results: Mapping[str, Any]) -> str:
    notes = []
    wall: Any = results.get("walltime")
    if not _failed(wall):
        for row in _large_fleets(wall):
            if row["ratio"] > WALL_TARGET_RATIO:
                notes.append(_missed_wall(row))
    footprint: Any = results.get("footprint")
    if not _failed(footprint):
        plans = [f for f in footprint if "plan" in f["name"] and f["wall_s"] > PLAN_TARGET_S]
        if plans:
            notes.append(_missed_plan(plans))
    scale: Any = results.get("scale")
    if not _failed(scale):
        largest = _largest_pure_planner(scale)
        if largest["seconds"] >= PLANNER_TARGET_S:
            notes.append(_missed_planner(largest))
    if not notes:
        return "## Where targets are missed\n\nNowhere in this run."
    return "## Where targets are missed\n\n" + "\n\n".join(notes)


def _missed_wall(row: Mapping[str, Any]) -> str:
    fleet = f"{row['targets']} {row['provider']} targets"
    headline = f"""**Wall time, {fleet}: {_seconds(row["wall_s"])}, {row["ratio"]:.1f}x the
bound of {_seconds(row["bound_s"])}.**"""
    if row["limited_by"] != "latency":
        return f"""{headline} The rate limits set this bound: it is the moment the last
window opens, and it counts nothing for the work left after that. The requests sent in that
last window still take their latency and CPU time, {_seconds(row["cpu_envsync_s"])} of
CPU for the whole run, so the ratio shrinks as the window grows against that work."""

    variables = row["targets"] * walltime.VARIABLES
    return f"""{headline} The bound here is the latency chain, because the
{row["requests"]} requests fit in one rate-limit window of each bucket, and no window length
changes that. CPU sets the time instead. envsync spends {_seconds(row["cpu_envsync_s"])} of
CPU on {row["requests"]} HTTP exchanges, on parsing, planning and hashing {variables:,}
variables against the ledger, and on the run history, and the run takes
{_cpu_ratio(row):.2f}x that CPU time. Closing the rest would take less Python work per
request and per variable, not less waiting. Two places to start are fewer objects built per
variable between the JSON and the plan, and httpcore's connection pool, which checks every
connection it holds for each request."""


def _missed_plan(plans: Sequence[Mapping[str, Any]]) -> str:
    worst = max(plans, key=lambda f: f["wall_s"])
    over = worst["wall_s"] - PLAN_TARGET_S
    return f"""**One-target plan: {_seconds(worst["wall_s"])} at worst, {_seconds(over)} over
the {_seconds(PLAN_TARGET_S)} target** (user and system CPU
{_seconds(worst["user_s"] + worst["system_s"])}). About three quarters of it is imports.
Measured with `python -X importtime` on 2026-12-04, when a plan took 505 ms on a machine of
this kind, `import sqlalchemy` alone took about 170 ms, pydantic with pydantic-settings
about 140 ms, httpx about 60 ms, and Typer and Rich about 60 ms. The run itself (the TLS
context, two requests, four store statements, the plan and its output) takes the rest.
What would close the gap is a store path on the standard library's sqlite3 for the CLI's
few statements on a SQLite store: starting a run, reading the ledger and recording the
result. That would take SQLAlchemy off the CLI's path, while the service and PostgreSQL
stores keep it."""


def _missed_planner(row: Mapping[str, Any]) -> str:
    per_key_us = _per_key_seconds(row) * 1e6
    return f"""**Planner: {_seconds(row["seconds"])} for {row["variables"]:,} variables, over
the {_seconds(PLANNER_TARGET_S)} target.** That is {per_key_us:.1f} µs per key, mostly a
keyed hash (HMAC-SHA256) per owned key and one `Change` record. Machines of this kind differ
in speed: on 2026-12-04 the planner of commit d364186 took 579 ms, and on 2026-12-05 that
same commit took 1.15 s on the machine of this run. Building no `Change` record for a key
with nothing to do is one place to start."""
