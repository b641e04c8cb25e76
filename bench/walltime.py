"""Wall time of one apply over many targets, against the bound set by latency and limits.

Each target has 200 variables and the canonical set differs from it in 20% of them.
The emulators run in a process of their own with a fixed latency and the platforms'
limits per window (Render: 400 GETs and 100 env-var writes; Netlify: 500 requests), in a
window shortened so that the rate-limit term of the bound dominates where the requests
outnumber one window. Before the timed runs, one untimed apply of the undrifted set lets
envsync adopt every key, as a target it has synced before; before each timed run the
emulators go back to their seed with fresh rate-limit windows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import bounds
from bench.emulated import EmulatorProcess
from bench.sandbox import Sandbox, check_report
from bench.seeds import (
    ACCOUNT_SLUG,
    NETLIFY_TOKEN,
    RENDER_TOKEN,
    Fleet,
    base_values,
    drifted,
    seed,
    service_id,
    site_id,
)

VARIABLES = 200
DRIFT = 0.2
LATENCY_MS = 30
WINDOW_S = 10.0
# 100 Render services fit in one window of each Render bucket, so the rate limits never set
# their bound. 200 services (600 reads, 200 bulk writes) need two windows of each. With a
# 30 s window the rate term, not the CPU time of the run, dominates their bound.
RENDER_RATE_BOUND_TARGETS = 200
RENDER_RATE_BOUND_WINDOW_S = 30.0
# Chains of requests that wait for each other, per target: Render reads 200 variables in
# three pages (100, 100, then an empty page) and then writes; Netlify reads the site,
# then its variables, then writes.
DEPTH = {"render": 4, "netlify": 3}
LIMITS = {"render": bounds.RENDER_LIMITS, "netlify": bounds.NETLIFY_LIMITS}


@dataclass(frozen=True, slots=True)
class WallRow:
    provider: str
    targets: int
    way: str
    wall_s: float
    cpu_envsync_s: float
    cpu_emulators_s: float
    requests: int
    throttled: int
    bound_s: float
    limited_by: str
    runs: int
    window_s: float

    @property
    def ratio(self) -> float:
        return self.wall_s / self.bound_s

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True, slots=True)
class _Sample:
    wall_s: float
    cpu_envsync_s: float
    cpu_emulators_s: float
    buckets: Counter[str]
    throttled: int


def measure(
    provider: str,
    targets: int,
    *,
    runs: int,
    folder: Path,
    window_s: float = WINDOW_S,
    latency_ms: int = LATENCY_MS,
    variables: int = VARIABLES,
    sequential: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[WallRow]:
    """envsync's apply (and, with `sequential`, the per-key script) over `targets`."""
    base = base_values(variables)
    canonical = drifted(base, DRIFT)
    fleet = (
        Fleet(services=targets, variables=base)
        if provider == "render"
        else Fleet(sites=targets, variables=base)
    )
    with EmulatorProcess(
        seed(fleet), latency_ms=latency_ms, rate_window_s=window_s, env=env
    ) as emulators:
        sandbox = Sandbox.create(folder, emulators, fleet)
        sandbox.write_canonical(base)
        check_report(sandbox.run("enforce"))
        sandbox.write_canonical(canonical)

        def envsync_apply() -> None:
            check_report(sandbox.run("enforce"))

        def script() -> None:
            sequential_script(provider, emulators, targets, canonical)

        ways: list[tuple[str, Callable[[], None]]] = [("envsync apply", envsync_apply)]
        if sequential:
            ways.append(("sequential per-key script", script))
        rows: list[WallRow] = []
        bound: bounds.Bound | None = None
        for way, action in ways:
            samples = [_timed(emulators, action) for _ in range(runs)]
            # The bound is the sync's, set by envsync's minimal requests: the script does
            # the same sync with more requests, and is measured against the same bound.
            bound = bound or _bound(provider, samples[0].buckets, window_s, latency_ms)
            rows.append(_row(provider, targets, way, samples, bound, window_s))
        return rows


def _bound(provider: str, buckets: Counter[str], window_s: float, latency_ms: int) -> bounds.Bound:
    return bounds.wall_time_bound(
        buckets,
        LIMITS[provider],
        window_s=window_s,
        latency_s=latency_ms / 1000,
        depth=DEPTH[provider],
    )


def _timed(emulators: EmulatorProcess, action: Callable[[], None]) -> _Sample:
    emulators.reset()
    child = psutil.Process(emulators.pid)
    child_before = sum(child.cpu_times()[:2])
    cpu_before = time.process_time()
    started = time.perf_counter()

    action()

    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    child_cpu = sum(child.cpu_times()[:2]) - child_before
    # A 429 response is a request the platform rejected, not work the sync needed: the bound
    # counts the others, and the refusals are reported beside it.
    buckets: Counter[str] = Counter()
    throttled = 0
    for api in ("render", "netlify"):
        for entry in emulators.requests(api):
            if entry["status"] == 429:
                throttled += 1
                continue
            buckets[bounds.bucket_of(api, entry["method"])] += 1
    return _Sample(wall, cpu, child_cpu, buckets, throttled)


def _row(
    provider: str,
    targets: int,
    way: str,
    samples: list[_Sample],
    bound: bounds.Bound,
    window_s: float,
) -> WallRow:
    buckets = samples[0].buckets
    if any(sample.buckets != buckets for sample in samples):
        raise RuntimeError(f"{way} on {targets} {provider} targets made different requests")
    return WallRow(
        provider=provider,
        targets=targets,
        way=way,
        wall_s=statistics.median(sample.wall_s for sample in samples),
        cpu_envsync_s=statistics.median(sample.cpu_envsync_s for sample in samples),
        cpu_emulators_s=statistics.median(sample.cpu_emulators_s for sample in samples),
        requests=sum(buckets.values()),
        throttled=max(sample.throttled for sample in samples),
        bound_s=bound.seconds,
        limited_by=bound.limited_by,
        runs=len(samples),
        window_s=window_s,
    )


def sequential_script(
    provider: str, emulators: EmulatorProcess, targets: int, canonical: Mapping[str, str]
) -> None:
    """What simple sync scripts do: read each target, then write each changed key, one
    request at a time, sleeping as long as a 429 response asks."""
    token = RENDER_TOKEN if provider == "render" else NETLIFY_TOKEN
    base_url = emulators.render_url if provider == "render" else emulators.netlify_url
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as client:
        for index in range(targets):
            if provider == "render":
                _script_render(client, service_id(index), canonical)
            else:
                _script_netlify(client, site_id(index), canonical)


def _script_render(client: httpx.Client, service: str, canonical: Mapping[str, str]) -> None:
    current: dict[str, str] = {}
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = _send(client, "GET", f"/services/{service}/env-vars", params=params).json()
        current.update({item["envVar"]["key"]: item["envVar"]["value"] for item in page})
        if len(page) < 100:
            break
        cursor = page[-1]["cursor"]
    for name, value in canonical.items():
        if current.get(name) != value:
            _send(client, "PUT", f"/services/{service}/env-vars/{name}", json={"value": value})


def _script_netlify(client: httpx.Client, site: str, canonical: Mapping[str, str]) -> None:
    path = f"/accounts/{ACCOUNT_SLUG}/env"
    listed = _send(client, "GET", path, params={"site_id": site}).json()
    current = {item["key"]: item["values"][0]["value"] for item in listed}
    for name, value in canonical.items():
        if current.get(name) != value:
            body = {"context": "all", "value": value}
            _send(client, "PATCH", f"{path}/{name}", params={"site_id": site}, json=body)


def _send(client: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
    while True:
        response = client.request(method, path, **options)
        if response.status_code != 429:
            response.raise_for_status()
            return response
        time.sleep(_wait_for(response.headers))


def _wait_for(headers: httpx.Headers) -> float:
    if "retry-after" in headers:
        return float(headers["retry-after"])
    reset = float(headers.get("x-ratelimit-reset", time.time() + 1))
    return max(0.05, reset - time.time())


def run(
    sizes: tuple[int, ...] = (1, 10, 100),
    *,
    runs: int = 3,
    sequential_up_to: int = 10,
    window_s: float = WINDOW_S,
    rate_bound_render: bool = True,
    env: Mapping[str, str] | None = None,
) -> list[WallRow]:
    """Every size on both providers, and the Render fleet that its rate limits bind."""
    rows: list[WallRow] = []
    with tempfile.TemporaryDirectory(prefix="envsync-bench-wall-") as scratch:
        for provider in ("render", "netlify"):
            for size in sizes:
                folder = Path(scratch) / f"{provider}-{size}"
                rows += measure(
                    provider,
                    size,
                    runs=runs,
                    folder=folder,
                    window_s=window_s,
                    sequential=size <= sequential_up_to,
                    env=env,
                )
            if provider == "render" and rate_bound_render:
                rows += measure(
                    provider,
                    RENDER_RATE_BOUND_TARGETS,
                    runs=runs,
                    folder=Path(scratch) / f"{provider}-{RENDER_RATE_BOUND_TARGETS}",
                    window_s=RENDER_RATE_BOUND_WINDOW_S,
                    env=env,
                )
    return rows
