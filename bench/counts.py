"""Requests per sync against the minimum the APIs allow (see `bench.bounds`).

Each scenario starts from a target that envsync has synced before (its ledger contains every
key), except "all keys new", where the target has none of the canonical keys. The
emulator's request log gives the counts of the measured apply alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import bounds
from bench.emulated import Emulators
from bench.sandbox import Sandbox, check_report
from bench.seeds import THREE_CONTEXTS, Fleet, base_values, drifted, seed

DRIFTS = ("none", "10%", "all new")
LEDGERS = ("database", "target")
KINDS = ("render service, bulk", "render service, per-key", "render group", "netlify site")


@dataclass(frozen=True, slots=True)
class CountRow:
    kind: str
    drift: str
    ledger: str
    reads: int
    writes: int
    minimum_reads: int
    minimum_writes: int
    methods: str

    @property
    def total(self) -> int:
        return self.reads + self.writes

    @property
    def minimum(self) -> int:
        return self.minimum_reads + self.minimum_writes

    @property
    def ratio(self) -> float:
        return self.total / self.minimum if self.minimum else float(self.total == 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "minimum": self.minimum, "ratio": self.ratio}


def scenarios() -> Iterator[tuple[str, str, str]]:
    for kind in KINDS:
        for drift in DRIFTS:
            for ledger in LEDGERS:
                yield kind, drift, ledger


def measure_all(emulators: Emulators, folder: Path, variables: int = 130) -> list[CountRow]:
    return [
        measure(emulators, folder / f"count-{number}", kind, drift, ledger, variables)
        for number, (kind, drift, ledger) in enumerate(scenarios())
    ]


def measure(
    emulators: Emulators, folder: Path, kind: str, drift: str, ledger: str, variables: int
) -> CountRow:
    fleet = _fleet(kind, {} if drift == "all new" else base_values(variables))
    emulators.reset()
    emulators.seed(seed(fleet))
    write_mode = "per-key" if kind.endswith("per-key") else "bulk"
    sandbox = Sandbox.create(folder, emulators, fleet, write_mode=write_mode, ledger=ledger)

    if drift != "all new":
        # The sync before: envsync adopts every key, so the measured run starts owning them.
        sandbox.write_canonical(base_values(variables))
        check_report(sandbox.run("enforce"))
    canonical = drifted(base_values(variables), 0.1 if drift == "10%" else 0.0)
    sandbox.write_canonical(canonical)

    api = "netlify" if kind == "netlify site" else "render"
    before = len(emulators.requests(api))
    check_report(sandbox.run("enforce"))
    requests = emulators.requests(api)[before:]

    reads = [entry for entry in requests if entry["method"] == "GET"]
    writes = [entry for entry in requests if entry["method"] != "GET"]
    changed = variables if drift == "all new" else round(variables * 0.1) * (drift == "10%")
    minimum = _minimum(kind, drift, ledger, variables, changed)
    methods = ", ".join(sorted({entry["method"] for entry in requests}))
    return CountRow(
        kind, drift, ledger, len(reads), len(writes), minimum.reads, minimum.writes, methods
    )


def _fleet(kind: str, variables: dict[str, str]) -> Fleet:
    if kind == "netlify site":
        return Fleet(sites=1, variables=variables, contexts=THREE_CONTEXTS)
    if kind == "render group":
        return Fleet(groups=1, variables=variables)
    return Fleet(services=1, variables=variables)


def _minimum(kind: str, drift: str, ledger: str, variables: int, changed: int) -> bounds.Minimum:
    on_target = ledger == "target"
    # The ledger variable ENVSYNC_OWNERSHIP sits beside the others once written.
    remote = 0 if drift == "all new" else variables + int(on_target)
    if kind == "netlify site":
        new_keys = changed if drift == "all new" else 0
        changed_values = 0 if drift == "all new" else changed * len(THREE_CONTEXTS)
        return bounds.netlify_site(changed_values, new_keys, ledger_on_target=on_target)
    if kind == "render group":
        return bounds.render_group(changed, ledger_on_target=on_target)
    mode = "per-key" if kind.endswith("per-key") else "bulk"
    return bounds.render_service(remote, changed, write_mode=mode, ledger_on_target=on_target)


# Same limits per window as the platforms, in a 2 s window, so that a scenario that writes
# more than Render's 100 per window waits seconds rather than a minute. Counts do not
# depend on it: the pacer waits instead of getting 429 responses, and any 429 would count.
RATE_WINDOW_S = 2.0


def run(folder: Path | None = None, variables: int = 130) -> list[CountRow]:
    """Measure every scenario against in-process emulators."""
    from envsync.emulators import EmulatorSet

    with (
        tempfile.TemporaryDirectory(prefix="envsync-bench-counts-") as scratch,
        EmulatorSet(seed(Fleet()), rate_window_s=RATE_WINDOW_S) as emulators,
    ):
        return measure_all(emulators, folder or Path(scratch), variables)
